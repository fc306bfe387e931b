"""Publication records and the public feed (inspection plans and results, penalties; "one public").

A record names what is published (``plan`` | ``result`` | ``penalty``), the entity, a title and a payload
with personal data masked *before* they are stored (:mod:`engine.supervision.masking`; a withdrawal's note
too), the event its deadline runs from and ``due_by`` = 20 working days after it (configurable).
``published_at`` is set when it goes out (at once with ``publish=True``, or later by :func:`publish`); a
revoked penalty is withdrawn (``withdrawn_at`` + note; due within 3 working days of the revocation).
Warnings alone are not published (:func:`penalty_is_published`).

The public sees published, not withdrawn records (:func:`public_feed`, :func:`public_record`): the title
and the withdrawal note masked, the entity's code, the record's id and date, and of the payload only the
fields of :data:`PUBLIC_FIELDS` (risk classes, :data:`RISK_CLASS_FIELDS`, only with the risk-class setting
on), masked again on the way out. Never public: the control stratum and an entity's stratum, the
inspection path, internal ids (``campaign_id``, ``entity_id``, ``joint_campaign_ids``, the record's
``ref``), contact data. With the risk-class setting on, a plan's count per class and its total tell how
many entities were drawn for the control stratum, never which. Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound

from . import calendar
from .loop_models import PUBLICATION_KINDS, Publication
from .masking import mask, mask_text

PUBLISH_WITHIN_WORKDAYS = 20
WITHDRAW_WITHIN_WORKDAYS = 3

#: The payload fields a public notice may carry, by kind; anything else in a payload is never public (the
#: control stratum, an entity's stratum, the inspection path, internal ids such as campaign_id, entity_id,
#: joint_campaign_ids, contact data). ``result`` covers an entity's result and a campaign's summary.
PUBLIC_FIELDS = {
    "plan": ("campaign", "name", "items", "window_start", "window_end", "seed", "population_hash", "public_value",
             "total", "note"),
    "result": ("campaign", "result_code", "outcome", "inspection_date", "findings_count", "inspections",
               "completed", "entity_name", "note"),
    "penalty": ("case_number", "decision_number", "uscc", "entity_name", "legal_representative", "decision_type",
                "penalties", "fine", "legal_basis", "decision_date", "note"),
}
#: Fields public only with the risk-class setting on (``REGFLOW_PUBLISH_RISK_CLASS=1``).
RISK_CLASS_FIELDS = {"plan": ("by_stratum",), "result": ("risk_class",), "penalty": ()}
#: What the public sees of an entry of the abnormal or serious list (:func:`engine.supervision.lists.public_entries`):
#: never who listed it, the causing instance or internal ids other than the entry's own
LIST_PUBLIC_FIELDS = ("id", "list", "uscc", "reason", "legal_basis", "entered_on", "expires_on", "status",
                      "removal_kind", "removed_on", "removal_reason")
#: free text of a list entry, masked on the way out
LIST_FREE_TEXT = ("reason", "removal_reason", "legal_basis")


def penalty_is_published(decision_type: str | None, penalties: list | None) -> bool:
    """Penalties are published; a warning alone and no-penalty decisions are not."""
    if decision_type != "penalty":
        return False
    return bool([p for p in (penalties or []) if p != "warning"])


def record(session: Session, *, kind: str, title: str, payload: dict, now: datetime, uscc: str | None = None,
           ref: str | None = None, event_at: datetime | None = None, instance_id: int | None = None,
           task_key: str | None = None, publish: bool = False,
           within_workdays: int = PUBLISH_WITHIN_WORKDAYS) -> Publication:
    """A publication due ``within_workdays`` working days after ``event_at`` (default now)."""
    if instance_id is not None and task_key is not None:
        found = session.scalars(select(Publication).where(Publication.source_instance_id == instance_id,
                                                          Publication.source_task == task_key)).first()
        if found is not None:
            return found
    if kind not in PUBLICATION_KINDS:
        raise InvalidInput(f"publication kind {kind!r} is not one of {', '.join(PUBLICATION_KINDS)}")
    if not isinstance(payload, dict):
        raise InvalidInput("publication payload must be an object")
    at = event_at or now
    due = calendar.refresh(session).add_workdays(at, within_workdays)
    p = Publication(kind=kind, uscc=uscc, ref=ref, title=mask_text(str(title))[:200], payload=mask(payload),
                    event_at=at, due_by=due.at, due_provisional=due.provisional, source_instance_id=instance_id,
                    source_task=task_key, created_at=now, published_at=now if publish else None)
    session.add(p)
    session.flush()
    return p


def get(session: Session, publication_id: int) -> Publication:
    p = session.get(Publication, int(publication_id))
    if p is None:
        raise NotFound(f"publication {publication_id} not found")
    return p


def publish(session: Session, publication_id: int, now: datetime) -> Publication:
    p = get(session, publication_id)
    if p.published_at is None:
        p.published_at = now
        session.flush()
    return p


def withdraw(session: Session, publication_id: int, note: str, now: datetime,
             revoked_at: datetime | None = None) -> Publication:
    """Withdraw (e.g. the penalty was revoked on appeal); ``withdraw_due`` = 3 working days after the
    revocation. Idempotent."""
    if not note:
        raise InvalidInput("a withdrawal needs a note saying why")
    p = get(session, publication_id)
    if p.withdrawn_at is None:
        if revoked_at is not None or p.withdraw_due is None:  # (a revocation recorded earlier keeps its due date)
            p.withdraw_due = calendar.refresh(session).add_workdays(revoked_at or now, WITHDRAW_WITHIN_WORKDAYS).at
        p.withdrawn_at, p.withdraw_note = now, mask_text(str(note))
        session.flush()
    return p


def overdue(session: Session, now: datetime) -> list[Publication]:
    """Records not yet published whose ``due_by`` has passed."""
    return list(session.scalars(select(Publication).where(Publication.published_at.is_(None),
                                                          Publication.due_by < now).order_by(Publication.due_by)))


def public_payload(kind: str, payload: dict | None, *, risk_class: bool = False) -> dict:
    """The fields of ``payload`` the public may see (:data:`PUBLIC_FIELDS`, with ``risk_class`` also
    :data:`RISK_CLASS_FIELDS`), in the payload's order, masked (:func:`engine.supervision.masking.mask`)."""
    allowed = set(PUBLIC_FIELDS.get(kind, ())) | (set(RISK_CLASS_FIELDS.get(kind, ())) if risk_class else set())
    return mask({k: v for k, v in (payload or {}).items() if k in allowed})


def public_list_entry(row: dict) -> dict:
    """A list entry as the public may see it: the fields of :data:`LIST_PUBLIC_FIELDS`, free text masked."""
    return {k: (mask_text(row[k]) if k in LIST_FREE_TEXT and isinstance(row.get(k), str) else row.get(k))
            for k in LIST_PUBLIC_FIELDS}


def _public_head(p: Publication) -> dict:
    return {"id": p.id, "kind": p.kind, "uscc": p.uscc, "title": mask_text(p.title or ""),
            "published_at": p.published_at.isoformat()}


def public_feed(session: Session, *, kind: str | None = None, uscc: str | None = None, limit: int = 50,
                offset: int = 0, risk_class: bool = False) -> list[dict]:
    """What the public sees: published, not withdrawn, newest first; each record's whitelisted payload
    (:func:`public_payload`) and title masked again on the way out, so a row written without :func:`record`
    leaks nothing."""
    q = select(Publication).where(Publication.published_at.is_not(None), Publication.withdrawn_at.is_(None))
    if kind:
        q = q.where(Publication.kind == kind)
    if uscc:
        q = q.where(Publication.uscc == uscc)
    q = q.order_by(Publication.published_at.desc(), Publication.id.desc()).limit(limit).offset(offset)
    return [{**_public_head(p), "payload": public_payload(p.kind, p.payload, risk_class=risk_class)}
            for p in session.scalars(q)]


def public_record(session: Session, publication_id: int, *, risk_class: bool = False) -> dict:
    """One record as the public may see it: a published record with its whitelisted, masked payload, or —
    once withdrawn — only what was withdrawn, when and why (the note masked too). Unpublished or unknown
    records are :class:`NotFound`."""
    p = session.get(Publication, int(publication_id))
    if p is None or p.published_at is None:
        raise NotFound(f"publication {publication_id} not found")
    out = {**_public_head(p), "withdrawn": p.withdrawn_at is not None}
    if p.withdrawn_at is not None:
        out.update(withdrawn_at=p.withdrawn_at.isoformat(), withdraw_note=mask_text(p.withdraw_note or ""))
    else:
        out["payload"] = public_payload(p.kind, p.payload, risk_class=risk_class)
    return out
