"""Official-document commands: void an issued document with a reason (see :mod:`engine.commands`). Supervisors
and administrators, the document's entity in their jurisdiction (:func:`engine.policy.check_void_document`);
the change and its audit event are the register's (:func:`engine.supervision.documents.void`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.policy import Actor
from engine.supervision import documents
from engine.supervision.document_models import Agency


def void_document(session: Session, actor: Actor, number: str, reason: Any, now: datetime | None = None) -> dict:
    """Void the document ``number``: it keeps its number, marked void with the reason, who and when. The document
    as the register now shows it. 404 (no such number), 403 (role, jurisdiction), 400 (reason), 409 (already void)."""
    doc = documents.get_document(session, number)
    policy.check_void_document(session, actor, doc.number, doc.uscc)
    doc = documents.void(session, doc.number, reason=reason if isinstance(reason, str) else "", actor=actor.username,
                         now=now)
    return documents.document_doc(doc, session.get(Agency, doc.agency_id))
