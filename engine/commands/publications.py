"""Publication commands: what a person does to a public record by hand (see :mod:`engine.commands`).

:func:`revoke` records that a published administrative penalty was revoked (撤销: on reconsideration, by a court,
or by the bureau itself) on a given China date. Its public record must then be withdrawn within 3 working days
(Administrative Penalty Law art. 48; SAMR 行政处罚信息公示规定): the command sets the record's ``withdraw_due``
(:func:`engine.supervision.publication_deadlines.record_revocation`), the daily job ``publication.deadlines``
escalates it to the supervisors once it is overdue, and :func:`engine.supervision.publication.withdraw` withdraws
it. The revocation is an audit event (``publication_revoked``) on the system chain. Who may is
:func:`engine.policy.check_record_revocation`.
"""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import Conflict, InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import audit, clock
from engine.supervision import publication, publication_deadlines
from engine.supervision.calendar import SHANGHAI, local_day
from engine.supervision.loop_models import Publication

MAX_REASON = 500
#: the kinds of record a revocation withdraws: penalty decisions (plans and results are not revoked)
REVOCABLE_KINDS = ("penalty",)


def _publication(session: Session, publication_id: Any) -> Publication:
    p = session.get(Publication, publication_id) \
        if isinstance(publication_id, int) and not isinstance(publication_id, bool) else None
    if p is None:
        raise NotFound.fmt("Publication {id} does not exist.", id=str(publication_id)[:40])
    return p


def _revoked_at(value: Any) -> datetime:
    """A China date (the start of that day) or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput.fmt("The revocation time needs a time zone.")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=SHANGHAI)
    raise InvalidInput.fmt("The revocation date must be a date, not {value}.", value=repr(value)[:40])


def publication_doc(p: Publication) -> dict:
    return {"id": p.id, "kind": p.kind, "uscc": p.uscc, "ref": p.ref, "title": p.title,
            "published_at": p.published_at.isoformat() if p.published_at else None,
            "withdrawn_at": p.withdrawn_at.isoformat() if p.withdrawn_at else None,
            "withdraw_note": p.withdraw_note,
            "withdraw_due": p.withdraw_due.isoformat() if p.withdraw_due else None}


def revoke(session: Session, actor: Actor, publication_id: int, *, revoked_at: date | datetime,
           reason: str | None = None, now: datetime | None = None) -> dict:
    """Record the revocation of a published penalty: its withdrawal is due 3 working days after ``revoked_at``.
    Recording the same day again changes nothing; a record already withdrawn needs no withdrawal."""
    p = _publication(session, publication_id)
    policy.check_record_revocation(session, actor, p.id, p.uscc)
    if p.kind not in REVOCABLE_KINDS:
        raise InvalidInput.fmt("Publication {id} is a {kind} record; only a penalty decision is revoked.", id=p.id,
                               kind=p.kind)
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) > MAX_REASON:
        raise InvalidInput.fmt("The {name} is longer than {limit} characters.", name="reason", limit=MAX_REASON)
    if p.withdrawn_at is not None:
        raise Conflict.fmt("Publication {id} was already withdrawn on {date}; there is nothing to withdraw.",
                           id=p.id, date=local_day(p.withdrawn_at).isoformat())
    now = now or clock.now()
    at = _revoked_at(revoked_at)
    before = p.withdraw_due
    publication_deadlines.record_revocation(session, p.id, at, now)
    if p.withdraw_due != before:
        audit.append(session, audit.SYSTEM_CHAIN, [audit.Event("publication_revoked", actor.username, at=now, detail={
            "publication_id": p.id, "publication_kind": p.kind, "uscc": p.uscc, "ref": p.ref,
            "revoked_on": local_day(at).isoformat(), "withdraw_due": p.withdraw_due.isoformat(),
            "previous_withdraw_due": before.isoformat() if before else None, "reason": reason or None})])
    return {**publication_doc(p), "revoked_on": local_day(at).isoformat(), "changed": p.withdraw_due != before}


def withdraw(session: Session, actor: Actor, publication_id: int, *, note: str, now: datetime | None = None) -> dict:
    """Withdraw a published record now (after a revocation: its due date stays the one the revocation set)."""
    p = _publication(session, publication_id)
    policy.check_record_revocation(session, actor, p.id, p.uscc)
    note = note.strip() if isinstance(note, str) else ""
    if not note:
        raise InvalidInput.fmt("The {name} must not be empty.", name="note")
    if len(note) > MAX_REASON:
        raise InvalidInput.fmt("The {name} is longer than {limit} characters.", name="note", limit=MAX_REASON)
    if p.published_at is None:
        raise Conflict.fmt("Publication {id} is not published: there is nothing to withdraw.", id=p.id)
    if p.withdrawn_at is not None:
        raise Conflict.fmt("Publication {id} was already withdrawn on {date}; there is nothing to withdraw.",
                           id=p.id, date=local_day(p.withdrawn_at).isoformat())
    now = now or clock.now()
    publication.withdraw(session, p.id, note, now)
    late = p.withdraw_due is not None and p.withdraw_due < now
    audit.append(session, audit.SYSTEM_CHAIN, [audit.Event("publication_withdrawn", actor.username, at=now, detail={
        "publication_id": p.id, "publication_kind": p.kind, "uscc": p.uscc, "ref": p.ref,
        "withdraw_due": p.withdraw_due.isoformat() if p.withdraw_due else None, "late": late})])
    return {**publication_doc(p), "late": late}
