"""What auditors read: instance search, an instance's ordered events, the path it took, the reasons behind
its routing decisions, its data as it was at any event, and the export rows.

Everything comes from the ``audit_event`` rows of the instance's chain (read by the ``(chain, seq)``
index) and the projections (``human_task``, ``job``, ``message_subscription``, ``incident``); nothing loads
or replays a workflow state. The definition's BPMN XML is parsed once per definition (cached) to tell the
instance's own elements from those of called processes, to name elements and to read gateway conditions.

Three modules make it up: the search and the reads (:mod:`engine.runtime.history_search`), the diagram
and the path taken on it (:mod:`engine.runtime.history_path`, which states the path rules), and this one:
the data at an event, the routing decisions, the instance page and the exports. Every public name of the
three is importable from here.

Data at event *n* is rebuilt by applying the ``data_diff`` of events 1..n in order (``new`` sets a key,
``deleted`` removes it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound

from . import audit
from .history_path import (
    BPMN_NS,
    COMPLETING,
    Diagram,
    Flow,
    Path,
    definition_xml,
    diagram_of,
    guid_scopes,
    is_own,
    parse_diagram,
    past_path,
    path_of,
)
from .history_search import (
    COUNT_CAP,
    MAX_PAGE,
    STATUSES,
    InstancePage,
    InstanceQuery,
    events_of,
    get_instance,
    process_ids,
    search_instances,
)
from .models import AuditEvent, Incident, ProcessDefinition, ProcessInstance

__all__ = [
    # engine.runtime.history_search
    "COUNT_CAP", "MAX_PAGE", "STATUSES", "InstancePage", "InstanceQuery", "events_of", "get_instance",
    "process_ids", "search_instances",
    # engine.runtime.history_path
    "BPMN_NS", "COMPLETING", "Diagram", "Flow", "Path", "definition_xml", "diagram_of", "parse_diagram",
    "past_path", "path_of",
    # this module
    "CSV_COLUMNS", "GATEWAYS", "Decision", "History", "apply_diff", "decisions", "export_document",
    "export_rows", "history", "state_at",
]

GATEWAYS = ("exclusiveGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"and", "or", "not", "in", "is", "None", "True", "False", "if", "else", "for", "lambda"}


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
    guid_scope = guid_scopes(events)
    data: dict = {}
    out: list[Decision] = []
    pending: list[tuple[Decision, dict[str, Flow]]] = []  # gateways waiting for the flow they took
    for ev in events:
        before = dict(data)
        apply_diff(data, ev.data_diff)
        own = is_own(ev, d, guid_scope)
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
