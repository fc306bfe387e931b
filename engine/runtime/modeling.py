"""What the process designer works with: the deployed library, validation of unsaved XML with
element-level issues, deploying an edited file, and a semantic diff of two versions.

An edited file is always checked and deployed together with the rest of the library (the newest
deployed text of every other file), because a process calls subprocesses and decisions defined in
other files. Validation and deploy reuse :mod:`engine.runtime.deploy`, so the designer sees exactly
the checks the engine applies. Nothing here commits; the caller owns the transaction.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import DefinitionError, EngineError, InvalidInput, NotFound

from .deploy import Deployed, FormHasher, check_definitions, deploy
from .models import Deployment, ProcessDefinition
from .parser import BPMN_NS, parse_sources, read_xml

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"
#: elements whose id-bearing BPMN children are diagram elements of their own (compared separately)
_CONTAINERS = {"definitions", "process", "subProcess", "transaction", "adHocSubProcess", "collaboration", "laneSet"}
#: derived from the sequence flows; comparing them again would only repeat a flow's change
_DERIVED = {"incoming", "outgoing"}


@dataclass
class VersionInfo:
    definition_id: int
    process_id: str
    version: int
    name: str | None
    sha256: str
    source_file: str
    deployment_id: int
    deployed_by: str
    deployed_at: datetime


@dataclass
class ProcessEntry:
    process_id: str
    name: str | None
    versions: list[VersionInfo] = field(default_factory=list)

    @property
    def latest(self) -> VersionInfo:
        return self.versions[0]


# ------------------------------------------------------------------------------------------ library
def list_definitions(session: Session) -> list[ProcessEntry]:
    """Every deployed process id with its versions, newest version first."""
    entries: dict[str, ProcessEntry] = {}
    rows = session.execute(select(ProcessDefinition.id, ProcessDefinition.process_id, ProcessDefinition.version,
                                  ProcessDefinition.name, ProcessDefinition.sha256, ProcessDefinition.source_file,
                                  ProcessDefinition.deployment_id, ProcessDefinition.deployed_by,
                                  ProcessDefinition.deployed_at)
                           .order_by(ProcessDefinition.process_id, ProcessDefinition.version.desc()))
    for row in rows:
        info = VersionInfo(*row)
        entry = entries.setdefault(info.process_id, ProcessEntry(info.process_id, info.name))
        entry.versions.append(info)
    return list(entries.values())


def get_definition(session: Session, process_id: str, version: int | None = None) -> ProcessDefinition:
    """One version (the newest when ``version`` is None); NotFound names what is missing."""
    q = select(ProcessDefinition).where(ProcessDefinition.process_id == process_id)
    if version is None:
        q = q.order_by(ProcessDefinition.version.desc()).limit(1)
    else:
        q = q.where(ProcessDefinition.version == version)
    found = session.scalars(q).first()
    if found is None:
        what = f"version {version} of process {process_id!r}" if version is not None else f"process {process_id!r}"
        raise NotFound(f"no {what} is deployed")
    return found


def library_files(session: Session) -> dict[str, str]:
    """``{file name: text}``: the newest deployed text of every BPMN/DMN file ever deployed."""
    files: dict[str, str] = {}
    for dep in session.scalars(select(Deployment).order_by(Deployment.id.desc())):
        for name, text in (dep.files or {}).items():
            files.setdefault(name, text)
    return dict(sorted(files.items()))


def decision_ids(files: dict[str, str]) -> list[str]:
    """Decision ids defined in the DMN files among ``files`` (unreadable files are skipped)."""
    found: list[str] = []
    for name, text in files.items():
        if not name.endswith(".dmn"):
            continue
        try:
            root = _read(text)
        except etree.XMLSyntaxError:
            continue
        found.extend(el.get("id") for el in root.iter(f"{{{DMN_NS}}}decision") if el.get("id"))
    return sorted(found)


# ----------------------------------------------------------------------------------------- validate
def syntax_issues(file_name: str, xml: str) -> list[dict]:
    """Malformed XML as issues with file, line and column (empty when the text is well-formed)."""
    if not xml.strip():
        return [{"file": file_name, "line": None, "element_id": None, "field": None, "message": "the XML is empty"}]
    try:
        _read(xml)
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else exc.lineno
        return [{"file": file_name, "line": line, "element_id": None, "field": None,
                 "message": f"malformed XML: {exc.msg}"}]
    return []


def validate_file(runtime, session: Session, file_name: str, xml: str,
                  form_hash: FormHasher | None = None) -> list[dict]:
    """The engine's deploy checks on ``xml`` as ``file_name`` within the library: a list of issues
    ``{file, line, element_id, field, message}``; empty when the file would deploy."""
    _check_name(file_name)
    problems = syntax_issues(file_name, xml)
    if problems:
        return problems
    files = {**library_files(session), file_name: xml}
    try:
        parsed = parse_sources(files)
    except DefinitionError as exc:
        return list(exc.issues)
    if file_name.endswith(".bpmn") and not any(parsed.process_files.get(p) == file_name for p in parsed.executable):
        return [{"file": file_name, "line": None, "element_id": None, "field": None,
                 "message": 'no executable process (<bpmn:process isExecutable="true">) in this file'}]
    issues, _forms = check_definitions(parsed, runtime.services, form_hash)
    return issues


def deploy_file(runtime, session: Session, file_name: str, xml: str, actor: str,
                form_hash: FormHasher | None = None) -> list[Deployed]:
    """Deploy the library with ``file_name`` replaced by ``xml``; processes whose content did not
    change keep their version. Raises DefinitionError (with the issues) and writes nothing on error."""
    issues = validate_file(runtime, session, file_name, xml, form_hash)
    if issues:
        raise DefinitionError(f"{file_name} failed validation", issues)
    return deploy(runtime, session, {**library_files(session), file_name: xml}, actor, form_hash=form_hash)


def _check_name(file_name: str) -> None:
    if not file_name or "/" in file_name or "\\" in file_name or not file_name.endswith((".bpmn", ".dmn")):
        raise InvalidInput(f"{file_name!r} is not a .bpmn or .dmn file name")


def _read(xml: str):
    return read_xml(xml)


# ------------------------------------------------------------------------------------------------ diff
@dataclass(frozen=True)
class Change:
    element_id: str
    element_type: str
    name: str | None
    #: added | removed | changed | moved (diagram layout only)
    change: str
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"element_id": self.element_id, "element_type": self.element_type, "name": self.name,
                "change": self.change, "fields": list(self.fields)}


def diff_xml(old_xml: str, new_xml: str) -> list[Change]:
    """What changed between two BPMN documents, element by element (by id)."""
    old, new = _elements(_read(old_xml)), _elements(_read(new_xml))
    old_di, new_di = _layout(_read(old_xml)), _layout(_read(new_xml))
    changes: list[Change] = []
    for eid in sorted(set(old) | set(new)):
        before, after = old.get(eid), new.get(eid)
        if before is None:
            changes.append(Change(eid, after[0], after[1], "added"))
        elif after is None:
            changes.append(Change(eid, before[0], before[1], "removed"))
        else:
            facets_a, facets_b = before[2], after[2]
            differing = tuple(sorted(k for k in set(facets_a) | set(facets_b) if facets_a.get(k) != facets_b.get(k)))
            if before[0] != after[0]:
                differing = ("type", *differing)
            if differing:
                changes.append(Change(eid, after[0], after[1], "changed", differing))
            elif old_di.get(eid) != new_di.get(eid):
                changes.append(Change(eid, after[0], after[1], "moved", ("layout",)))
    return changes


def diff_versions(session: Session, process_id: str, version_a: int, version_b: int) -> list[Change]:
    a = get_definition(session, process_id, version_a)
    b = get_definition(session, process_id, version_b)
    return diff_xml(a.bpmn_xml, b.bpmn_xml)


def _local(el) -> str:
    return etree.QName(el).localname


def _elements(root) -> dict[str, tuple[str, str | None, dict[str, str]]]:
    """BPMN elements with an id directly inside a container -> (type, name, facets)."""
    out = {}
    for el in root.iter(f"{{{BPMN_NS}}}*"):
        parent = el.getparent()
        if el.get("id") is None or parent is None or _local(parent) not in _CONTAINERS:
            continue
        facets: dict[str, str] = {}
        _facets(el, "", facets, top=True)
        out[el.get("id")] = (_local(el), el.get("name"), facets)
    return out


def _facets(el, path: str, out: dict[str, str], top: bool = False) -> None:
    """Flatten ``el`` into ``{"serviceTaskOperator/parameter[entity_id]@value": "entity_id", ...}``,
    leaving out the BPMN elements compared on their own (the children of a container)."""
    for attr, value in el.attrib.items():
        if not (top and attr == "id"):
            out[f"{path.rstrip('/')}@{etree.QName(attr).localname}"] = value
    text = (el.text or "").strip()
    if text:
        out[f"{path.rstrip('/')}#text" if path else "text"] = text
    children = [c for c in el if isinstance(c.tag, str)]
    container = _local(el) in _CONTAINERS
    tags = [_local(c) for c in children]
    seen: dict[str, int] = {}
    for child, name in zip(children, tags):
        if name in _DERIVED or (container and child.get("id") and child.tag.startswith(f"{{{BPMN_NS}}}")):
            continue
        if name == "extensionElements":
            _facets(child, path, out)
            continue
        key = child.get("name") or child.get("id")
        if key is None and tags.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            key = str(seen[name])
        segment = f"{name}[{key}]" if key is not None else name
        _facets(child, f"{path}{segment}/", out)


def _layout(root) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for shape in root.iter(f"{{{BPMNDI_NS}}}BPMNShape", f"{{{BPMNDI_NS}}}BPMNEdge"):
        coords = tuple((c.get("x"), c.get("y"), c.get("width"), c.get("height"))
                       for c in shape.iter() if _local(c) in ("Bounds", "waypoint"))
        out[shape.get("bpmnElement")] = coords
    return out


# ---------------------------------------------------------------------------------------- simulate
#: bounds of a simulation run from the designer (the CLI allows more)
SIMULATION_ENTITIES = (50, 2000)


def run_simulation(entities: int = 300, seed: int = 7, timeout_s: float = 600.0,
                   decisions: list[tuple[str, str]] = ()) -> dict:
    """The loop simulator (:mod:`engine.simulation`) in a child process on its own temporary
    SQLite database — never the live one, and none of its clock or runtime globals leak into the
    caller. ``decisions``: what-if DMN files as (file name, XML text), each replacing the library's table
    with the same decision ids for this run (``regflow simulate --decisions``). Returns the summary document."""
    lo, hi = SIMULATION_ENTITIES
    if not lo <= entities <= hi:
        raise InvalidInput(f"entities must be between {lo} and {hi}, got {entities}")
    env = {k: v for k, v in os.environ.items() if k != "REGFLOW_DATABASE_URL"}
    cmd = [sys.executable, "-m", "engine.cli", "simulate", "--entities", str(entities), "--seed", str(seed),
           "--training-entities", "2000", "--json"]
    with tempfile.TemporaryDirectory(prefix="regflow-whatif-") as tmp:
        for n, (name, text) in enumerate(decisions):
            base = Path(name or "").name
            if not base.endswith(".dmn"):
                raise InvalidInput(f"{name or 'the uploaded file'}: a what-if decision table must be a .dmn file")
            path = Path(tmp) / str(n) / base
            path.parent.mkdir()
            path.write_text(text, encoding="utf-8")
            cmd += ["--decisions", str(path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise EngineError(f"the simulation did not finish within {timeout_s:g} s") from None
        if proc.returncode == 2:  # refused input (a what-if file): the child names the file and the problem
            message = next((ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")), proc.stderr.strip())
            raise InvalidInput(re.sub(re.escape(tmp) + r"/\d+/", "", message.removeprefix("error: ")))
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise EngineError(f"the simulation failed (exit {proc.returncode}): " + " | ".join(tail)) from None
