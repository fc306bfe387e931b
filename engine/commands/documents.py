"""Official-document commands: void an issued document with a reason (see :mod:`engine.commands`). Supervisors
and administrators, the document's entity in their jurisdiction (:func:`engine.policy.check_void_document`);
the change and its audit event are the register's (:func:`engine.supervision.documents.void`).

Read a document's signed PDF (:func:`document_pdf`: whoever may read the instance that issued it,
:func:`engine.policy.check_read_document`) and record its service, the 送达回证 (:func:`serve_document`:
officers and supervisors who may read it; once per document, :func:`engine.supervision.document_files.serve`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput
from engine.policy import Actor
from engine.runtime import reads
from engine.supervision import document_files, documents
from engine.supervision.calendar import SHANGHAI
from engine.supervision.document_models import Agency, Document


def void_document(session: Session, actor: Actor, number: str, reason: Any, now: datetime | None = None) -> dict:
    """Void the document ``number``: it keeps its number, marked void with the reason, who and when. The document
    as the register now shows it. 404 (no such number), 403 (role, jurisdiction), 400 (reason), 409 (already void)."""
    doc = documents.get_document(session, number)
    policy.check_void_document(session, actor, doc.number, doc.uscc)
    doc = documents.void(session, doc.number, reason=reason if isinstance(reason, str) else "", actor=actor.username,
                         now=now)
    return documents.document_doc(doc, session.get(Agency, doc.agency_id))


def document_pdf(session: Session, actor: Actor, number: str | int, *,
                 record_via: str | None = None) -> tuple[Document, str, bytes]:
    """The document ``number`` (or its id, as the pages link it), its PDF's file name and its signed PDF. 404 (no
    such document, or no PDF), 403. The PDF names the party, so its read goes to the read log (kind ``document``,
    by number): with ``record_via`` in the caller's transaction (the CLI), else by the edge before serving it (the
    web writes it in a transaction of its own)."""
    doc = documents.get_document_by_id(session, number) if isinstance(number, int) else \
        documents.get_document(session, number)
    policy.check_read_document(session, actor, doc.number, doc.instance_id, doc.uscc)
    data = document_files.document_file(session, doc).pdf
    if record_via is not None:
        reads.record(session, actor.username, "document", doc.number, via=record_via)
    return doc, document_files.file_name(doc), data


def parse_served_at(value: Any) -> datetime | None:
    """A service time as given at an edge: ISO date-time (a time zone, else China time) or ``YYYY-MM-DD``."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput("the service time must be an ISO date or date-time")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"the service time {value!r} is not an ISO date or date-time") from exc
    if len(value.strip()) <= 10:  # a day: noon in China (the day is what counts)
        moment = moment.replace(hour=12)
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def serve_document(session: Session, actor: Actor, number: str, *, method: Any, served_to: Any,
                   served_at: Any = None, note: Any = None, now: datetime | None = None) -> dict:
    """Record that document ``number`` was served (送达回证): the document with its service. 404, 403, 400 (method,
    recipient, time), 409 (served already, void)."""
    doc = documents.get_document(session, number)
    policy.check_serve_document(session, actor, doc.number, doc.instance_id, doc.uscc)
    document_files.serve(session, doc.number, method=method if isinstance(method, str) else "",
                         served_to=served_to, served_at=parse_served_at(served_at), recorded_by=actor.username,
                         note=note, now=now)
    return {**documents.document_doc(doc, session.get(Agency, doc.agency_id)),
            **document_files.file_doc(session, doc)}
