"""The safeguards of an enforcement case that are not the decision clock: legal review and collective
deliberation, evidence held and its 7-day decision, and the summary procedure.

* **Legal review (法制审核)** and **collective deliberation (集体讨论)** are tasks of the ``enforcement`` process,
  required by rule on the proposed penalty (``processes/legal_review.dmn``, ``collective_deliberation.dmn``:
  heavy kinds, large fines, complex cases; the thresholds are those tables). :func:`record_review` writes each
  opinion into the case's history (``legal_review`` / ``collective_deliberation``: outcome, opinion, the rule's
  reason, who); anything but ``agree`` sends the case back to the investigation.
* **Evidence held (先行登记保存)** must be decided within 7 days (Administrative Penalty Law art. 56; art. 85: its 7
  days are working days): :func:`hold_evidence` records the hold and its ``decide_by`` (the 7th working day after
  the day it was held, end of day in China), :func:`decide_hold` the decision, :func:`record_hold_overdue` the
  escalation when the process's timer found no decision by then.
* **Summary procedure (简易程序)**: a case the rule ``processes/summary_procedure.dmn`` admits (facts conclusive with a
  legal basis; a warning, or a fine up to 200 yuan for a citizen / 3,000 yuan for an organisation) is decided on
  the spot without filing or investigation: :func:`decide_summary` takes it from ``lead`` to ``decided`` with
  ``procedure = "summary"`` and no decision clock.

Functions take a ``Session`` and never commit; each is idempotent for a repeated call with the same arguments.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput

from . import calendar
from .calendar import local_day
from .enforcement import get_case
from .loop_models import EnforcementCase
from .registry_events import append_history

#: the two reviews before a decision, as the case's history names them
REVIEW_KINDS = ("legal_review", "collective_deliberation")
#: a reviewer agrees, returns the case for a supplementary investigation, or disagrees (with reasons)
REVIEW_OUTCOMES = ("agree", "supplement", "disagree")
#: Administrative Penalty Law art. 56: evidence held is decided within 7 days (art. 85: working days)
HOLD_DECISION_DAYS = 7
#: SAMR procedure rules: what becomes of evidence held
HOLD_DECISIONS = ("preserve_record", "send_for_testing", "seize", "confiscate", "release")
#: the kinds of penalty the summary procedure may impose (art. 51: a warning or a fine)
SUMMARY_PENALTIES = ("warning", "fine")
PROCEDURES = ("ordinary", "summary")


def _events(c: EnforcementCase, name: str) -> list[dict]:
    return [e for e in (c.history or []) if e.get("event") == name]


def record_review(session: Session, case_id: int, kind: str, outcome: str, *, opinion: str, reviewer: str,
                  now: datetime, basis: str | None = None) -> dict:
    """A reviewer's opinion on the case before its decision: recorded in the case's history."""
    c = get_case(session, case_id)
    if kind not in REVIEW_KINDS:
        raise InvalidInput(f"review kind {kind!r} is not one of {', '.join(REVIEW_KINDS)}")
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput(f"review outcome {outcome!r} is not one of {', '.join(REVIEW_OUTCOMES)}")
    if c.status != "filed":
        raise Conflict(f"case {c.id} is {c.status}: only a filed case before its decision is reviewed")
    if not (opinion or "").strip():
        raise InvalidInput("a review needs the reviewer's opinion and reasons")
    append_history(c, now, kind, outcome=outcome, opinion=opinion, basis=basis or None, by=reviewer)
    session.flush()
    return {"kind": kind, "outcome": outcome, "by": reviewer, "round": len(_events(c, kind))}


def hold_evidence(session: Session, case_id: int, *, items: str, held_on: datetime, now: datetime) -> dict:
    """Evidence registered and held on ``held_on``: it must be decided by the 7th working day after it."""
    c = get_case(session, case_id)
    if c.status != "filed":
        raise Conflict(f"case {c.id} is {c.status}: evidence is held in the investigation of a filed case")
    if not (items or "").strip():
        raise InvalidInput("name the items held")
    due = calendar.refresh(session).add_workdays(held_on, HOLD_DECISION_DAYS)
    entry = {"items": items, "held_on": local_day(held_on).isoformat(), "decide_by": due.at.isoformat()}
    append_history(c, now, "evidence_held", **entry, provisional=due.provisional or None)
    session.flush()
    return {**entry, "decided": False}


def _open_hold(c: EnforcementCase) -> dict:
    held = _events(c, "evidence_held")
    if not held:
        raise Conflict(f"case {c.id} holds no evidence")
    return held[-1]


def decide_hold(session: Session, case_id: int, decision: str, *, decided_on: datetime, note: str,
                now: datetime) -> dict:
    """The decision on the last evidence held, with whether it came within the 7 working days."""
    c = get_case(session, case_id)
    if decision not in HOLD_DECISIONS:
        raise InvalidInput(f"decision {decision!r} on evidence held is not one of {', '.join(HOLD_DECISIONS)}")
    held = _open_hold(c)
    if local_day(decided_on) < local_day(held["held_on"]):
        raise InvalidInput(f"the evidence was held on {held['held_on']}: it cannot be decided before")
    late = local_day(decided_on) > local_day(held["decide_by"])
    append_history(c, now, "evidence_hold_decided", decision=decision, decided_on=local_day(decided_on).isoformat(),
                   note=note, late=late or None)
    session.flush()
    return {**{k: held[k] for k in ("items", "held_on", "decide_by")}, "decided": True, "decision": decision,
            "late": late}


def record_hold_overdue(session: Session, case_id: int, now: datetime) -> dict:
    """The 7 working days passed without a decision on the evidence held: recorded, a supervisor is called."""
    c = get_case(session, case_id)
    held = _open_hold(c)
    append_history(c, now, "evidence_hold_overdue", held_on=held["held_on"], decide_by=held["decide_by"])
    session.flush()
    return {"held_on": held["held_on"], "decide_by": held["decide_by"], "escalated": True}


def decide_summary(session: Session, case_id: int, *, penalties: list[str], fine: float | None,
                   decision_number: str, decided_at: datetime, now: datetime) -> EnforcementCase:
    """An on-the-spot decision (summary procedure): the lead becomes a decided case without filing. Whether the
    case may take this procedure is the rule's (``summary_procedure.dmn``); here only its kinds are checked."""
    c = get_case(session, case_id)
    if c.status == "decided" and c.procedure == "summary":
        return c
    if c.status != "lead":
        raise Conflict(f"case {c.id} is {c.status}: only a case lead is decided on the spot")
    kinds = list(penalties or [])
    if not kinds or any(k not in SUMMARY_PENALTIES for k in kinds):
        raise InvalidInput(f"the summary procedure imposes a warning or a fine, not {', '.join(kinds) or 'nothing'}")
    amount = float(fine) if "fine" in kinds and fine not in (None, "") else None
    if "fine" in kinds and not amount:
        raise InvalidInput("a fine on the spot needs its amount")
    c.procedure, c.status, c.decision_type = "summary", "decided", "penalty"
    c.decided_at, c.penalties, c.fine = decided_at, kinds, amount
    append_history(c, now, "decided", procedure="summary", decision_type="penalty", penalties=kinds, fine=amount,
                   decision_number=decision_number)
    session.flush()
    return c
