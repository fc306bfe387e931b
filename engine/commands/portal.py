"""The entity portal's actions: a business signs in with its code, reads its own matters and submits; officers
issue codes and handle what was kept for them (see :mod:`engine.commands`).

A business acts through an entity session (:class:`engine.supervision.portal.EntitySession`), never as a user:
:func:`engine.policy.check_portal_entity` keeps it to its own USCC. Officers act as :class:`engine.policy.Actor`
under :func:`engine.policy.check_portal_officer` (role and jurisdiction). The installation's operator (the CLI
without ``--user``, ``actor=None``) issues codes and lists submissions as ``regflow message`` delivers
messages: as ``system``, recorded with the operating-system user.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import audit, clock, throttle
from engine.runtime.runtime import Runtime
from engine.supervision import evidence as evidence_service
from engine.supervision import portal, portal_overview, portal_submissions
from engine.supervision.document_models import Document
from engine.supervision.portal import EntitySession
from engine.supervision.portal_models import PortalAccessCode, PortalSubmission

OPERATOR = policy.OPERATOR


@dataclass
class SignIn:
    #: seconds to wait before trying again (> 0: throttled, nothing checked)
    wait: int = 0
    code: PortalAccessCode | None = None
    uscc: str | None = None


def sign_in(session: Session, *, uscc: str, code: str, address: str, free: int, max_delay_s: float,
            key: str | None = None, now: datetime | None = None) -> SignIn:
    """One throttled code check (:func:`engine.supervision.portal.sign_in_keys`): counted before it is checked,
    the charge taken back on success. Sign-ins and failures of a valid USCC are audited on the system chain."""
    clean = portal.normalise_uscc(uscc)
    keys = portal.sign_in_keys(clean, address, free=free, max_delay_s=max_delay_s)
    wait = throttle.charge(session, keys)
    if wait:
        return SignIn(wait, None, clean)
    row = portal.check_access_code(session, uscc=clean, code=code, now=now, key=key) if clean else None
    if row is None:
        if clean:
            audit.system_event(session, "portal_sign_in_failed", portal.entity_actor(clean), address=address)
        return SignIn(0, None, clean)
    throttle.refund(session, keys)
    audit.system_event(session, "portal_sign_in", portal.entity_actor(clean), code_id=row.id, address=address)
    return SignIn(0, row, clean)


def sign_out(session: Session, held: EntitySession, *, address: str | None = None) -> None:
    """End every entity session opened with the code this one signed in with."""
    portal.end_sessions(session, held.code_id)
    audit.system_event(session, "portal_sign_out", portal.entity_actor(held.uscc), code_id=held.code_id,
                       **({"address": address} if address else {}))


def overview(session: Session, held: EntitySession, uscc: str) -> tuple[portal_overview.Overview,
                                                                          list[PortalSubmission]]:
    """The business's own notices, orders, cases, draws and submissions."""
    policy.check_portal_entity(held.uscc, uscc)
    return portal_overview.overview(session, held.uscc), portal_submissions.for_entity(session, held.uscc)


def receipt(session: Session, held: EntitySession, number: str) -> PortalSubmission:
    """One of the business's own submissions by its receipt number."""
    row = portal_submissions.by_receipt(session, number)
    policy.check_portal_entity(held.uscc, row.uscc)
    return row


def submit(rt: Runtime, session: Session, held: EntitySession, *, uscc: str, kind: str, fields: Mapping[str, Any],
           files: list[tuple[BinaryIO, str]] = (), upload_dir: str, max_bytes: int,
           address: str | None = None) -> portal_submissions.Submitted:
    """A submission of the signed-in business: the fields checked before any file is stored, the files checked
    and stored (:func:`engine.supervision.evidence.store_file`), then delivered or kept."""
    policy.check_portal_entity(held.uscc, uscc)
    portal_submissions.clean_payload(kind, fields)
    if len(files) > portal_submissions.MAX_FILES:
        raise InvalidInput.fmt("At most {n} files per submission.", n=portal_submissions.MAX_FILES)
    if files and kind not in portal_submissions.WITH_FILES:
        raise InvalidInput.fmt("A submission of kind {kind} carries no files.", kind=kind)
    refs = [evidence_service.store_file(upload_dir=upload_dir, max_bytes=max_bytes, stream=stream,
                                        filename=name).reference() for stream, name in files]
    return portal_submissions.submit(session, rt, uscc=held.uscc, kind=kind, payload=fields, files=refs,
                                     code_id=held.code_id, address=address)


# ------------------------------------------------------------------------------------------ officers
def issue_code(session: Session, actor: Actor | None, *, uscc: str, document_number: str | None = None,
               days: int, key: str | None = None) -> dict:
    """A new access code for ``uscc`` (on the document numbered ``document_number``); the code is in the answer
    only, never stored."""
    clean = portal.normalise_uscc(uscc)
    if clean is None:
        raise InvalidInput.fmt("{uscc} is not a valid unified social credit code.", uscc=str(uscc)[:40])
    if actor is not None:
        policy.check_portal_officer(session, actor, clean)
    document_id = None
    if document_number:
        document_id = session.scalar(select(Document.id).where(Document.number == document_number[:80]))
        if document_id is None:
            raise NotFound.fmt("No document has number {number}.", number=document_number[:80])
    code = portal.issue_access_code(session, uscc=clean, document_id=document_id, ttl_days=days,
                                    issued_by=actor.username if actor else OPERATOR, key=key)
    row = session.scalars(select(PortalAccessCode).where(PortalAccessCode.uscc == clean)
                          .order_by(PortalAccessCode.id.desc())).first()
    return {"uscc": clean, "code": code, "document": document_number or None, "code_id": row.id,
            "expires_at": row.expires_at.isoformat(timespec="seconds")}


def codes(session: Session, actor: Actor | None, uscc: str) -> list[dict]:
    """The access codes issued to ``uscc`` (never the codes themselves), newest first."""
    clean = portal.normalise_uscc(uscc)
    if clean is None:
        raise InvalidInput.fmt("{uscc} is not a valid unified social credit code.", uscc=str(uscc)[:40])
    if actor is not None:
        policy.check_portal_officer(session, actor, clean)
    rows = session.execute(select(PortalAccessCode, Document.number)
                           .outerjoin(Document, Document.id == PortalAccessCode.document_id)
                           .where(PortalAccessCode.uscc == clean).order_by(PortalAccessCode.id.desc())).all()
    return [{"code_id": c.id, "uscc": c.uscc, "document": number, "issued_at": c.issued_at, "issued_by": c.issued_by,
             "expires_at": c.expires_at, "used_at": c.used_at, "revoked_at": c.revoked_at,
             "revoked_reason": c.revoked_reason} for c, number in rows]


def revoke_code(session: Session, actor: Actor | None, code_id: int, reason: str) -> PortalAccessCode:
    """Revoke an access code: it signs nobody in any more and the sessions opened with it end."""
    if not reason.strip() or len(reason) > 200:
        raise InvalidInput.fmt("A revocation needs a reason of 1 to 200 characters.")
    row = session.get(PortalAccessCode, code_id)
    if row is None:
        raise NotFound.fmt("Access code {id} not found.", id=code_id)
    if actor is not None:
        policy.check_portal_officer(session, actor, row.uscc)
    return portal.revoke(session, code_id, by=actor.username if actor else OPERATOR, reason=reason.strip())


def submissions(session: Session, actor: Actor | None, *, status: str | None = None,
                limit: int = 200) -> list[PortalSubmission]:
    """Submissions newest first; an officer sees those of entities in their jurisdiction."""
    if status is not None and status not in ("delivered", "routed", "handled"):
        raise InvalidInput.fmt("Unknown status {status}.", status=str(status)[:20])
    rows = portal_submissions.listing(session, status=status, limit=limit)
    if actor is None:
        return rows
    policy.check_portal_officer(session, actor)
    return [r for r in rows if policy.may_handle_portal(session, actor, r.uscc)]


def mark_handled(session: Session, actor: Actor, receipt_number: str, note: str = "") -> PortalSubmission:
    """An officer dealt with a submission kept for them."""
    policy.check_portal_officer(session, actor)
    row = portal_submissions.by_receipt(session, receipt_number)
    policy.check_portal_officer(session, actor, row.uscc)
    return portal_submissions.mark_handled(session, row, by=actor.username, note=note, now=clock.now())


def submission_doc(row: PortalSubmission) -> dict:
    return {"receipt": row.receipt, "uscc": row.uscc, "kind": row.kind, "status": row.status,
            "instance_id": row.instance_id, "routed_user": row.routed_user, "routed_group": row.routed_group,
            "kept_reason": row.kept_reason, "payload": row.payload, "evidence": row.evidence,
            "submitted_at": row.submitted_at.isoformat(timespec="seconds"),
            "handled_at": row.handled_at.isoformat(timespec="seconds") if row.handled_at else None,
            "handled_by": row.handled_by}
