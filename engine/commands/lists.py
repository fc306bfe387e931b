"""List commands: what a person does to the abnormal-operations and serious-violation lists by hand (see
:mod:`engine.commands`) — read them, enter or remove an entity, record a removal application and review it,
run the escalation, the serious list's end of term or the annual-report default job now. Processes do the same
through the ``list.*`` operators; the rules and the audit events are the registry's (:mod:`engine.supervision.lists`,
:mod:`engine.supervision.list_jobs`), who may is :mod:`engine.policy` (``check_list_*``)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import clock
from engine.supervision import list_jobs, lists
from engine.supervision.list_models import APPLICATION_STATUSES, ENTRY_STATUSES
from scoring.models import Entity

MAX_PAGE = 500


def _page(limit: Any, offset: Any) -> tuple[int, int]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput.fmt("The limit must be a whole number from 1 to {max}.", max=MAX_PAGE)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput.fmt("The offset must be a whole number, 0 or more.")
    return limit, offset


def _uscc(value: Any) -> str:
    uscc = policy.normalise_key(value) if isinstance(value, str) else ""
    if len(uscc) != 18 or not uscc.isalnum():
        raise InvalidInput.fmt("A unified social credit code (USCC) has 18 letters and digits, not {value}.",
                               value=repr(value)[:40])
    return uscc


def _entity(session: Session, uscc: Any) -> Entity:
    code = _uscc(uscc)
    e = session.scalars(select(Entity).where(Entity.uscc == code)).first()
    if e is None:
        raise NotFound.fmt("No entity with the USCC {uscc} is registered.", uscc=code)
    return e


def show(session: Session, actor: Actor, *, list_kind: str | None = None, uscc: str | None = None,
         status: str | None = None, limit: int = 50, offset: int = 0) -> dict:
    """Entries newest first, with every field, and the counts per list."""
    policy.check_list_read(actor)
    limit, offset = _page(limit, offset)
    if list_kind is not None:
        lists.check_kind(list_kind)
    if status is not None and status not in ENTRY_STATUSES:
        raise InvalidInput.fmt("The status must be one of {values}, not {value}.", values=", ".join(ENTRY_STATUSES),
                               value=repr(status)[:40])
    rows = lists.find_entries(session, list_kind=list_kind, uscc=_uscc(uscc) if uscc else None, status=status,
                              limit=limit, offset=offset)
    visible = [e for e in rows if actor.sees_district(policy.district_of_uscc(session, e.uscc))] \
        if actor.limited else rows
    return {"entries": [lists.entry_doc(e) for e in visible], "counts": lists.counts(session), "limit": limit,
            "offset": offset}


def enter(session: Session, actor: Actor, *, list_kind: str, uscc: str, reason: str, legal_basis: str,
          reason_code: str | None = None, now: datetime | None = None) -> dict:
    e = _entity(session, uscc)
    policy.check_list_entity(session, actor, e.uscc)
    entry, created = lists.enter(session, list_kind=list_kind, entity_id=e.id, reason=reason, legal_basis=legal_basis,
                                 reason_code=reason_code, now=now or clock.now(), actor=actor.username)
    return {**lists.entry_doc(entry), "created": created}


def remove(session: Session, actor: Actor, entry_id: int, *, reason: str, removal_kind: str = "correction",
           now: datetime | None = None) -> dict:
    entry = lists.get_entry(session, entry_id)
    policy.check_list_entity(session, actor, entry.uscc)
    if removal_kind == "escalated":
        raise InvalidInput.fmt("An entry is escalated by the escalation job, not by hand.")
    lists.remove_entry(session, entry, removal_kind=removal_kind, reason=reason, now=now or clock.now(),
                       actor=actor.username)
    return lists.entry_doc(entry)


def apply_for_removal(session: Session, actor: Actor, entry_id: int, *, statement: str, evidence: Any = None,
                      now: datetime | None = None) -> dict:
    entry = lists.get_entry(session, entry_id)
    policy.check_list_entity(session, actor, entry.uscc, policy.LIST_APPLICANT_CLERKS)
    app = list_jobs.apply_for_removal(session, entry_id=entry.id, statement=statement,
                                      evidence=list_jobs.evidence_refs(evidence), actor=actor.username,
                                      now=now or clock.now())
    return list_jobs.application_doc(app, session)


def applications(session: Session, actor: Actor, *, status: str | None = "pending", uscc: str | None = None,
                 limit: int = 50, offset: int = 0) -> dict:
    policy.check_list_read(actor)
    limit, offset = _page(limit, offset)
    if status is not None and status not in APPLICATION_STATUSES:
        raise InvalidInput.fmt("The status must be one of {values}, not {value}.",
                               values=", ".join(APPLICATION_STATUSES), value=repr(status)[:40])
    rows = list_jobs.find_applications(session, status=status, uscc=_uscc(uscc) if uscc else None, limit=limit,
                                       offset=offset)
    if actor.limited:
        rows = [a for a in rows if actor.sees_district(policy.district_of_uscc(session, a.uscc))]
    return {"applications": [list_jobs.application_doc(a, session) for a in rows], "limit": limit, "offset": offset}


def review(session: Session, actor: Actor, application_id: int, *, approve: bool, note: str | None = None,
           now: datetime | None = None) -> dict:
    app = list_jobs.get_application(session, application_id)
    policy.check_list_entity(session, actor, app.uscc, applicant=app.applied_by)
    list_jobs.review_application(session, app.id, approve=bool(approve), note=note, actor=actor.username,
                                 now=now or clock.now())
    return list_jobs.application_doc(app, session)


def escalate(session: Session, actor: Actor, now: datetime | None = None) -> dict:
    """The 3-year escalation now (the worker runs it daily)."""
    policy.check_list_jobs(actor)
    return lists.escalate_due(session, now or clock.now(), actor=actor.username)


def expire(session: Session, actor: Actor, now: datetime | None = None) -> dict:
    """Remove the serious entries whose 3-year term is over now (the worker does it daily)."""
    policy.check_list_jobs(actor)
    return lists.expire_due(session, now or clock.now(), actor=actor.username)


def annual_report_defaults(session: Session, actor: Actor, *, year: int | None = None,
                           now: datetime | None = None) -> dict:
    """The annual-report default job now (the worker runs it from 1 July each year)."""
    policy.check_list_jobs(actor)
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2200):
        raise InvalidInput.fmt("The year must be from 2000 to 2200.")
    return list_jobs.annual_report_defaults(session, now or clock.now(), actor=actor.username, year=year)


def record_annual_report(session: Session, actor: Actor, *, uscc: str, year: int, filed_on: date | None = None,
                         now: datetime | None = None) -> dict:
    """A filed annual report (as the registration system reports it); removes an ``annual_report_missing`` entry."""
    e = _entity(session, uscc)
    policy.check_list_entity(session, actor, e.uscc)
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2200:
        raise InvalidInput.fmt("The year must be from 2000 to 2200.")
    now = now or clock.now()
    return list_jobs.record_annual_report(session, entity_id=e.id, year=year,
                                         filed_on=filed_on or lists.local_date(now), now=now, actor=actor.username)
