"""The diagram side of the history: what the history needs from a definition's BPMN XML (:class:`Diagram`,
parsed once per definition and cached) and the path an instance took on it (:class:`Path`), now
(:func:`path_of`) or as it stood after a past event (:func:`past_path`). Part of the history service,
:mod:`engine.runtime.history`.

Path rules:

- *done*: elements of the instance's own process with an ``element_completed`` or ``task_completed`` event;
- *flows*: the sequence flows those events (and ``task_created``) record as taken into the element;
- *current*: open human tasks, waiting timers and message subscriptions; one that lies inside a called
  process marks the call activity that is still running;
- *failed*: elements with an open incident.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound

from .models import AuditEvent, HumanTask, Incident, Job, MessageSubscription, ProcessDefinition, ProcessInstance

__all__ = ["BPMN_NS", "COMPLETING", "Diagram", "Flow", "Path", "definition_xml", "diagram_of", "guid_scopes",
           "is_own", "parse_diagram", "past_path", "path_of"]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
#: event kinds that complete an element of the diagram
COMPLETING = ("element_completed", "task_completed")


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    name: str | None
    condition: str | None


@dataclass
class Diagram:
    """What the history needs from a definition's XML: the process's own elements (embedded subprocesses
    included), element names and types, sequence flows with conditions, call activities → called process."""

    process_id: str
    elements: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (type, name)
    flows: dict[str, Flow] = field(default_factory=dict)
    defaults: set[str] = field(default_factory=set)
    calls: dict[str, str] = field(default_factory=dict)  # call activity id -> called process id
    #: spec names of the process and its embedded subprocesses (``detail.process`` of their events)
    scopes: set[str] = field(default_factory=set)
    #: element ids of called processes (from the definition's flow index), per process
    called_elements: dict[str, set[str]] = field(default_factory=dict)

    def name(self, element_id: str | None) -> str | None:
        if element_id is None:
            return None
        kind_name = self.elements.get(element_id)
        return (kind_name[1] if kind_name else None) or element_id

    def kind(self, element_id: str | None) -> str | None:
        kind_name = self.elements.get(element_id or "")
        return kind_name[0] if kind_name else None

    def outgoing(self, element_id: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.source == element_id]


_diagrams: dict[tuple[int, str], Diagram] = {}


def diagram_of(session: Session, definition_id: int) -> Diagram:
    row = session.execute(select(ProcessDefinition.sha256, ProcessDefinition.process_id)
                          .where(ProcessDefinition.id == definition_id)).first()
    if row is None:
        raise NotFound(f"process definition {definition_id} does not exist")
    key = (definition_id, row.sha256)
    d = _diagrams.get(key)
    if d is None:
        xml, flow_index = session.execute(select(ProcessDefinition.bpmn_xml, ProcessDefinition.flow_index)
                                          .where(ProcessDefinition.id == definition_id)).one()
        d = parse_diagram(xml, row.process_id, flow_index or {})
        if len(_diagrams) > 256:
            _diagrams.clear()
        _diagrams[key] = d
    return d


def definition_xml(session: Session, definition_id: int) -> str:
    xml = session.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.id == definition_id))
    if xml is None:
        raise NotFound(f"process definition {definition_id} does not exist")
    return xml


def parse_diagram(xml: str, process_id: str, flow_index: dict | None = None) -> Diagram:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(xml.encode("utf-8"), parser)
    d = Diagram(process_id, scopes={process_id})
    proc = next((p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id") == process_id), None)
    if proc is None:
        return d
    for el in proc.iter():
        if not isinstance(el.tag, str) or not el.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        kind = el.tag.split("}", 1)[1]
        el_id = el.get("id")
        if not el_id:
            continue
        if kind == "sequenceFlow":
            cond = el.find(f"{{{BPMN_NS}}}conditionExpression")
            d.flows[el_id] = Flow(el_id, el.get("sourceRef"), el.get("targetRef"), el.get("name"),
                                  (cond.text or "").strip() if cond is not None else None)
            continue
        if kind in ("conditionExpression", "documentation", "extensionElements", "incoming", "outgoing",
                    "laneSet", "lane", "dataObject", "property"):
            continue
        d.elements[el_id] = (kind, el.get("name"))
        if el.get("default"):
            d.defaults.add(el.get("default"))
        if kind == "callActivity" and el.get("calledElement"):
            d.calls[el_id] = el.get("calledElement")
        if kind in ("subProcess", "transaction", "adHocSubProcess"):
            d.scopes.add(el_id)
    for name, index in (flow_index or {}).items():
        if name in d.scopes:
            continue
        ids: set[str] = set()
        for pair in index:
            ids.update(pair.split("|", 1))
        d.called_elements[name] = ids
    return d


@dataclass
class Path:
    done: list[str] = field(default_factory=list)
    flows: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"done": self.done, "flows": self.flows, "current": self.current, "failed": self.failed}


def _scope_of(ev: AuditEvent, d: Diagram, guid_scope: dict[str, str]) -> str | None:
    """The process (spec name) an event happened in, when it can be told."""
    process = (ev.detail or {}).get("process") if isinstance(ev.detail, dict) else None
    if process:
        return process
    return guid_scope.get(ev.task_guid or "")


def is_own(ev: AuditEvent, d: Diagram, guid_scope: dict[str, str]) -> bool:
    """Whether the event concerns an element of the instance's own diagram."""
    if not ev.bpmn_id or ev.bpmn_id not in d.elements:
        return False
    scope = _scope_of(ev, d, guid_scope)
    if scope is not None:
        return scope in d.scopes
    # no process recorded: an id that also names an element of a called process stays ambiguous; the
    # instance's own element is the likelier reading
    return True


def guid_scopes(events: Sequence[AuditEvent]) -> dict[str, str]:
    """The process (spec name) each task ran in, by task guid, from the events that record it."""
    out = {}
    for ev in events:
        process = (ev.detail or {}).get("process") if isinstance(ev.detail, dict) else None
        if process and ev.task_guid:
            out[ev.task_guid] = process
    return out


def _ordered(ids) -> list[str]:
    return list(dict.fromkeys(ids))


def _walk(p: Path, ev: AuditEvent, d: Diagram, guid_scope: dict[str, str]) -> None:
    """Add one event of the instance's own diagram to the path: a completed element, the flows it took."""
    if not is_own(ev, d, guid_scope):
        return
    if ev.kind in COMPLETING:
        p.done.append(ev.bpmn_id)
    if ev.kind in COMPLETING or ev.kind in ("task_created", "async_continuation_queued"):
        p.flows.extend(f for f in ev.flow_ids or [] if f in d.flows)


def path_of(session: Session, inst: ProcessInstance, events: Sequence[AuditEvent], d: Diagram) -> Path:
    guid_scope = guid_scopes(events)
    p = Path()
    for ev in events:
        _walk(p, ev, d, guid_scope)
    p.done, p.flows = _ordered(p.done), _ordered(p.flows)
    if inst.status in ("running", "suspended"):
        waiting = list(session.scalars(select(HumanTask.bpmn_id).where(
            HumanTask.instance_id == inst.id, HumanTask.status == "open")))
        waiting += list(session.scalars(select(Job.bpmn_id).where(Job.instance_id == inst.id,
                                                                  Job.kind.in_(("timer", "continue")))))
        waiting += list(session.scalars(select(MessageSubscription.bpmn_id)
                                        .where(MessageSubscription.instance_id == inst.id)))
        p.current = _ordered(_place(d, [w for w in waiting if w], events, guid_scope))
    failed = [b for b in session.scalars(select(Incident.bpmn_id).where(Incident.instance_id == inst.id,
                                                                         Incident.status == "open")) if b]
    p.failed = _ordered(_place(d, failed, events, guid_scope))
    return p


def _place(d: Diagram, ids: list[str], events: Sequence[AuditEvent], guid_scope: dict[str, str]) -> list[str]:
    """Map waiting/failed element ids onto the instance's diagram: an element of a called process marks
    the call activity that called it (or, for deeper calls, every call activity still running)."""
    out = []
    for element_id in ids:
        if element_id in d.elements and not any(element_id in ids_ for ids_ in d.called_elements.values()):
            out.append(element_id)
            continue
        owners = {name for name, ids_ in d.called_elements.items() if element_id in ids_}
        direct = [c for c, called in d.calls.items() if called in owners]
        if element_id in d.elements and not direct:
            out.append(element_id)
            continue
        out.extend(direct or _running_calls(d, events, guid_scope))
    return out


def _running_calls(d: Diagram, events: Sequence[AuditEvent], guid_scope: dict[str, str]) -> list[str]:
    """Call activities that were entered (their called process started) and have not completed since."""
    state: dict[str, bool] = {}
    for ev in events:
        process = (ev.detail or {}).get("process") if isinstance(ev.detail, dict) else None
        if ev.kind != "element_completed":
            continue
        if process in d.scopes and ev.bpmn_id in d.calls:
            state[ev.bpmn_id] = False
        elif process and (ev.detail or {}).get("type") == "StartEvent":
            for call, called in d.calls.items():
                if called == process:
                    state[call] = True
    return [c for c, running in state.items() if running]


def past_path(events: Sequence[AuditEvent], d: Diagram) -> Path:
    """The path as it stood after the last of ``events``: completed elements and taken flows so far; the
    current position is what had been created (a task, a failure) and not completed or cancelled by then."""
    guid_scope = guid_scopes(events)
    p = Path()
    open_tasks: dict[str, str] = {}
    failed: dict[str, str] = {}
    for ev in events:
        guid = ev.task_guid or ""
        if ev.kind == "task_created":
            open_tasks[guid] = ev.bpmn_id
        elif ev.kind in ("task_completed", "task_cancelled"):
            open_tasks.pop(guid, None)
        elif ev.kind == "incident_opened":
            failed[guid] = ev.bpmn_id
        elif ev.kind in ("incident_retried", "element_completed"):
            failed.pop(guid, None)
        _walk(p, ev, d, guid_scope)
    p.done, p.flows = _ordered(p.done), _ordered(p.flows)
    p.current = _ordered(_place(d, [b for b in open_tasks.values() if b], events, guid_scope))
    p.failed = _ordered(_place(d, [b for b in failed.values() if b], events, guid_scope))
    return p
