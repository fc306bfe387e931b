"""Enforcement cases: lead → filing → decision within 90 days → close.

``lead`` (opened from a case lead, linked to its hazards) → ``filed`` (case number, ``decision_due`` =
90 calendar days after filing rolled to a working day, ``decision_reminder_at`` a configurable number of
days before) → ``decided`` (type, penalties, fine) → ``closed``; or ``not_filed`` after verification;
or ``terminated`` when the entity ceases to exist (``registry_events.terminate_for_entity``). A closed
case no longer blocks hazard removal.
Functions take a ``Session`` and never commit; ``open_case`` is idempotent per (instance, task).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.audit import system_event

from . import calendar, case_clock
from .hazards import get_hazards, verify_rectification
from .loop_models import CASE_DONE, EnforcementCase, EnforcementCaseHazard
from .registry_events import append_history, process_terminated, require_terminated_process, supervisor_reason

LEAD_SOURCES = ("inspection", "reinspection", "report", "complaint", "transfer", "monitoring")
DECISION_TYPES = ("penalty", "minor_no_penalty", "first_offence_excused", "not_established", "transfer_judiciary")
#: 90 days from filing (Administrative Penalty Law art. 60; SAMR procedural rules); extended and paused by
#: :mod:`.case_clock`
DECISION_DAYS = case_clock.DECISION_DAYS
DEFAULT_REMINDER_DAYS = 10


def get_case(session: Session, case_id: int) -> EnforcementCase:
    c = session.get(EnforcementCase, int(case_id))
    if c is None:
        raise NotFound(f"enforcement case {case_id} not found")
    return c


def case_hazard_ids(session: Session, case_id: int) -> list[int]:
    return list(session.scalars(select(EnforcementCaseHazard.hazard_id)
                                .where(EnforcementCaseHazard.case_id == case_id)
                                .order_by(EnforcementCaseHazard.hazard_id)).all())


def open_case(session: Session, *, uscc: str, lead_source: str, instance_id: int, task_key: str, now: datetime,
              hazard_ids: list[int] | None = None, entity_id: int | None = None,
              summary: str | None = None) -> EnforcementCase:
    """A case lead for the entity, linked to ``hazard_ids`` (which then wait for it to close)."""
    found = session.scalars(select(EnforcementCase).where(EnforcementCase.instance_id == instance_id,
                                                          EnforcementCase.task_guid == task_key)).first()
    if found is not None:
        return found
    if lead_source not in LEAD_SOURCES:
        raise InvalidInput(f"lead source {lead_source!r} is not one of {', '.join(LEAD_SOURCES)}")
    if not uscc:
        raise InvalidInput("uscc is required")
    ids = [int(i) for i in (hazard_ids or [])]
    get_hazards(session, ids)
    c = EnforcementCase(instance_id=instance_id, task_guid=task_key, uscc=uscc, entity_id=entity_id,
                        lead_source=lead_source, lead_at=now, status="lead", history=[])
    append_history(c, now, "lead_opened", source=lead_source, hazard_ids=ids or None, summary=summary)
    session.add(c)
    session.flush()
    for h in get_hazards(session, ids):
        session.add(EnforcementCaseHazard(case_id=c.id, hazard_id=h.id))
        if h.needs_case:
            h.needs_case = False
        append_history(h, now, "case_lead", case_id=c.id, source=lead_source)
    session.flush()
    return c


def _require(c: EnforcementCase, *statuses: str) -> None:
    if c.status not in statuses:
        raise Conflict(f"case {c.id} is {c.status}, expected {' or '.join(statuses)}")


def file_case(session: Session, case_id: int, now: datetime, *, case_number: str | None = None,
              filed_at: datetime | None = None, reminder_days: int = DEFAULT_REMINDER_DAYS) -> EnforcementCase:
    """File the case: number (generated ``RF-<year>-<id>`` if none), decision due 90 days after filing."""
    c = get_case(session, case_id)
    if c.status == "filed" and c.filed_at is not None:
        return c
    _require(c, "lead")
    at = filed_at or now
    due = calendar.refresh(session).add_days(at, DECISION_DAYS)
    c.case_number = case_number or f"RF-{at.year}-{c.id:06d}"
    c.filed_at, c.decision_due = at, due.at
    c.decision_reminder_at = due.at - timedelta(days=max(0, int(reminder_days)))
    c.status = "filed"
    append_history(c, now, "filed", case_number=c.case_number, decision_due=due.at.isoformat(),
                   provisional=due.provisional or None)
    session.flush()
    return c


def record_reminder(session: Session, case_id: int, now: datetime) -> EnforcementCase:
    c = get_case(session, case_id)
    if c.reminded_at is None:
        c.reminded_at = now
        append_history(c, now, "decision_reminder", decision_due=c.decision_due.isoformat() if c.decision_due else None)
        session.flush()
    return c


def record_escalation(session: Session, case_id: int, now: datetime) -> EnforcementCase:
    c = get_case(session, case_id)
    if c.escalated_at is None:
        c.escalated_at = now
        append_history(c, now, "decision_overdue_escalated",
                       decision_due=c.decision_due.isoformat() if c.decision_due else None)
        session.flush()
    return c


def decide_case(session: Session, case_id: int, decision_type: str, now: datetime, *,
                penalties: list[str] | None = None, fine: float | None = None,
                decided_at: datetime | None = None) -> EnforcementCase:
    c = get_case(session, case_id)
    if c.status == "decided":
        return c
    _require(c, "filed")
    if decision_type not in DECISION_TYPES:
        raise InvalidInput(f"decision type {decision_type!r} is not one of {', '.join(DECISION_TYPES)}")
    at = decided_at or now
    late = case_clock.finish_for_decision(session, c, at, now)  # a pause still open ends on the decision's day
    c.decision_type, c.decided_at, c.status = decision_type, at, "decided"
    c.penalties = list(penalties or []) or None
    c.fine = float(fine) if fine not in (None, "") else None
    append_history(c, now, "decided", decision_type=decision_type, penalties=c.penalties, fine=c.fine,
                   late=late or None)
    session.flush()
    return c


def close_case(session: Session, case_id: int, reason: str, now: datetime,
               rectification_verified: bool = False) -> EnforcementCase:
    """Close (``not_filed`` if it never got filed). Idempotent; a terminated case stays terminated.
    ``rectification_verified`` (the closing report says so) verifies the case's open hazards."""
    c = get_case(session, case_id)
    if c.status in CASE_DONE:
        return c
    if rectification_verified:
        verify_rectification(session, case_hazard_ids(session, c.id), now, source=f"case:{c.id}")
    c.status = "not_filed" if c.status == "lead" else "closed"
    c.closed_at, c.close_reason = now, reason
    append_history(c, now, c.status, reason=reason)
    session.flush()
    return c


def note_terminated_instance(session: Session, instance_id: int, reason: str, now: datetime) -> dict | None:
    """A runtime terminate hook (``engine.bootstrap``): an administrator terminated the process of
    ``instance_id``'s unsettled cases. Their status stays — an administrative-penalty procedure is not
    ended by stopping a workflow (that is ``terminated``/``closed`` with a legal reason) — and their linked
    hazards keep waiting for them; each case records in its history that its process was terminated and
    why, and the hazard registry page lists it (``dashboard.stranded``) for a supervisor to act on."""
    cases = session.scalars(select(EnforcementCase).where(
        EnforcementCase.instance_id == instance_id, EnforcementCase.status.not_in(CASE_DONE))
        .order_by(EnforcementCase.id)).all()
    if not cases:
        return None
    for c in cases:
        process_terminated(c, now, instance_id, reason)
    session.flush()
    return {"cases_stranded": [c.id for c in cases]}


def terminate_stranded_case(session: Session, case_id: int, *, reason: str, actor: str, now: datetime) -> dict:
    """A supervisor ends an open case that no process follows any more (its instance was terminated:
    ``dashboard.stranded``): the case is ``terminated`` with the reason (its hazards stay listed until their
    rectification is settled). Recorded in the system audit chain (``stranded_case_terminated``)."""
    reason = supervisor_reason(reason)
    c = session.get(EnforcementCase, int(case_id))
    if c is None:
        raise NotFound(f"enforcement case {case_id} not found")
    if c.status in CASE_DONE:
        raise Conflict(f"enforcement case {c.id} is already {c.status}")
    require_terminated_process(session, f"enforcement case {c.id}", c.instance_id)
    c.status, c.closed_at, c.close_reason = "terminated", now, reason
    append_history(c, now, "terminated", reason=reason, by=actor)
    system_event(session, "stranded_case_terminated", actor, case_id=c.id, uscc=c.uscc, instance_id=c.instance_id,
                 reason=reason)
    session.flush()
    return {"case_id": c.id, "status": c.status, "reason": reason}


def case_dict(session: Session, c: EnforcementCase) -> dict:
    return {"case_id": c.id, "case_number": c.case_number, "uscc": c.uscc, "status": c.status,
            "lead_source": c.lead_source, "filed_at": c.filed_at.isoformat() if c.filed_at else None,
            "decision_due": c.decision_due.isoformat() if c.decision_due else None,
            "decision_reminder_at": c.decision_reminder_at.isoformat() if c.decision_reminder_at else None,
            "decision_type": c.decision_type, "fine": c.fine, "procedure": c.procedure or "ordinary",
            "clock": case_clock.clock_state(c, c.decided_at or c.closed_at or clock.now()),
            "decided_at": c.decided_at.isoformat() if c.decided_at else None,
            "hazard_ids": case_hazard_ids(session, c.id)}
