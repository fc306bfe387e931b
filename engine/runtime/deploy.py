"""Deploying BPMN/DMN files: parse, validate everything the engine will later evaluate, version by
content hash. Identical content deploys to the existing version; nothing is written on any error."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import DefinitionError, InvalidInput

from . import audit, clock, continuations
from .models import Deployment, ProcessDefinition
from .parser import ParsedSources, parse_sources
from .validation import validate_expressions

#: the longest definition name kept (the definitions table's column)
MAX_NAME = 400

#: ``form_hash(form_id) -> sha256 or None`` when the form does not exist.
FormHasher = Callable[[str], "str | None"]


@dataclass
class Deployed:
    process_id: str
    version: int
    definition_id: int
    created: bool

    def to_dict(self) -> dict:
        return {"process_id": self.process_id, "version": self.version, "definition_id": self.definition_id,
                "created": self.created}


def read_paths(paths: list[str | Path]) -> dict[str, str]:
    """Files or folders -> {name: text} for every ``*.bpmn`` and ``*.dmn``."""
    files: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".bpmn", ".dmn") and p.is_file())
            if not found:
                raise InvalidInput(f"{path}: no .bpmn or .dmn files in this folder")
            for p in found:
                files[str(p.relative_to(path))] = p.read_text(encoding="utf-8")
        elif path.is_file():
            if path.suffix not in (".bpmn", ".dmn"):
                raise InvalidInput(f"{path}: not a .bpmn or .dmn file")
            files[path.name] = path.read_text(encoding="utf-8")
        else:
            raise InvalidInput(f"{path}: no such file or folder")
    return files


def _walk_task_specs(parsed: ParsedSources):
    seen = set()
    for pid, (spec, subs) in parsed.specs.items():
        for s in [spec, *subs.values()]:
            if s is None or s.name in seen:
                continue
            seen.add(s.name)
            for ts in s.task_specs.values():
                yield s.name, ts


def check_definitions(parsed: ParsedSources, services, form_hash: FormHasher | None) -> tuple[list[dict], dict]:
    issues: list[dict] = []
    forms: dict[str, dict] = {}
    for problem in validate_expressions(parsed.parser):
        issues.append({"file": problem.file or parsed.process_files.get(problem.process_id),
                       "line": parsed.line_of(problem.file or parsed.process_files.get(problem.process_id),
                                              problem.element_id),
                       "element_id": problem.element_id, "field": problem.field, "message": problem.message})
    for process_name, ts in _walk_task_specs(parsed):
        file = parsed.process_files.get(process_name)
        where = {"file": file, "line": parsed.line_of(file, ts.bpmn_id), "element_id": ts.bpmn_id}
        if isinstance(ts, ServiceTask):
            for msg in services.check_call_site(ts.operation_name, list(ts.operation_params)):
                issues.append({**where, "field": "serviceTaskOperator", "message": msg})
        props = (getattr(ts, "extensions", None) or {}).get("properties", {})
        problem = continuations.property_problem(ts)
        if problem is not None:
            issues.append({**where, "field": f"property:{continuations.ASYNC_PROPERTY}", "message": problem})
        if ts.manual if hasattr(ts, "manual") else False:
            form_id = props.get("formId")
            if form_id and form_hash is not None:
                try:
                    digest = form_hash(form_id)
                except Exception as exc:  # noqa: BLE001 - a broken form definition blocks the deploy
                    issues.append({**where, "field": "formId", "message": f"form {form_id!r} is broken: {exc}"})
                    continue
                if digest is None:
                    issues.append({**where, "field": "formId", "message": f"form {form_id!r} does not exist"})
                else:
                    forms.setdefault(process_name, {})[form_id] = digest
            if "priority" in props:
                try:
                    int(props["priority"])
                except ValueError:
                    issues.append({**where, "field": "priority",
                                   "message": f"priority must be an integer, got {props['priority']!r}"})
    return issues, forms


def deploy(runtime, session: Session, files: dict[str, str], actor: str,
           form_hash: FormHasher | None = None) -> list[Deployed]:
    if not files:
        raise InvalidInput("nothing to deploy")
    parsed = parse_sources(files)
    if not parsed.executable:
        raise DefinitionError("no executable process in the given files", [
            {"file": f, "line": None, "element_id": None, "field": None,
             "message": "no <bpmn:process isExecutable=\"true\">" if f.endswith(".bpmn") else
             "a decision table is deployed together with a .bpmn file holding an executable process"}
            for f in files])
    issues, forms = check_definitions(parsed, runtime.services, form_hash)
    if issues:
        raise DefinitionError("definitions failed validation", issues)

    now = clock.now()
    results: list[Deployed] = []
    pending: list[tuple[str, str, str, dict, str]] = []
    for pid in parsed.executable:
        spec, subs = parsed.specs[pid]
        spec_json = runtime.serializer.spec_to_json(spec, subs)
        # the version is the content: what runs (the spec) and what designers see (the XML, layout
        # included) — moving a shape and deploying keeps the new layout as a new version
        digest = hashlib.sha256(f"{spec_json}\0{files[parsed.process_files[pid]]}".encode()).hexdigest()
        latest = session.scalars(select(ProcessDefinition).where(ProcessDefinition.process_id == pid)
                                 .order_by(ProcessDefinition.version.desc()).limit(1)).first()
        if latest is not None and latest.sha256 == digest:
            results.append(Deployed(pid, latest.version, latest.id, False))
            continue
        pending.append((pid, spec_json, digest, subs, str(latest.version if latest else 0)))
    if pending:
        bundle = hashlib.sha256("".join(f"{k}\0{files[k]}\0" for k in sorted(files)).encode()).hexdigest()
        deployment = Deployment(sha256=bundle, files=files, deployed_by=actor, deployed_at=now)
        session.add(deployment)
        session.flush()
        for pid, spec_json, digest, subs, last_version in pending:
            spec = parsed.specs[pid][0]
            source_file = parsed.process_files[pid]
            flow_index = {name: parsed.flow_index.get(name, {}) for name in [pid, *subs]}
            form_map = {}
            for name in [pid, *subs]:
                form_map.update(forms.get(name, {}))
            definition = ProcessDefinition(
                process_id=pid, version=int(last_version) + 1, name=(spec.description or pid)[:MAX_NAME], sha256=digest,
                deployment_id=deployment.id, source_file=source_file, bpmn_xml=files[source_file],
                spec_json=spec_json, flow_index=flow_index, forms=form_map, deployed_by=actor, deployed_at=now)
            session.add(definition)
            session.flush()
            results.append(Deployed(pid, definition.version, definition.id, True))
        audit.system_event(session, "deployed", actor, deployment_id=deployment.id,
                           files=sorted(files), definitions=[r.to_dict() for r in results if r.created])
    return sorted(results, key=lambda r: r.process_id)
