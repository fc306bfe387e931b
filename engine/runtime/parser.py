"""Parsing and validating BPMN/DMN definitions with regflow's conventions.

``RegflowParser`` is SpiffWorkflow's ``SpiffBpmnParser`` (XSD-validated) with timer definitions that
read regflow's clock. :func:`parse_sources` turns a set of files into parsed specs or a
:class:`DefinitionError` naming file, line and element for every problem found.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, IntermediateCatchEvent, StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser

from engine.errors import DefinitionError

from .timers import ClockBoundaryEventParser, ClockIntermediateCatchEventParser, ClockStartEventParser

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NSMAP = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}


def read_xml(text: str | bytes):
    """Parse BPMN/DMN text without expanding entities or touching the network (every uploaded or deployed
    file goes through here). Raises ``etree.XMLSyntaxError``."""
    return etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text,
                            parser=etree.XMLParser(resolve_entities=False, no_network=True))


class RegflowParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("startEvent"): (ClockStartEventParser, StartEvent),
        full_tag("boundaryEvent"): (ClockBoundaryEventParser, BoundaryEvent),
        full_tag("intermediateCatchEvent"): (ClockIntermediateCatchEventParser, IntermediateCatchEvent),
    }


@dataclass
class ParsedSources:
    parser: RegflowParser
    files: dict[str, str]
    #: process id -> file it is defined in
    process_files: dict[str, str] = field(default_factory=dict)
    #: executable process ids (``isExecutable="true"``)
    executable: list[str] = field(default_factory=list)
    #: process id -> {"source|target": flow id}
    flow_index: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (file, element id) -> line
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)

    def line_of(self, file: str | None, element_id: str | None) -> int | None:
        if not element_id:
            return None
        if file:
            return self.lines.get((file, element_id))
        for (f, e), line in self.lines.items():
            if e == element_id:
                return line
        return None

    def element_at(self, file: str | None, line: int) -> str | None:
        """The id of the closest element with an id that starts at or before ``line`` (XSD errors give lines)."""
        best, best_line = None, -1
        for (f, e), start in self.lines.items():
            if f == file and best_line < start <= line:
                best, best_line = e, start
        return best

    def file_of_element(self, element_id: str) -> str | None:
        for (f, e) in self.lines:
            if e == element_id:
                return f
        return None


#: the longest process id (the definitions table's column)
MAX_PROCESS_ID = 200


def _issue(file, line, element_id, message, field=None) -> dict:
    return {"file": file, "line": line, "element_id": element_id, "field": field, "message": message}


def parse_sources(files: dict[str, str]) -> ParsedSources:
    """Parse BPMN (``*.bpmn``) and DMN (``*.dmn``) texts keyed by file name.

    Raises :class:`DefinitionError` listing every problem with file, line and element id.
    """
    parser = RegflowParser(validator=VALIDATOR)
    parsed = ParsedSources(parser=parser, files=files)
    issues: list[dict] = []
    trees: dict[str, Any] = {}
    for name, text in files.items():
        try:
            root = read_xml(text)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if exc.lineno else (exc.position[0] if exc.position else None)
            issues.append(_issue(name, line, None, f"malformed XML: {exc.msg}"))
            continue
        trees[name] = root
        for el in root.iter():
            el_id = el.get("id") if isinstance(el.tag, str) else None
            if el_id:
                parsed.lines[(name, el_id)] = el.sourceline
    if issues:
        raise DefinitionError("definitions could not be read", issues)

    for name, root in trees.items():
        if name.endswith(".dmn"):  # SpiffWorkflow's own message for a decision without an id names nothing
            for decision in root.iter():
                if isinstance(decision.tag, str) and etree.QName(decision).localname == "decision" \
                        and not (decision.get("id") or "").strip():
                    issues.append(_issue(name, decision.sourceline, None, "a <decision> needs an id", field="id"))
    if issues:
        raise DefinitionError("definitions failed validation", issues)
    for name, root in trees.items():
        try:
            if name.endswith(".dmn"):
                parser.add_dmn_xml(root, filename=name)
            else:
                parser.add_bpmn_xml(root, filename=name)
        except ValidationException as exc:
            issues.append(_validation_issue(parsed, exc, name))
    if issues:
        raise DefinitionError("definitions failed validation", issues)

    for name, root in trees.items():
        if name.endswith(".dmn"):
            continue
        for proc in root.iter(f"{{{BPMN_NS}}}process"):
            pid = (proc.get("id") or "").strip()
            if not pid or len(pid) > MAX_PROCESS_ID:
                issues.append(_issue(name, proc.sourceline, pid[:40] or None, "a <bpmn:process> needs an id of 1 to "
                                     f"{MAX_PROCESS_ID} characters", field="id"))
                continue
            parsed.process_files[pid] = name
            if proc.get("isExecutable", "true").lower() == "true":
                parsed.executable.append(pid)
            index: dict[str, str] = {}
            for flow in proc.iter(f"{{{BPMN_NS}}}sequenceFlow"):
                index[f"{flow.get('sourceRef')}|{flow.get('targetRef')}"] = flow.get("id")
            # flows inside embedded subprocesses live under the same process element
            parsed.flow_index[pid] = index
    if issues:
        raise DefinitionError("definitions failed validation", issues)

    for pid in parsed.executable:
        try:
            spec = parser.get_spec(pid)
            subs = parser.get_subprocess_specs(pid)
            parsed.specs[pid] = (spec, subs)
        except ValidationException as exc:
            issues.append(_validation_issue(parsed, exc, parsed.process_files.get(pid)))
        except SpiffWorkflowException as exc:
            issues.append(_issue(parsed.process_files.get(pid), None, pid, str(exc)))
    if issues:
        raise DefinitionError("definitions failed validation", issues)
    return parsed


def _validation_issue(parsed: ParsedSources, exc: ValidationException, default_file: str | None) -> dict:
    file = getattr(exc, "file_name", None) or default_file
    element_id = getattr(exc, "id", None) or None
    line = getattr(exc, "line_number", None) or parsed.line_of(file, element_id)
    if element_id is None and line:
        element_id = parsed.element_at(file, int(line))
    message = str(exc.args[0]) if exc.args else str(exc)
    return _issue(file, line or None, element_id, message)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
