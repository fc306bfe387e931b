"""The hazard registry and rectification orders: findings recorded as hazards, the order to rectify with its
deadline, re-inspection, escalation to a case, removal; and what happens when the entity ceases to exist.

Lifecycle of a hazard: ``open`` → ``rectification_verified`` (re-inspection found it fixed, or the
case closing report says so) → ``removed`` — removal only when the rectification is verified AND every
enforcement case linked to it is closed. An entity that ceases to exist (deregistered, revoked, moved
out) closes its open hazards as ``closed_other`` with the reason. Rows are never deleted; every change
appends to ``history``, and ``entity_hazard_stats.recurrence_count`` (one per recording) stays.

Every writing function that a service task calls takes ``instance_id``/``task_key``: a second call
with the same key returns what the first one wrote (a retried task never duplicates).
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.audit import system_event

from . import calendar
from .loop_models import (
    CASE_DONE,
    HAZARD_GRADES,
    OPEN_HAZARD_STATUSES,
    OPEN_ORDER_STATUSES,
    EnforcementCase,
    EnforcementCaseHazard,
    EntityHazardStats,
    Hazard,
    RectificationOrder,
)
from .registry_events import (
    append_history,
    process_terminated,
    require_terminated_process,
    supervisor_reason,
    terminate_for_entity,
)

REINSPECTION_OUTCOMES = ("fixed", "partly_fixed", "not_fixed", "new_problem")
DEADLINE_KINDS = ("workdays", "days")


class RemovalBlocked(Conflict):
    """Removal asked for a hazard whose rectification is not verified or whose case is still open."""

    def __init__(self, message: str, blocking: list[dict]):
        super().__init__(message, blocking=blocking)
        self.blocking = blocking


class ExtensionUsed(Conflict):
    """An order gets one extension at most."""


# ---------------------------------------------------------------------------------------------- registry
def entity_stats(session: Session, uscc: str) -> dict:
    """How often the entity came into the registry so far, and its open hazards (the grade DMN's input)."""
    stats = session.get(EntityHazardStats, uscc)
    open_n = len(session.scalars(select(Hazard.id).where(Hazard.uscc == uscc, Hazard.status == "open")).all())
    return {"uscc": uscc, "recurrence_count": stats.recurrence_count if stats else 0,
            "hazards_total": stats.hazards_total if stats else 0, "open_hazards": open_n}


def _finding(f: Any, i: int) -> dict:
    if not isinstance(f, dict):
        raise InvalidInput(f"finding {i} is not an object")
    missing = [k for k in ("item_code", "clause") if not f.get(k)]
    if missing:
        raise InvalidInput(f"finding {i} lacks {', '.join(missing)}")
    return f


def record_hazards(session: Session, *, uscc: str, findings: list, grade: str, instance_id: int, task_key: str,
                   now: datetime, entity_id: int | None = None, source_kind: str = "inspection",
                   case_lead: bool = False) -> list[Hazard]:
    """One hazard per finding (``item_code``, ``clause``, ``description``), all with ``grade``; the
    entity's recurrence count goes up by one per call. ``case_lead``: a case lead is owed at once
    (the grade DMN says so for ``high``). Idempotent per (instance, task)."""
    existing = session.scalars(select(Hazard).where(Hazard.source_instance_id == instance_id,
                                                    Hazard.source_task == task_key).order_by(Hazard.seq)).all()
    if existing:
        return list(existing)
    if grade not in HAZARD_GRADES:
        raise InvalidInput(f"hazard grade {grade!r} is not one of {', '.join(HAZARD_GRADES)}")
    if not findings:
        raise InvalidInput("no findings to record")
    if not uscc:
        raise InvalidInput("uscc is required")
    rows = []
    for i, f in enumerate(findings):
        f = _finding(f, i)
        h = Hazard(uscc=uscc, entity_id=entity_id, item_code=str(f["item_code"]), clause=str(f["clause"]),
                   description=f.get("description"), grade=grade, source_instance_id=instance_id,
                   source_task=task_key, seq=i, source_kind=source_kind, found_at=now, status="open",
                   needs_case=bool(case_lead), history=[])
        append_history(h, now, "recorded", grade=grade, proposed_grade=f.get("hazard_grade"), source=source_kind,
                       instance_id=instance_id)
        session.add(h)
        rows.append(h)
    stats = session.get(EntityHazardStats, uscc)
    if stats is None:
        stats = EntityHazardStats(uscc=uscc, entity_id=entity_id, recurrence_count=0, hazards_total=0,
                                  first_recorded_at=now, last_recorded_at=now)
        session.add(stats)
    stats.recurrence_count += 1
    stats.hazards_total += len(rows)
    stats.last_recorded_at = now
    if entity_id is not None:
        stats.entity_id = entity_id
    session.flush()
    return rows


def instance_hazard_ids(session: Session, instance_id: int) -> list[int]:
    """Every hazard an instance recorded (its registry entries), oldest first."""
    return list(session.scalars(select(Hazard.id).where(Hazard.source_instance_id == instance_id)
                                .order_by(Hazard.id)).all())


def get_hazards(session: Session, hazard_ids: Iterable[int]) -> list[Hazard]:
    ids = [int(i) for i in hazard_ids]
    rows = {h.id: h for h in session.scalars(select(Hazard).where(Hazard.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(f"hazard(s) {missing} not found")
    return [rows[i] for i in ids]


def verify_rectification(session: Session, hazard_ids: Iterable[int], now: datetime, *, source: str = "reinspection",
                         order_id: int | None = None) -> list[Hazard]:
    """Mark hazards ``rectification_verified`` (idempotent; closed or removed ones are left alone)."""
    rows = get_hazards(session, hazard_ids)
    for h in rows:
        if h.status == "open":
            h.status = "rectification_verified"
            h.verified_at = now
            append_history(h, now, "rectification_verified", source=source, order_id=order_id)
    if order_id is not None:
        order = _order(session, order_id)
        if order.status not in ("verified", "closed_other"):
            order.status = "verified"
            order.verified_at = now
            append_history(order, now, "verified", source=source)
    session.flush()
    return rows


def open_cases_for(session: Session, hazard_ids: Iterable[int]) -> list[EnforcementCase]:
    ids = [int(i) for i in hazard_ids]
    linked = select(EnforcementCaseHazard.case_id).where(EnforcementCaseHazard.hazard_id.in_(ids))
    return list(session.scalars(
        select(EnforcementCase).where(EnforcementCase.id.in_(linked), EnforcementCase.status.not_in(CASE_DONE))
        .order_by(EnforcementCase.id)).all())


def removal_blockers(session: Session, hazard_ids: Iterable[int]) -> list[dict]:
    """Why these hazards cannot be removed yet (empty: they can)."""
    rows = get_hazards(session, hazard_ids)
    blocking = [{"hazard_id": h.id, "reason": "rectification_not_verified", "status": h.status}
                for h in rows if h.status == "open"]
    for case in open_cases_for(session, [h.id for h in rows if h.status != "closed_other"]):
        blocking.append({"case_id": case.id, "case_number": case.case_number, "reason": "case_open",
                         "status": case.status})
    return blocking


def remove_hazards(session: Session, hazard_ids: Iterable[int], now: datetime) -> list[Hazard]:
    """Remove verified hazards whose cases are all closed; raise :class:`RemovalBlocked` otherwise.

    Already removed or ``closed_other`` hazards are left as they are (idempotent).
    """
    ids = [int(i) for i in hazard_ids]
    blocking = removal_blockers(session, ids)
    if blocking:
        raise RemovalBlocked(f"hazards {ids} cannot be removed yet: "
                             + "; ".join(b["reason"] + (f" (case {b.get('case_number') or b.get('case_id')})"
                                                        if "case_id" in b else f" (hazard {b['hazard_id']})")
                                         for b in blocking), blocking)
    rows = get_hazards(session, ids)
    for h in rows:
        if h.status == "rectification_verified":
            h.status = "removed"
            h.removed_at = now
            append_history(h, now, "removed")
    session.flush()
    return rows


def close_for_entity(session: Session, uscc: str, reason: str, now: datetime) -> dict:
    """The entity ceased to exist: close its open and verified hazards (``closed_other``, with the
    reason), close its open orders and terminate its open cases. Idempotent."""
    if not reason:
        raise InvalidInput("a reason is required (e.g. status_deregistered)")
    hazards = session.scalars(select(Hazard).where(
        Hazard.uscc == uscc, Hazard.status.in_(OPEN_HAZARD_STATUSES)).order_by(Hazard.id)).all()
    for h in hazards:
        h.status = "closed_other"
        h.closed_at = now
        h.closed_reason = reason
        append_history(h, now, "closed_other", reason=reason)
    orders = session.scalars(select(RectificationOrder).where(
        RectificationOrder.uscc == uscc, RectificationOrder.status.in_(("issued", "served", "reported")))).all()
    for o in orders:
        o.status = "closed_other"
        append_history(o, now, "closed_other", reason=reason)
    cases = terminate_for_entity(session, uscc, reason, now)
    session.flush()
    return {"uscc": uscc, "reason": reason, "hazards_closed": [h.id for h in hazards],
            "orders_closed": [o.id for o in orders], "cases_terminated": [c.id for c in cases]}


# ---------------------------------------------------------------------------------------------- orders
@dataclass
class OrderView:
    order_id: int
    hazard_ids: list[int]
    deadline: str
    deadline_day: str
    provisional: bool
    status: str
    extension_used: bool
    rectified_before_service: bool

    @classmethod
    def of(cls, o: RectificationOrder) -> "OrderView":
        return cls(o.id, list(o.hazard_ids), o.deadline.isoformat(), o.deadline_day.isoformat(), o.provisional,
                   o.status, o.extension_used, o.rectified_before_service)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _order(session: Session, order_id: int) -> RectificationOrder:
    o = session.get(RectificationOrder, int(order_id))
    if o is None:
        raise NotFound(f"rectification order {order_id} not found")
    return o


def _deadline(session: Session, start: datetime, days: int, kind: str) -> calendar.Deadline:
    if kind not in DEADLINE_KINDS:
        raise InvalidInput(f"deadline kind {kind!r} is not one of {', '.join(DEADLINE_KINDS)}")
    return calendar.refresh(session).compute(start, days, kind)


def issue_order(session: Session, *, uscc: str, hazard_ids: list[int], days: int, instance_id: int, task_key: str,
                now: datetime, kind: str = "workdays") -> RectificationOrder:
    """A rectification order for ``hazard_ids``; its deadline runs from service (from issue until served)."""
    found = session.scalars(select(RectificationOrder).where(RectificationOrder.instance_id == instance_id,
                                                             RectificationOrder.task_guid == task_key)).first()
    if found is not None:
        return found
    get_hazards(session, hazard_ids)
    if days < 1:
        raise InvalidInput("an order needs at least one day to rectify")
    d = _deadline(session, now, days, kind)
    o = RectificationOrder(instance_id=instance_id, task_guid=task_key, uscc=uscc,
                           hazard_ids=[int(i) for i in hazard_ids], days=days, deadline_kind=kind, deadline=d.at,
                           deadline_day=d.day, provisional=d.provisional, issued_at=now, status="issued",
                           rectified_before_service=False, extension_used=False, history=[])
    append_history(o, now, "issued", days=days, kind=kind, deadline=d.at.isoformat(), provisional=d.provisional or None)
    session.add(o)
    session.flush()
    return o


def serve_order(session: Session, order_id: int, now: datetime,
                served_at: datetime | None = None) -> RectificationOrder:
    """The order reached the party: the deadline is recomputed from the day of service (holidays roll).
    An order the party already reported as fixed keeps status ``reported``."""
    o = _order(session, order_id)
    if o.served_at is not None:
        return o
    at = served_at or now
    d = _deadline(session, at, o.days, o.deadline_kind)
    o.served_at, o.deadline, o.deadline_day, o.provisional = at, d.at, d.day, d.provisional
    if o.status == "issued":
        o.status = "served"
    append_history(o, now, "served", served_at=at.isoformat(), deadline=d.at.isoformat(),
                   provisional=d.provisional or None)
    session.flush()
    return o


def report_rectified(session: Session, order_id: int, now: datetime, note: str | None = None) -> RectificationOrder:
    """The party reports the fix (early report); before service it is flagged ``rectified_before_service``."""
    o = _order(session, order_id)
    if o.reported_at is not None:
        return o
    o.reported_at = now
    if o.served_at is None:
        o.rectified_before_service = True
    if o.status in ("issued", "served"):
        o.status = "reported"
    append_history(o, now, "reported", before_service=o.rectified_before_service or None, note=note)
    session.flush()
    return o


def record_reinspection(session: Session, order_id: int, outcome: str, now: datetime,
                        officers: list[str] | None = None) -> RectificationOrder:
    if outcome not in REINSPECTION_OUTCOMES:
        raise InvalidInput(f"re-inspection outcome {outcome!r} is not one of {', '.join(REINSPECTION_OUTCOMES)}")
    officers = [str(x) for x in (officers or [])]
    if officers and len(set(officers)) < 2:
        raise InvalidInput(f"a re-inspection needs two different officers, got {officers}")
    o = _order(session, order_id)
    o.reinspection_outcome = outcome
    append_history(o, now, "reinspected", outcome=outcome, officers=officers or None)
    session.flush()
    return o


def extend_order(session: Session, order_id: int, days: int, now: datetime) -> RectificationOrder:
    """The one extension: ``days`` more of the order's kind counted from the current deadline."""
    o = _order(session, order_id)
    if o.extension_used:
        if o.extension_days == days:  # a retry of the same extension
            return o
        raise ExtensionUsed(f"order {o.id} was already extended once")
    if days < 1:
        raise InvalidInput("an extension needs at least one day")
    d = _deadline(session, o.deadline, days, o.deadline_kind)
    o.extension_used, o.extension_days = True, days
    o.deadline, o.deadline_day, o.provisional = d.at, d.day, d.provisional
    o.status = "served" if o.served_at else o.status
    o.reported_at = None
    append_history(o, now, "extended", days=days, deadline=d.at.isoformat())
    session.flush()
    return o


def escalate_order(session: Session, order_id: int, now: datetime, reason: str = "not_fixed") -> RectificationOrder:
    """Not fixed after the extension (or extension refused): the order's open hazards owe a case lead."""
    o = _order(session, order_id)
    if o.status != "escalated":
        o.status = "escalated"
        append_history(o, now, "escalated", reason=reason)
        for h in get_hazards(session, o.hazard_ids):
            if h.status == "open":
                h.needs_case = True
                append_history(h, now, "escalated", order_id=o.id, reason=reason)
        session.flush()
    return o


def note_terminated_instance(session: Session, instance_id: int, reason: str, now: datetime) -> dict | None:
    """A runtime terminate hook (``engine.bootstrap``): an administrator terminated ``instance_id``, so its
    unsettled rectification orders will see no serving, re-inspection or escalation. They keep their status
    and their hazards stay in the registry — stopping a process does not fix the entity's problem — but
    each order and each of its listed hazards records in its history that its process was terminated and
    why, and the hazard registry page lists the order (``dashboard.stranded``) for a supervisor to act on."""
    orders = session.scalars(select(RectificationOrder).where(
        RectificationOrder.instance_id == instance_id, RectificationOrder.status.in_(OPEN_ORDER_STATUSES))
        .order_by(RectificationOrder.id)).all()
    if not orders:
        return None
    hazard_ids: set[int] = set()
    for order in orders:
        process_terminated(order, now, instance_id, reason)
        hazard_ids.update(order.hazard_ids or [])
    listed = [h for h in get_hazards(session, hazard_ids) if h.status in OPEN_HAZARD_STATUSES]
    for h in listed:
        process_terminated(h, now, instance_id, reason, orders=[o.id for o in orders if h.id in (o.hazard_ids or [])])
    session.flush()
    return {"orders_stranded": [o.id for o in orders], "hazards_without_process": [h.id for h in listed]}


def close_stranded_order(session: Session, order_id: int, *, reason: str, actor: str, now: datetime) -> dict:
    """A supervisor closes an unsettled order that no process follows any more (its instance was
    terminated: ``dashboard.stranded``). The order ends as ``closed_other`` with the reason; each of its
    hazards still listed is closed with the same reason (``closed_other``: it leaves the registry keeping its
    history, the entity keeps its recurrence count) unless another unsettled order or an open enforcement
    case still covers it — those stay listed. Recorded in the system audit chain (``stranded_order_closed``)."""
    reason = supervisor_reason(reason)
    order = _order(session, order_id)
    if order.status not in OPEN_ORDER_STATUSES:
        raise Conflict(f"rectification order {order.id} is already {order.status}")
    require_terminated_process(session, f"rectification order {order.id}", order.instance_id)
    order.status = "closed_other"
    append_history(order, now, "closed_other", reason=reason, by=actor)
    ids = [int(i) for i in order.hazard_ids or []]
    others = session.scalars(select(RectificationOrder).where(
        RectificationOrder.uscc == order.uscc, RectificationOrder.id != order.id,
        RectificationOrder.status.in_(OPEN_ORDER_STATUSES))).all()
    covered = {int(i) for o in others for i in o.hazard_ids or []}
    covered |= set(session.scalars(  # hazards an open case is about
        select(EnforcementCaseHazard.hazard_id)
        .join(EnforcementCase, EnforcementCase.id == EnforcementCaseHazard.case_id)
        .where(EnforcementCaseHazard.hazard_id.in_(ids), EnforcementCase.status.not_in(CASE_DONE))))
    closed, kept = [], []
    for h in get_hazards(session, ids):
        if h.status not in OPEN_HAZARD_STATUSES:
            continue
        if h.id in covered:
            kept.append(h.id)
            continue
        h.status, h.closed_at, h.closed_reason = "closed_other", now, reason
        append_history(h, now, "closed_other", reason=reason, by=actor, order=order.id)
        closed.append(h.id)
    system_event(session, "stranded_order_closed", actor, order_id=order.id, uscc=order.uscc,
                 instance_id=order.instance_id, reason=reason, hazards_closed=closed, hazards_kept=kept)
    session.flush()
    return {"order_id": order.id, "status": order.status, "reason": reason, "hazards_closed": closed,
            "hazards_kept": kept}


def assess(session: Session, hazard_ids: Iterable[int]) -> dict:
    """Where a set of hazards stands, read from the registry (what the rectification process routes on)."""
    rows = get_hazards(session, hazard_ids)
    live = [h for h in rows if h.status in OPEN_HAZARD_STATUSES]
    open_cases = open_cases_for(session, [h.id for h in live])
    open_ids = [h.id for h in rows if h.status == "open"]
    return {"open_ids": open_ids, "verified_ids": [h.id for h in rows if h.status == "rectification_verified"],
            "removed_ids": [h.id for h in rows if h.status == "removed"],
            "closed_other_ids": [h.id for h in rows if h.status == "closed_other"],
            "needs_case_ids": [h.id for h in live if h.needs_case],
            "open_case_ids": [c.id for c in open_cases],
            "removable": bool(live) and not open_ids and not open_cases,
            "finished": not live}


def registry_summary(session: Session) -> dict:
    """Counts by status (for dashboards and the simulator)."""
    rows = session.execute(select(Hazard.status, func.count()).group_by(Hazard.status)).all()
    return {status: n for status, n in rows}
