"""The decision clock of an enforcement case: 90 days from filing, extended with approval, paused while
time does not count.

The SAMR procedure rules (市场监督管理行政处罚程序规定, 2022) give a case 90 days from filing to its decision;
the head of the bureau may extend it by 30 days, further extensions need a collective decision of the bureau's
leaders; the time of a hearing, of testing, inspection, quarantine or expert assessment, and of a public
notice does not count. Here the clock is a case's history:

* ``clock_paused`` (reason, the day) and ``clock_resumed`` (the days it stood still) — one pause at a time;
* ``decision_extended`` (days, who approved: ``head`` for the first, ``collective`` for any further one).

:func:`decision_due` computes the due date from them: ``DECISION_DAYS`` + extensions + paused days after the
filing day, in calendar days, rolled forward to a working day (as :func:`enforcement.file_case` does for the
first due date). Every change rewrites ``EnforcementCase.decision_due`` and ``decision_reminder_at`` (the
reminder keeps its distance before the due date); while the clock stands still the case has no running due
date (:func:`clock_state` says ``paused``) and its timers wait until it resumes (``case.clock_*`` service tasks).
The fine's own clock lives here too: :func:`late_surcharge` (15 days from service, then 3 % of the fine a day,
never more than the fine) and :func:`record_payment`, which the process's ``case.record_execution`` calls.
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput

from . import calendar
from .calendar import local_day
from .loop_models import EnforcementCase
from .registry_events import append_history

#: 90 days from filing (Administrative Penalty Law art. 60; SAMR procedure rules art. 64)
DECISION_DAYS = 90
#: why a clock may stand still: a hearing, testing/inspection/quarantine, an expert assessment, a public notice
PAUSE_REASONS = ("hearing", "testing", "expert_assessment", "public_notice")
#: who approves an extension: the head of the bureau (the first), the bureau's collective decision (any further)
APPROVALS = ("head", "collective")
EXTENSION_DAYS = 30
#: the longest single extension accepted
MAX_EXTENSION_DAYS = 90


def _events(c: EnforcementCase, *names: str) -> list[dict]:
    return [e for e in (c.history or []) if e.get("event") in names]


def open_pause(c: EnforcementCase) -> dict | None:
    """The ``clock_paused`` entry of a pause that has not ended, else ``None``."""
    last = None
    for e in _events(c, "clock_paused", "clock_resumed"):
        last = e if e["event"] == "clock_paused" else None
    return last


def paused_days(c: EnforcementCase) -> int:
    return sum(int(e.get("days", 0)) for e in _events(c, "clock_resumed"))


def extended_days(c: EnforcementCase) -> int:
    return sum(int(e.get("days", 0)) for e in _events(c, "decision_extended"))


def decision_due(session: Session, c: EnforcementCase) -> datetime:
    """The due date of the decision from the filing day, the extensions and the pauses that ended."""
    if c.filed_at is None:
        raise Conflict(f"case {c.id} is not filed: it has no decision clock")
    days = DECISION_DAYS + extended_days(c) + paused_days(c)
    return calendar.refresh(session).add_days(c.filed_at, days).at


def _require_filed(c: EnforcementCase) -> None:
    if c.status != "filed" or c.filed_at is None:
        raise Conflict(f"case {c.id} is {c.status}: only a filed case before its decision has a running clock")


def _set_due(session: Session, c: EnforcementCase) -> None:
    lead = (c.decision_due - c.decision_reminder_at) if c.decision_due and c.decision_reminder_at \
        else timedelta(days=10)
    c.decision_due = decision_due(session, c)
    c.decision_reminder_at = c.decision_due - lead


def pause(session: Session, c: EnforcementCase, reason: str, at: datetime, now: datetime) -> EnforcementCase:
    """Stop the clock from ``at``'s day on for ``reason`` (:data:`PAUSE_REASONS`)."""
    _require_filed(c)
    if reason not in PAUSE_REASONS:
        raise InvalidInput(f"pause reason {reason!r} is not one of {', '.join(PAUSE_REASONS)}")
    running = open_pause(c)
    if running is not None:
        raise Conflict(f"case {c.id}'s clock already stands still since {running['on']} ({running['reason']})")
    if local_day(at) < local_day(c.filed_at):
        raise InvalidInput(f"a pause cannot begin before the case was filed ({local_day(c.filed_at)})")
    append_history(c, now, "clock_paused", reason=reason, on=local_day(at).isoformat())
    session.flush()
    return c


def resume(session: Session, c: EnforcementCase, at: datetime, now: datetime) -> EnforcementCase:
    """Let the clock run again from ``at``'s day: the days since the pause began are added to the due date."""
    running = open_pause(c)
    if running is None:
        raise Conflict(f"case {c.id}'s clock is running: there is no pause to end")
    start, end = datetime.fromisoformat(running["on"]).date(), local_day(at)
    if end < start:
        raise InvalidInput(f"the pause began on {start}; it cannot end on {end}")
    append_history(c, now, "clock_resumed", reason=running["reason"], on=end.isoformat(), days=(end - start).days)
    _set_due(session, c)
    c.history = [*c.history[:-1], {**c.history[-1], "decision_due": c.decision_due.isoformat()}]
    session.flush()
    return c


def extend(session: Session, c: EnforcementCase, approval: str, approved_by: str, now: datetime, *,
           days: int = EXTENSION_DAYS) -> EnforcementCase:
    """Extend the decision's time by ``days``: the first extension by the head (``approval="head"``), any further
    one only by a collective decision (``"collective"``)."""
    _require_filed(c)
    if approval not in APPROVALS:
        raise InvalidInput(f"approval {approval!r} is not one of {', '.join(APPROVALS)}")
    if not (approved_by or "").strip():
        raise InvalidInput("an extension names who approved it (approved_by)")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(f"an extension is 1 to {MAX_EXTENSION_DAYS} days, not {days!r}")
    earlier = _events(c, "decision_extended")
    if not earlier and approval != "head":
        raise InvalidInput("the first extension is approved by the head of the bureau (approval=head)")
    if earlier and approval != "collective":
        raise InvalidInput("a further extension needs a collective decision (approval=collective)")
    if not earlier and days > EXTENSION_DAYS:
        raise InvalidInput(f"the head approves at most {EXTENSION_DAYS} days")
    append_history(c, now, "decision_extended", days=days, approval=approval, approved_by=approved_by.strip()[:120])
    if open_pause(c) is None:
        _set_due(session, c)
    c.history = [*c.history[:-1], {**c.history[-1], "decision_due": c.decision_due.isoformat()}]
    session.flush()
    return c


def clock_state(c: EnforcementCase, now: datetime) -> dict:
    """What the case page and the timers need: the due date, whether the clock stands still, the days paused
    and extended, and whether the decision is overdue now (never while paused)."""
    running = open_pause(c)
    due = c.decision_due
    return {"decision_due": due.isoformat() if due else None, "paused": running is not None,
            "paused_since": running["on"] if running else None, "pause_reason": running["reason"] if running else None,
            "paused_days": paused_days(c), "extended_days": extended_days(c),
            "overdue": bool(due is not None and running is None and c.status == "filed" and now > due)}


def finish_for_decision(session: Session, c: EnforcementCase, decided_at: datetime, now: datetime) -> bool:
    """Before a decision: a pause still open ends on the decision's day. Returns whether the decision is late."""
    if open_pause(c) is not None:
        resume(session, c, decided_at, now)
    return c.decision_due is not None and decided_at > c.decision_due


# ------------------------------------------------------------------------------------- paying the fine
#: the fine is due within 15 days of receiving the decision (Administrative Penalty Law art. 67)
PAYMENT_DAYS = 15
#: late payment: 3 % of the fine a day, at most the fine itself (art. 72)
SURCHARGE_RATE = 0.03


def late_surcharge(session: Session, fine: float, served_at: datetime, paid_at: datetime) -> dict:
    """What a fine paid on ``paid_at``'s day owes on top: the due day is ``PAYMENT_DAYS`` calendar days after the
    decision was served (rolled to a working day), each day after it adds ``SURCHARGE_RATE`` of the fine, and
    the surcharge never exceeds the fine."""
    if fine is None or fine < 0:
        raise InvalidInput("the surcharge needs the fine the decision imposed")
    due = calendar.refresh(session).add_days(served_at, PAYMENT_DAYS).day
    days = max(0, (local_day(paid_at) - due).days)
    raw = round(fine * SURCHARGE_RATE * days, 2)
    return {"payment_due": due.isoformat(), "days_late": days, "late_surcharge": min(raw, round(fine, 2)),
            "surcharge_capped": raw > fine}


def record_payment(session: Session, c: EnforcementCase, *, status: str, amount_paid: float | None,
                   served_at: datetime | None, paid_at: datetime | None, now: datetime) -> dict:
    """The execution of a decided case: for a fine paid (in full or in part) the surcharge owed by the day of
    payment, recorded in the case's history (``executed``)."""
    if c.status != "decided":
        raise Conflict(f"case {c.id} is {c.status}: only a decided case is executed")
    out: dict = {"status": status, "amount_paid": amount_paid}
    if c.fine and served_at is not None and paid_at is not None:
        out.update(late_surcharge(session, c.fine, served_at, paid_at))
    append_history(c, now, "executed", **{k: v for k, v in out.items() if k != "surcharge_capped" or v})
    session.flush()
    return out
