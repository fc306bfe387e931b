"""The deadlines of "one public", watched like task due dates: publication, withdrawal, end of publicity.

The rules (Administrative Penalty Law art. 48; SAMR 市场监督管理行政处罚信息公示规定, 2021):

* **Publication** within 20 working days of the event (the result, the decision): ``publication.due_by``. A
  record still unpublished after it is *overdue*.
* **Withdrawal** within 3 working days of a revocation (a penalty revoked on appeal or by the bureau itself):
  :func:`record_revocation` sets ``withdraw_due`` while the record is still shown; a record still shown after
  it is *withdrawal overdue*. (:func:`engine.supervision.publication.withdraw` withdraws; it keeps a due date
  recorded here.)
* **End of publicity** of a penalty: three months after publication when the decision imposed only a warning
  (criticism) or a fine no larger than the "lower amount" (较低数额, set by each province: the setting
  ``REGFLOW_PUBLICITY_LOW_FINE_YUAN``, default 10,000 yuan [unconfirmed]), three years for any other penalty
  (:func:`publicity_ends_at`). The period runs from the day of publication and ends at the start (00:00 China
  time) of the same day three months or years later. Publicity ends by itself: the record leaves the public
  pages without anyone's act. Plans and results have no end in the rules: they stay.

:func:`monitor_deadlines` (one atomic job: the lead wires it as a daily job of the worker) flags each overdue
publication and each overdue withdrawal **once**, with an audit event escalating to the supervisors' group
(``publication_overdue``, ``withdrawal_overdue`` on the system chain, as :mod:`engine.runtime.reminders` does
for tasks), and ends every penalty's publicity whose period is over: ``withdrawn_at`` is set with the note
:data:`PUBLICITY_END_NOTE` (``withdraw_due`` stays empty, which tells it from a withdrawal after a revocation)
and a ``publicity_ended`` event tells the supervisors (with the days it ran late, when the job did not run on
the day). "Once" is read from the audit chain itself: a record already named by an event of the kind is not
flagged again, also when two workers run the job (PostgreSQL: the system chain's head row is locked first;
SQLite: one writer). :func:`deadline_board` gives the supervisor's dashboard the open items.
Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput
from engine.runtime import audit, clock
from engine.runtime.models import AuditChain, AuditEvent
from engine.runtime.reminders import SUPERVISORS_GROUP, SYSTEM_ACTOR

from . import calendar
from .calendar import SHANGHAI, local_day
from .dashboard_districts import scope
from .loop_models import Publication
from .publication import WITHDRAW_WITHIN_WORKDAYS, get

#: 较低数额罚款: the largest fine whose publicity ends after three months [unconfirmed: set by each province]
DEFAULT_LOW_FINE_YUAN = 10_000.0
SHORT_PUBLICITY_MONTHS = 3
LONG_PUBLICITY_MONTHS = 36
#: penalties that alone (with a fine of at most the lower amount) end their publicity after three months
LIGHT_PENALTIES = frozenset({"warning", "criticism", "fine"})
PUBLICITY_END_NOTE = "公示期满，停止公示"
FLAG_KINDS = ("publication_overdue", "withdrawal_overdue")


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


def publicity_months(p: Publication, low_fine_yuan: float = DEFAULT_LOW_FINE_YUAN) -> int | None:
    """How long a record stays public, in months: penalties only (None: no end)."""
    if p.kind != "penalty":
        return None
    payload = p.payload or {}
    penalties = set(payload.get("penalties") or [])
    try:
        fine = float(payload.get("fine") or 0)
    except (TypeError, ValueError):
        fine = float("inf")  # an unreadable fine is not a lower amount
    if penalties and penalties <= LIGHT_PENALTIES and fine <= low_fine_yuan:
        return SHORT_PUBLICITY_MONTHS
    return LONG_PUBLICITY_MONTHS


def publicity_ends_at(p: Publication, low_fine_yuan: float = DEFAULT_LOW_FINE_YUAN) -> datetime | None:
    """When a published record's publicity ends (module doc), or None (no end, or not published)."""
    months = publicity_months(p, low_fine_yuan)
    if months is None or p.published_at is None:
        return None
    return datetime.combine(_add_months(local_day(p.published_at), months), time(0), tzinfo=SHANGHAI)


def record_revocation(session: Session, publication_id: int, revoked_at: datetime, now: datetime) -> Publication:
    """A published penalty was revoked on ``revoked_at``: its withdrawal is due 3 working days later. Idempotent
    for the same day; a withdrawn record needs none."""
    p = get(session, publication_id)
    if p.published_at is None:
        raise Conflict.fmt("Publication {id} is not published: there is nothing to withdraw.", id=p.id)
    if revoked_at > now:
        raise InvalidInput.fmt("A revocation cannot lie in the future ({date}).", date=local_day(revoked_at))
    if p.withdrawn_at is None:
        p.withdraw_due = calendar.refresh(session).add_workdays(revoked_at, WITHDRAW_WITHIN_WORKDAYS).at
        session.flush()
    return p


@dataclass
class MonitorReport:
    publication_overdue: list[int] = field(default_factory=list)
    withdrawal_overdue: list[int] = field(default_factory=list)
    publicity_ended: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"publication_overdue": self.publication_overdue, "withdrawal_overdue": self.withdrawal_overdue,
                "publicity_ended": self.publicity_ended}


def flagged(session: Session, kind: str) -> set[int]:
    """Ids of the publications an event ``kind`` already named (on the system chain)."""
    rows = session.scalars(select(AuditEvent.detail).where(AuditEvent.chain == audit.SYSTEM_CHAIN,
                                                            AuditEvent.kind == kind))
    return {int(d["publication_id"]) for d in rows if isinstance(d, dict) and "publication_id" in d}


def _common(p: Publication) -> dict:
    return {"publication_id": p.id, "publication_kind": p.kind, "uscc": p.uscc, "ref": p.ref, "title": p.title,
            "instance_id": p.source_instance_id}


def _late_days(due: datetime, now: datetime) -> int:
    return max(0, (local_day(now) - local_day(due)).days)


def _flag_overdue(session: Session, events: list, kind: str, due, now: datetime, limit: int, to_group: str,
                  *where) -> list[int]:
    """Records not withdrawn whose ``due`` column (``due_by``, ``withdraw_due``) passed, flagged once each: an
    event ``kind`` with the due date and the days late; their ids (at most ``limit``)."""
    done = flagged(session, kind)
    ids: list[int] = []
    for p in session.scalars(select(Publication).where(Publication.withdrawn_at.is_(None), due < now, *where)
                             .order_by(due, Publication.id).limit(limit + len(done))):
        if p.id in done or len(ids) >= limit:
            continue
        at = getattr(p, due.key)
        events.append(audit.Event(kind, SYSTEM_ACTOR, detail={
            **_common(p), due.key: at.isoformat(), "overdue_days": _late_days(at, now), "to_group": to_group}))
        ids.append(p.id)
    return ids


def monitor_deadlines(session: Session, now: datetime | None = None, *, low_fine_yuan: float = DEFAULT_LOW_FINE_YUAN,
                      supervisors_group: str = SUPERVISORS_GROUP, limit: int = 500) -> MonitorReport:
    """Flag overdue publications and withdrawals once, end expired publicity (module doc); at most ``limit`` of
    each per run, the rest waits for the next."""
    now = now or clock.now()
    report = MonitorReport()
    if session.get_bind().dialect.name == "postgresql":  # one job at a time reads and writes the flags
        session.execute(select(AuditChain.chain).where(AuditChain.chain == audit.SYSTEM_CHAIN).with_for_update())
    events: list[audit.Event] = []

    report.publication_overdue = _flag_overdue(
        session, events, "publication_overdue", Publication.due_by, now, limit, supervisors_group,
        Publication.published_at.is_(None))
    report.withdrawal_overdue = _flag_overdue(
        session, events, "withdrawal_overdue", Publication.withdraw_due, now, limit, supervisors_group,
        Publication.withdraw_due.is_not(None))

    # the shortest period is three months: only records published before that can have ended
    oldest = now - timedelta(days=28 * SHORT_PUBLICITY_MONTHS)
    for p in session.scalars(select(Publication).where(
            Publication.kind == "penalty", Publication.published_at.is_not(None), Publication.withdrawn_at.is_(None),
            Publication.published_at < oldest).order_by(Publication.published_at, Publication.id)):
        if len(report.publicity_ended) >= limit:
            break
        ends = publicity_ends_at(p, low_fine_yuan)
        if ends is None or ends > now:
            continue
        done_now = session.execute(update(Publication).where(Publication.id == p.id, Publication.withdrawn_at.is_(None))
                                   .values(withdrawn_at=now, withdraw_note=PUBLICITY_END_NOTE)).rowcount
        if not done_now:
            continue
        session.expire(p)
        events.append(audit.Event("publicity_ended", SYSTEM_ACTOR, detail={
            **_common(p), "published_at": p.published_at.isoformat(), "ends_at": ends.isoformat(),
            "months": publicity_months(p, low_fine_yuan), "late_days": _late_days(ends, now),
            "to_group": supervisors_group}))
        report.publicity_ended.append(p.id)
    if events:
        audit.append(session, audit.SYSTEM_CHAIN, events)
    return report


def deadline_board(session: Session, now: datetime, *, districts: Sequence[str] = (), limit: int = 20,
                   low_fine_yuan: float = DEFAULT_LOW_FINE_YUAN) -> dict:
    """The supervisor's list of the open deadlines of publication: ``overdue`` (not published though due),
    ``withdrawal_overdue`` (a revocation not withdrawn though due) — each with whether it was escalated — and
    ``ending`` (penalties whose publicity ends within 30 days); at most ``limit`` of each, soonest first."""
    where = scope(Publication.uscc, districts)
    escalated = {k: flagged(session, k) for k in FLAG_KINDS}

    def row(p: Publication, due: datetime, kind: str | None) -> dict:
        return {"id": p.id, "kind": p.kind, "uscc": p.uscc, "title": p.title, "due": due,
                "escalated": kind is not None and p.id in escalated[kind]}

    overdue = [row(p, p.due_by, "publication_overdue") for p in session.scalars(select(Publication).where(
        Publication.published_at.is_(None), Publication.withdrawn_at.is_(None), Publication.due_by < now, *where)
        .order_by(Publication.due_by, Publication.id).limit(limit))]
    withdrawal = [row(p, p.withdraw_due, "withdrawal_overdue") for p in session.scalars(select(Publication).where(
        Publication.withdrawn_at.is_(None), Publication.withdraw_due.is_not(None), Publication.withdraw_due < now,
        *where).order_by(Publication.withdraw_due, Publication.id).limit(limit))]
    ending = []
    horizon = now + timedelta(days=30)
    for p in session.scalars(select(Publication).where(
            Publication.kind == "penalty", Publication.published_at.is_not(None), Publication.withdrawn_at.is_(None),
            Publication.published_at < horizon - timedelta(days=28 * SHORT_PUBLICITY_MONTHS), *where)
            .order_by(Publication.published_at, Publication.id).limit(limit * 10)):
        ends = publicity_ends_at(p, low_fine_yuan)
        if ends is not None and ends <= horizon:
            ending.append(row(p, ends, None))
    ending.sort(key=lambda r: r["due"])
    return {"overdue": overdue, "withdrawal_overdue": withdrawal, "ending": ending[:limit]}
