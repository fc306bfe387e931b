"""What auditors read: instance search, an instance's ordered events, the path it took, the reasons behind
its routing decisions, its data as it was at any event, and the export rows.

Everything comes from the ``audit_event`` rows of the instance's chain (read by the ``(chain, seq)``
index) and the projections (``human_task``, ``job``, ``message_subscription``, ``incident``); nothing loads
or replays a workflow state. The definition's BPMN XML is parsed once per definition (cached) to tell the
instance's own elements from those of called processes, to name elements and to read gateway conditions.

Path rules (DESIGN.md §6 "the path taken and the current position"):

- *done*: elements of the instance's own process with an ``element_completed`` or ``task_completed`` event;
- *flows*: the sequence flows those events (and ``task_created``) record as taken into the element;
- *current*: open human tasks, waiting timers and message subscriptions; one that lies inside a called
  process marks the call activity that is still running;
- *failed*: elements with an open incident.

Data at event *n* is rebuilt by applying the ``data_diff`` of events 1..n in order (``new`` sets a key,
``deleted`` removes it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Sequence

from lxml import etree
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound

from . import audit
from .models import AuditEvent, HumanTask, Incident, Job, MessageSubscription, ProcessDefinition, ProcessInstance

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
STATUSES = ("running", "suspended", "completed", "terminated")
#: the search stops counting here ("1000+")
COUNT_CAP = 1000
MAX_PAGE = 200
#: event kinds that complete an element of the diagram
COMPLETING = ("element_completed", "task_completed")
GATEWAYS = ("exclusiveGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"and", "or", "not", "in", "is", "None", "True", "False", "if", "else", "for", "lambda"}


# --------------------------------------------------------------------------------------------- search
@dataclass
class InstanceQuery:
    #: business keys to keep (``None``: no entity filter; an empty list matches nothing)
    business_keys: Sequence[str] | None = None
    process_id: str | None = None
    status: str | None = None
    #: a user who started the instance, holds or held one of its tasks
    officer: str | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None
    #: business keys the viewer may not see (entities outside their jurisdiction); ``None``: no limit
    hidden_keys: Any = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"page size must be between 1 and {MAX_PAGE}, not {self.limit}")
        if self.offset < 0:
            raise InvalidInput("page offset must not be negative")
        for name in ("started_from", "started_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name} must be timezone-aware")
        if self.started_from and self.started_before and self.started_from >= self.started_before:
            raise InvalidInput("the date range is empty: its start is not before its end")
        self.officer = (self.officer or "").strip() or None
        self.process_id = (self.process_id or "").strip() or None


@dataclass
class InstancePage:
    rows: list[ProcessInstance]
    total: int
    capped: bool
    query: InstanceQuery

    @property
    def has_next(self) -> bool:
        return self.capped or self.query.offset + len(self.rows) < self.total


def _conditions(q: InstanceQuery) -> list:
    pi = ProcessInstance
    where = []
    if q.business_keys is not None:
        where.append(pi.business_key.in_(list(q.business_keys)))
    if q.process_id:
        where.append(pi.process_id == q.process_id)
    if q.status:
        where.append(pi.status == q.status)
    if q.started_from:
        where.append(pi.started_at >= q.started_from)
    if q.started_before:
        where.append(pi.started_at < q.started_before)
    if q.officer:
        # completed tasks keep their assignee (the completer); the status prefix lets the index serve it
        worked = select(HumanTask.instance_id).where(
            HumanTask.status.in_(("open", "completed", "cancelled")),
            or_(HumanTask.assignee == q.officer, HumanTask.completed_by == q.officer))
        where.append(or_(pi.started_by == q.officer, pi.id.in_(worked)))
    if q.hidden_keys is not None:
        where.append(or_(pi.business_key.is_(None), pi.business_key.not_in(q.hidden_keys)))
    return where


def search_instances(session: Session, q: InstanceQuery) -> InstancePage:
    """Instances matching every filter, newest first, one page; the count stops at :data:`COUNT_CAP`."""
    where = _conditions(q)
    stmt = select(ProcessInstance).where(*where).order_by(ProcessInstance.id.desc())
    rows = list(session.scalars(stmt.limit(q.limit).offset(q.offset)))
    counted = select(ProcessInstance.id).where(*where).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    return InstancePage(rows, min(total, COUNT_CAP), total > COUNT_CAP, q)


def process_ids(session: Session) -> list[str]:
    return list(session.scalars(select(ProcessDefinition.process_id).distinct().order_by(ProcessDefinition.process_id)))


def get_instance(session: Session, instance_id: int) -> ProcessInstance:
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return inst


def events_of(session: Session, instance_id: int, upto_seq: int | None = None) -> list[AuditEvent]:
    """The instance's events in chain order (the ``(chain, seq)`` unique index)."""
    q = select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(instance_id))
    if upto_seq is not None:
        q = q.where(AuditEvent.seq <= upto_seq)
    return list(session.scalars(q.order_by(AuditEvent.seq)))


# -------------------------------------------------------------------------------------------- diagram
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


# ----------------------------------------------------------------------------------------------- path
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


def _own(ev: AuditEvent, d: Diagram, guid_scope: dict[str, str]) -> bool:
    """Whether the event concerns an element of the instance's own diagram."""
    if not ev.bpmn_id or ev.bpmn_id not in d.elements:
        return False
    scope = _scope_of(ev, d, guid_scope)
    if scope is not None:
        return scope in d.scopes
    # no process recorded: an id that also names an element of a called process stays ambiguous; the
    # instance's own element is the likelier reading
    return True


def _guid_scopes(events: Sequence[AuditEvent]) -> dict[str, str]:
    out = {}
    for ev in events:
        process = (ev.detail or {}).get("process") if isinstance(ev.detail, dict) else None
        if process and ev.task_guid:
            out[ev.task_guid] = process
    return out


def _ordered(ids) -> list[str]:
    return list(dict.fromkeys(ids))


def path_of(session: Session, inst: ProcessInstance, events: Sequence[AuditEvent], d: Diagram) -> Path:
    guid_scope = _guid_scopes(events)
    p = Path()
    done, flows = [], []
    for ev in events:
        if not _own(ev, d, guid_scope):
            continue
        if ev.kind in COMPLETING:
            done.append(ev.bpmn_id)
        if ev.kind in COMPLETING or ev.kind == "task_created":
            flows.extend(f for f in ev.flow_ids or [] if f in d.flows)
    p.done, p.flows = _ordered(done), _ordered(flows)
    if inst.status in ("running", "suspended"):
        waiting = list(session.scalars(select(HumanTask.bpmn_id).where(
            HumanTask.instance_id == inst.id, HumanTask.status == "open")))
        waiting += list(session.scalars(select(Job.bpmn_id).where(Job.instance_id == inst.id, Job.kind == "timer")))
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


# -------------------------------------------------------------------------------------- data at event
def apply_diff(data: dict, diff: dict | None) -> dict:
    for key, change in (diff or {}).items():
        if not isinstance(change, dict):
            continue
        if change.get("deleted"):
            data.pop(key, None)
        elif "new" in change:
            data[key] = change["new"]
    return data


def state_at(events: Sequence[AuditEvent], seq: int | None = None) -> dict:
    """The instance data after event ``seq`` (all events when ``None``)."""
    data: dict = {}
    for ev in events:
        if seq is not None and ev.seq > seq:
            break
        apply_diff(data, ev.data_diff)
    return data


# ------------------------------------------------------------------------------------ routing reasons
@dataclass
class Decision:
    seq: int
    at: datetime
    bpmn_id: str
    name: str
    kind: str  # gateway | rule | risk
    #: gateway: the flows taken, each {"id", "name", "target", "condition", "default"}
    taken: list[dict] = field(default_factory=list)
    #: the data the conditions read (gateway) or the outputs written (rule)
    values: dict = field(default_factory=dict)
    #: risk: score, class, reasons, model version
    risk: dict | None = None


def _is_risk(value: Any) -> bool:
    return isinstance(value, dict) and "risk_class" in value and "model_version" in value


def decisions(events: Sequence[AuditEvent], d: Diagram) -> list[Decision]:
    """Why the instance went where it went: each risk assessment (score, class, reasons, model version
    written by a scoring service task), each business-rule task's outputs, and each gateway's taken flows
    with their conditions and the values those conditions read at that moment."""
    guid_scope = _guid_scopes(events)
    data: dict = {}
    out: list[Decision] = []
    pending: list[tuple[Decision, dict[str, Flow]]] = []  # gateways waiting for the flow they took
    for ev in events:
        before = dict(data)
        apply_diff(data, ev.data_diff)
        own = _own(ev, d, guid_scope)
        if own and pending:
            for flow_id in ev.flow_ids or []:
                for dec, outgoing in pending:
                    f = outgoing.get(flow_id)
                    if f is not None and all(t["id"] != f.id for t in dec.taken):
                        dec.taken.append({"id": f.id, "name": f.name, "target": f.target,
                                          "target_name": d.name(f.target), "condition": f.condition,
                                          "default": f.id in d.defaults})
            pending = [(dec, o) for dec, o in pending if not dec.taken]
        if ev.kind != "element_completed":
            continue
        for key, change in (ev.data_diff or {}).items():
            if isinstance(change, dict) and _is_risk(change.get("new")):
                r = change["new"]
                out.append(Decision(ev.seq, ev.at, ev.bpmn_id or "", d.name(ev.bpmn_id) or key, "risk",
                                    values={"variable": key},
                                    risk={"score": r.get("score"), "risk_class": r.get("risk_class"),
                                          "reasons": r.get("reasons") or [], "model_version": r.get("model_version"),
                                          "entity_id": r.get("entity_id")}))
        if not own:
            continue
        kind = d.kind(ev.bpmn_id)
        if kind == "businessRuleTask":
            outputs = {k: c.get("new") for k, c in (ev.data_diff or {}).items() if isinstance(c, dict) and "new" in c}
            out.append(Decision(ev.seq, ev.at, ev.bpmn_id, d.name(ev.bpmn_id), "rule", values=outputs))
        elif kind in GATEWAYS:
            outgoing = {f.id: f for f in d.outgoing(ev.bpmn_id)}
            if len(outgoing) < 2:
                continue  # a merging gateway decides nothing
            names = set()
            for f in outgoing.values():
                names.update(n for n in _IDENT.findall(f.condition or "") if n not in _KEYWORDS)
            dec = Decision(ev.seq, ev.at, ev.bpmn_id, d.name(ev.bpmn_id), "gateway",
                           values={n: before.get(n, data.get(n)) for n in sorted(names) if n in data or n in before})
            out.append(dec)
            pending.append((dec, outgoing))
    return out


# ---------------------------------------------------------------------------------------- the page
@dataclass
class History:
    instance: ProcessInstance
    definition: tuple[int, str, int]  # id, process id, version
    events: list[AuditEvent]
    path: Path
    decisions: list[Decision]
    incidents: list[Incident]
    verdict: audit.VerifyReport
    diagram: Diagram
    #: the event the view stops at (``None``: the present)
    upto: int | None = None
    data: dict = field(default_factory=dict)


def history(session: Session, instance_id: int, upto: int | None = None) -> History:
    """Everything the instance page shows; ``upto`` = a past event's seq: the instance as it was then."""
    inst = get_instance(session, instance_id)
    definition = session.execute(select(ProcessDefinition.id, ProcessDefinition.process_id,
                                        ProcessDefinition.version)
                                 .where(ProcessDefinition.id == inst.definition_id)).one()
    d = diagram_of(session, inst.definition_id)
    events = events_of(session, instance_id)
    if upto is not None:
        if not events or not 1 <= upto <= events[-1].seq:
            raise NotFound(f"instance {instance_id} has no event {upto} "
                           f"(its events are 1..{events[-1].seq if events else 0})")
        shown = [e for e in events if e.seq <= upto]
        path = past_path(shown, d)
    else:
        shown = events
        path = path_of(session, inst, events, d)
    incidents = list(session.scalars(select(Incident).where(Incident.instance_id == instance_id)
                                     .order_by(Incident.id.desc())))
    verdict = audit.verify(session, chain=audit.instance_chain(instance_id))
    return History(inst, tuple(definition), shown, path, decisions(shown, d), incidents, verdict, d, upto,
                   state_at(shown))


def past_path(events: Sequence[AuditEvent], d: Diagram) -> Path:
    """The path as it stood after the last of ``events``: completed elements and taken flows so far; the
    current position is what had been created (a task, a failure) and not completed or cancelled by then."""
    guid_scope = _guid_scopes(events)
    p = Path()
    done, flows = [], []
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
        if not _own(ev, d, guid_scope):
            continue
        if ev.kind in COMPLETING:
            done.append(ev.bpmn_id)
        if ev.kind in COMPLETING or ev.kind == "task_created":
            flows.extend(f for f in ev.flow_ids or [] if f in d.flows)
    p.done, p.flows = _ordered(done), _ordered(flows)
    p.current = _ordered(_place(d, [b for b in open_tasks.values() if b], events, guid_scope))
    p.failed = _ordered(_place(d, [b for b in failed.values() if b], events, guid_scope))
    return p


# --------------------------------------------------------------------------------------------- export
CSV_COLUMNS = ("instance_id", "seq", "at", "actor", "kind", "bpmn_id", "element_name", "task_guid", "flow_ids",
               "data_diff", "detail", "prev_hash", "hash")


def export_rows(session: Session, instance_id: int) -> Iterator[dict]:
    """Every event of the instance as a flat row (JSON documents as text), in chain order."""
    inst = get_instance(session, instance_id)
    d = diagram_of(session, inst.definition_id)
    q = (select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(instance_id)).order_by(AuditEvent.seq)
         .execution_options(yield_per=500))
    for ev in session.scalars(q):
        yield {"instance_id": instance_id, "seq": ev.seq, "at": ev.at.isoformat(timespec="microseconds"),
               "actor": ev.actor, "kind": ev.kind, "bpmn_id": ev.bpmn_id or "",
               "element_name": (d.name(ev.bpmn_id) or "") if ev.bpmn_id else "", "task_guid": ev.task_guid or "",
               "flow_ids": " ".join(ev.flow_ids or []),
               "data_diff": json.dumps(ev.data_diff or {}, ensure_ascii=False, sort_keys=True, default=str),
               "detail": json.dumps(ev.detail or {}, ensure_ascii=False, sort_keys=True, default=str),
               "prev_hash": ev.prev_hash, "hash": ev.hash}


def export_document(session: Session, instance_id: int) -> dict:
    """The JSON export: the instance, every event (JSON documents kept as objects) and the chain verdict."""
    inst = get_instance(session, instance_id)
    d = diagram_of(session, inst.definition_id)
    events = [{"seq": e.seq, "at": e.at.isoformat(timespec="microseconds"), "actor": e.actor, "kind": e.kind,
               "bpmn_id": e.bpmn_id, "element_name": d.name(e.bpmn_id) if e.bpmn_id else None,
               "task_guid": e.task_guid, "flow_ids": list(e.flow_ids or []), "data_diff": e.data_diff or {},
               "detail": e.detail or {}, "prev_hash": e.prev_hash, "hash": e.hash}
              for e in events_of(session, instance_id)]
    verdict = audit.verify(session, chain=audit.instance_chain(instance_id))
    return {"instance": {"id": inst.id, "process_id": inst.process_id, "definition_id": inst.definition_id,
                         "business_key": inst.business_key, "status": inst.status,
                         "started_by": inst.started_by, "started_at": inst.started_at.isoformat(),
                         "ended_at": inst.ended_at.isoformat() if inst.ended_at else None,
                         "parent_instance_id": inst.parent_instance_id},
            "chain": {"ok": verdict.ok, "events": verdict.events, "problems": verdict.problems},
            "events": events}
