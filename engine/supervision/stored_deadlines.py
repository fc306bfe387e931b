"""Deadlines stored in rows follow the calendar: when a year's official schedule is loaded, every open deadline
that was computed over that year is computed again from its stored start and length, the row is rewritten, the
waiting timers that read it are moved, and each change is audited (old → new).

:func:`engine.supervision.deadlines.reschedule_for_year` moves the timers that computed their own deadline with
a helper (``workdays(5)``); the deadlines here were computed by a service and stored in a row, and a timer reads
the row's copy (``order["deadline"]``, ``case["decision_due"]``), so nothing would move them. The rows, and how
each deadline's start and length are known:

* ``rectification_order.deadline`` (``deadline_day``, ``provisional``) of an open order (issued, served,
  reported): ``days`` of ``deadline_kind`` from the issue, then from the service, then ``extension_days`` more
  from the deadline of the moment — replayed from the order's history (``issued``, ``served``, ``extended``).
  An order whose history holds another entry that set a deadline is not touched (reported as ``skipped``).
  Timer: ``deadline_passed`` of its instance (``processes/rectification.bpmn``).
* ``enforcement_case.decision_due`` of a filed, undecided case whose clock runs: 90 calendar days after filing
  plus the extensions and ended pauses (:func:`engine.supervision.case_clock.decision_due`), rolled to a working
  day; ``decision_reminder_at`` keeps its distance before it. A paused clock is left alone: its due date is
  computed when it resumes. Timers: ``decision_overdue`` and ``decision_reminder`` of its instance.
* ``publication.due_by`` of an unpublished record: working days after ``event_at``. The length is not stored
  (20 by default, ``within_workdays`` when given): it is **derived** as the number of working days from
  ``event_at`` to the old ``due_by`` on the calendar *before* the load (the caller's ``old_calendar``; without
  it, today's calendar with the loaded year computed from weekends alone — what a provisional deadline was
  computed on — and a deadline this function already recomputed for the year is not derived again).
* ``publication.withdraw_due`` of a revocation not yet withdrawn: 3 working days after the revocation. The
  revocation day is not stored: it is **derived** as the earliest day that gives the old due date on the old
  calendar (the working day before the three counted), so the recomputed due date is never later than the
  revocation's true one.

Each change appends ``deadline_recomputed`` (field, old, new, year) to the row's history where it has one, and a
``deadline_recomputed`` event to the system audit chain; moved timers are ``timer_rescheduled`` events on their
instance's chain (:meth:`engine.runtime.lifecycle.LifecycleMixin.move_timers`). Recomputing again changes nothing.
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime import audit, clock
from engine.runtime.models import AuditEvent

from . import calendar as cal
from . import case_clock
from .calendar import SHANGHAI, WorkdayCalendar, local_day
from .calendar_models import CalendarDay, CalendarYear
from .loop_models import OPEN_ORDER_STATUSES, EnforcementCase, Publication, RectificationOrder
from .publication import WITHDRAW_WITHIN_WORKDAYS
from .registry_events import append_history

ACTOR = "calendar"
#: BPMN ids of the timers that read a row's deadline
ORDER_TIMERS = ("deadline_passed",)
CASE_TIMERS = {"decision_overdue": "decision_due", "decision_reminder": "decision_reminder_at"}
#: order history entries that set its deadline (anything else that does leaves the order untouched)
_ORDER_EVENTS = ("issued", "served", "extended")


def calendar_without_year(session: Session, year: int) -> WorkdayCalendar:
    """The stored calendar with ``year`` computed from weekends alone: the calendar a provisional deadline over
    ``year`` was computed on."""
    days = {r.day: (r.is_workday, r.kind, r.name) for r in session.scalars(select(CalendarDay))
            if r.day.year != year}
    known = [y for y in session.scalars(select(CalendarYear.year).where(CalendarYear.complete.is_(True)))
             if y != year]
    return WorkdayCalendar(days, known)


def _year_start(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=SHANGHAI)


def order_deadline(calendar: WorkdayCalendar, o: RectificationOrder) -> cal.Deadline | None:
    """The order's deadline replayed from its history on ``calendar``; None when its history holds a deadline
    this replay does not know how to make."""
    d = calendar.compute(o.issued_at, o.days, o.deadline_kind)
    for e in o.history or []:
        event = e.get("event")
        if event == "served":
            d = calendar.compute(datetime.fromisoformat(e["served_at"]) if e.get("served_at") else o.served_at,
                                 o.days, o.deadline_kind)
        elif event == "extended":
            d = calendar.compute(d.at, int(e["days"]), o.deadline_kind)
        elif event not in _ORDER_EVENTS and "deadline" in e:
            return None
    return d


def workdays_between(calendar: WorkdayCalendar, start: datetime, end: datetime) -> int | None:
    """The ``n`` with ``calendar.add_workdays(start, n).day == local_day(end)``, or None when there is none."""
    first, last = local_day(start), local_day(end)
    if last < first:
        return None
    n = sum(1 for k in range(1, (last - first).days + 1) if calendar.is_workday(first + timedelta(days=k)))
    return n if calendar.add_workdays(first, n).day == last else None


def earliest_start(calendar: WorkdayCalendar, due: datetime, n: int) -> date | None:
    """The earliest day ``s`` with ``calendar.add_workdays(s, n).day == local_day(due)``: the working day before
    the ``n`` counted ones (None if ``due`` is not a working day)."""
    d = local_day(due)
    if not calendar.is_workday(d):
        return None
    counted = 0
    while True:
        d -= timedelta(days=1)
        if calendar.is_workday(d):
            counted += 1
            if counted == n:
                return d


def _recomputed_publications(session: Session, year: int) -> set[tuple[int, str, datetime]]:
    """``(id, field, new value)`` of the publication deadlines recomputed for ``year`` (system chain)."""
    out = set()
    for d in session.scalars(select(AuditEvent.detail).where(AuditEvent.chain == audit.SYSTEM_CHAIN,
                                                              AuditEvent.kind == "deadline_recomputed")):
        if isinstance(d, dict) and d.get("row") == "publication" and d.get("year") == year:
            out.add((int(d["id"]), d["field"], datetime.fromisoformat(d["new"])))
    return out


def recompute_stored_deadlines(runtime, session: Session, year: int, *, old_calendar: WorkdayCalendar | None = None,
                               actor: str = ACTOR, now: datetime | None = None) -> dict:
    """Recompute the open deadlines stored in rows after ``year``'s schedule was loaded (module doc): returns
    ``{"changed": [{row, id, field, old, new, ...}], "skipped": [...], "timers": [...]}``."""
    now = now or clock.now()
    new_cal = WorkdayCalendar.from_session(session)
    old_cal = old_calendar or calendar_without_year(session, year)
    # without the old calendar, a publication's deadline already recomputed for this year is not derived again
    # on the weekends-only one (it was not computed on it)
    done = set() if old_calendar is not None else _recomputed_publications(session, year)
    reason = f"calendar year {year} loaded"
    since, until = _year_start(year), _year_start(year + 1)
    changed: list[dict] = []
    skipped: list[dict] = []
    moves: dict[int, dict[str, datetime]] = defaultdict(dict)
    orders_per_instance: dict[int, int] = defaultdict(int)

    def note(row: str, rid: int, fld: str, old: datetime, new: datetime, **extra) -> dict:
        entry = {"row": row, "id": rid, "field": fld, "old": old.isoformat(), "new": new.isoformat(), **extra}
        changed.append(entry)
        return entry

    for o in session.scalars(select(RectificationOrder).where(
            RectificationOrder.status.in_(OPEN_ORDER_STATUSES), RectificationOrder.deadline >= since,
            RectificationOrder.issued_at < until).order_by(RectificationOrder.id)):
        orders_per_instance[o.instance_id] += 1
        d = order_deadline(new_cal, o)
        if d is None:
            skipped.append({"row": "rectification_order", "id": o.id, "reason": "history sets a deadline in a way "
                                                                                 "this recomputation does not know"})
            continue
        if d.at == o.deadline and d.provisional == bool(o.provisional):
            continue
        old = o.deadline
        o.deadline, o.deadline_day, o.provisional = d.at, d.day, d.provisional
        if d.at != old:
            note("rectification_order", o.id, "deadline", old, d.at, instance_id=o.instance_id,
                 provisional=d.provisional)
            append_history(o, now, "deadline_recomputed", old=old.isoformat(), new=d.at.isoformat(), year=year,
                           provisional=d.provisional or None)
            moves[o.instance_id].update({t: d.at for t in ORDER_TIMERS})
    for iid, n in orders_per_instance.items():
        if n > 1 and iid in moves:  # which order's timer waits is not known: leave the timers alone
            skipped.append({"row": "process_instance", "id": iid, "reason": "several open orders; timers not moved"})
            del moves[iid]

    for c in session.scalars(select(EnforcementCase).where(
            EnforcementCase.status == "filed", EnforcementCase.decision_due >= since,
            EnforcementCase.filed_at < until).order_by(EnforcementCase.id)):
        if case_clock.open_pause(c) is not None:
            continue
        lead = c.decision_due - c.decision_reminder_at if c.decision_reminder_at else None
        due = new_cal.add_days(c.filed_at, case_clock.DECISION_DAYS + case_clock.extended_days(c)
                               + case_clock.paused_days(c)).at
        if due == c.decision_due:
            continue
        old = c.decision_due
        c.decision_due = due
        if lead is not None:
            c.decision_reminder_at = due - lead
        note("enforcement_case", c.id, "decision_due", old, due, instance_id=c.instance_id)
        append_history(c, now, "deadline_recomputed", old=old.isoformat(), new=due.isoformat(), year=year)
        moves[c.instance_id].update({t: getattr(c, f) for t, f in CASE_TIMERS.items() if getattr(c, f) is not None})

    for p in session.scalars(select(Publication).where(
            Publication.published_at.is_(None), Publication.due_by >= since, Publication.event_at < until)
            .order_by(Publication.id)):
        if (p.id, "due_by", p.due_by) in done:
            continue
        n = workdays_between(old_cal, p.event_at, p.due_by)
        if n is None:
            skipped.append({"row": "publication", "id": p.id, "reason": "due_by is no count of working days "
                                                                       "after event_at on the old calendar"})
            continue
        d = new_cal.add_workdays(p.event_at, n)
        if d.at != p.due_by:
            note("publication", p.id, "due_by", p.due_by, d.at, derived=f"{n} working days after event_at")
            p.due_by = d.at
        p.due_provisional = d.provisional

    for p in session.scalars(select(Publication).where(
            Publication.withdrawn_at.is_(None), Publication.withdraw_due.is_not(None),
            Publication.withdraw_due >= since).order_by(Publication.id)):
        if (p.id, "withdraw_due", p.withdraw_due) in done:
            continue
        start = earliest_start(old_cal, p.withdraw_due, WITHDRAW_WITHIN_WORKDAYS)
        if start is None:
            skipped.append({"row": "publication", "id": p.id, "reason": "withdraw_due is not a working day"})
            continue
        d = new_cal.add_workdays(start, WITHDRAW_WITHIN_WORKDAYS)
        if d.at != p.withdraw_due:
            note("publication", p.id, "withdraw_due", p.withdraw_due, d.at,
                 derived=f"revocation on {start.isoformat()} at the earliest")
            p.withdraw_due = d.at

    if changed:
        audit.append(session, audit.SYSTEM_CHAIN, [
            audit.Event("deadline_recomputed", actor, detail={**e, "year": year, "reason": reason}) for e in changed])
    session.flush()
    timers = runtime.move_timers(session, dict(moves), actor=actor, reason=reason) if moves else []
    return {"changed": changed, "skipped": skipped, "timers": timers}
