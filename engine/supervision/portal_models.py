"""The entity portal's tables (migration ``0015_portal``): access codes and the businesses' submissions.

``portal_access_code`` is the code a business signs in with, printed on a document it was served (one live code
per document: issuing another revokes the earlier one) or handed out without a document. Only a keyed hash of
the code is stored (HMAC-SHA256 with the installation's secret over the USCC and the code), so a copy of the
database signs nobody in. A code expires (``expires_at``), may be revoked (``revoked_at``) and records its first
use. ``session_version`` is the code's entity sessions: bumping it (sign-out, revocation) ends every session
that signed in with it.

``portal_submission`` is one thing a business sent (a rectification report, a statement and defence …) under its
receipt number: ``delivered`` when it was correlated into the instance waiting for it (``instance_id``),
``routed`` when no instance waited and it was kept for an officer (``routed_user`` or ``routed_group``), then
``handled`` when that officer dealt with it. Rows are never deleted. See :mod:`engine.supervision.portal`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.runtime.models import BigId

#: submission kind → the BPMN message it is delivered as (the same name)
SUBMISSION_KINDS = ("rectification_report", "information_publicised", "hearing_request", "statement_defence",
                    "extension_request", "credit_repair")
SUBMISSION_STATUSES = ("delivered", "routed", "handled")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class PortalAccessCode(Base):
    """A business's access code (only its keyed hash), for one served document or none."""

    __tablename__ = "portal_access_code"
    __table_args__ = (Index("ix_portal_access_code_uscc", "uscc", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    #: the served document the code is printed on; none: handed out without a document
    document_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("document.id", ondelete="RESTRICT"),
                                                       index=True)
    #: HMAC-SHA256 (hex) of the USCC and the normalised code with the installation's secret
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the first sign-in with it
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[Optional[str]] = mapped_column(String(200))
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    def __repr__(self) -> str:
        return f"PortalAccessCode({self.id}, {self.uscc}, document={self.document_id})"


class PortalSubmission(Base):
    """One submission of a business under its receipt number; delivered to an instance or routed to an officer."""

    __tablename__ = "portal_submission"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(SUBMISSION_KINDS)}", name="kind"),
        CheckConstraint(f"status IN {_in(SUBMISSION_STATUSES)}", name="status"),
        Index("ix_portal_submission_uscc", "uscc", "submitted_at"),
        Index("ix_portal_submission_status", "status", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``P20261207-7K3M9Q``: the day (China time) and six random characters of the code alphabet
    receipt: Mapped[str] = mapped_column(String(24), unique=True)
    uscc: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(32))
    #: the form's fields, checked and bounded
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: references of the files sent with it: ``{sha256, filename, size, content_type}``
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(10))
    #: the instance it was delivered to
    instance_id: Mapped[Optional[int]] = mapped_column(BigId, ForeignKey("process_instance.id"), index=True)
    #: why it was kept instead (no instance waits, several do, the instance is suspended …)
    kept_reason: Mapped[Optional[str]] = mapped_column(String(300))
    routed_user: Mapped[Optional[str]] = mapped_column(String(120))
    routed_group: Mapped[Optional[str]] = mapped_column(String(120))
    code_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("portal_access_code.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    handled_by: Mapped[Optional[str]] = mapped_column(String(120))
    handled_note: Mapped[Optional[str]] = mapped_column(String(500))

    def __repr__(self) -> str:
        return f"PortalSubmission({self.receipt!r}, {self.kind}, {self.status})"
