"""An official document's signed PDF and its service record (migration ``0014_doc_files``).

``document_file`` holds, for each issued :class:`~engine.supervision.document_models.Document`, the PDF as it
was rendered and signed — its bytes in the database (loaded only when asked for: ``deferred``), their SHA-256,
the SHA-256 fingerprint of the signer's certificate and the fields the PDF was rendered from. The bytes live in
the database rather than as files beside the evidence (``evidence.py``) because a document is written in the
transaction that numbers it: a step that rolls back takes its PDF back with its number, and a database backup
holds the register and its documents together (a notice is tens of kilobytes; thousands a year fit).

``document_service`` is the 送达回证: how and when the document was served, to whom, recorded by whom — one
per document (service starts the legal clocks; a second service of one document is a Conflict). The methods
are those of the service form (``forms/definitions/document_service.yaml``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

#: method → its Chinese name (the service form's values)
SERVICE_METHODS: dict[str, str] = {
    "in_person": "直接送达",
    "left_at_address": "留置送达",
    "registered_mail": "邮寄送达",
    "electronic": "电子送达",
    "entrusted": "委托送达",
    "public_notice": "公告送达",
}


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class DocumentFile(Base):
    """The signed PDF of one document, with the digest and signer it was issued with."""

    __tablename__ = "document_file"

    document_id: Mapped[int] = mapped_column(Integer, ForeignKey("document.id", ondelete="RESTRICT"),
                                             primary_key=True)
    #: the signed PDF (deferred: listing documents never loads it)
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of ``pdf``, hex — the digest the audit chain's ``document_issued`` event carries
    sha256: Mapped[str] = mapped_column(String(64))
    #: SHA-256 of the signer certificate's DER, hex
    signer_fingerprint: Mapped[str] = mapped_column(String(64))
    signer_subject: Mapped[str] = mapped_column(String(300))
    #: the fields the template was rendered from (a JSON snapshot)
    fields: Mapped[dict] = mapped_column(JSON)
    #: template of the kind and its version, e.g. ``rectification_notice/1``
    template: Mapped[str] = mapped_column(String(60))
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentService(Base):
    """How, when and to whom a document was served (送达回证)."""

    __tablename__ = "document_service"
    __table_args__ = (CheckConstraint(f"method IN {_in(SERVICE_METHODS)}", name="method"),)

    document_id: Mapped[int] = mapped_column(Integer, ForeignKey("document.id", ondelete="RESTRICT"),
                                             primary_key=True)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(20))
    served_to: Mapped[str] = mapped_column(String(120))
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[Optional[str]] = mapped_column(String(500))
