"""Agencies and the register of official documents (migration ``0013_documents``).

``agency`` is a bureau (市场监督管理局) or one of its stations (市场监管所, ``parent_id`` = the bureau): its
name, the short code its document numbers start with (``郑市监``), the districts it covers (GB/T 2260 codes; a
city code such as ``410100`` covers the city's districts) and whether it is active. ``agency_member`` puts a
user in one agency (kept here, not on ``app_user``: the runtime's tables know no domain).

``document_counter`` holds the last number handed out per (agency, kind, year); ``document`` is one issued
document under that number — ``seq`` 1, 2, … with no gap (a rolled-back transaction takes its number back) and
never reused (a voided document keeps its number, marked ``void``). See :mod:`engine.supervision.documents`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.runtime.models import BigId

#: kind → (the document's Chinese title, the short name its numbers carry after the agency's code).
#: ``郑市监责改〔2026〕15号`` is the 15th rectification notice of 郑市监 in 2026.
DOCUMENT_KINDS: dict[str, tuple[str, str]] = {
    "inspection_record": ("现场检查笔录", "检"),
    "rectification_notice": ("责令改正通知书", "责改"),
    "filing_approval": ("立案审批表", "立"),
    "penalty_notice": ("行政处罚告知书", "罚告"),
    "hearing_notice": ("听证通知书", "听"),
    "penalty_decision": ("行政处罚决定书", "罚"),
    "service_receipt": ("送达回证", "送"),
    "transfer_letter": ("移送函", "移"),
}
DOCUMENT_STATUSES = ("issued", "void")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Agency(Base):
    """A bureau or a station: who issues, numbers (and later signs) documents for the districts it covers."""

    __tablename__ = "agency"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the prefix of its document numbers (``郑市监``), unique
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: the bureau a station belongs to; ``None`` for a bureau
    parent_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("agency.id", ondelete="RESTRICT"),
                                                     index=True)
    #: GB/T 2260 codes of what it covers: districts (``410105``) or a whole city (``410100``)
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Agency({self.code!r}, {self.name!r}, parent={self.parent_id})"


class AgencyMember(Base):
    """The one agency a user belongs to."""

    __tablename__ = "agency_member"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(Integer, ForeignKey("agency.id", ondelete="RESTRICT"), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentCounter(Base):
    """The last sequence number handed out for (agency, kind, year); bumped in the issuing transaction."""

    __tablename__ = "document_counter"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(DOCUMENT_KINDS)}", name="kind"),
        CheckConstraint("last_seq >= 1", name="last_seq"),
    )

    agency_id: Mapped[int] = mapped_column(Integer, ForeignKey("agency.id", ondelete="RESTRICT"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)


class Document(Base):
    """An issued official document under its register number; voided, it keeps the number."""

    __tablename__ = "document"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(DOCUMENT_KINDS)}", name="kind"),
        CheckConstraint(f"status IN {_in(DOCUMENT_STATUSES)}", name="status"),
        CheckConstraint("seq >= 1", name="seq"),
        UniqueConstraint("agency_id", "kind", "year", "seq", name="uq_document_register"),
        Index("ix_document_instance_kind", "instance_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the formatted number, ``郑市监责改〔2026〕15号``
    number: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    agency_id: Mapped[int] = mapped_column(Integer, ForeignKey("agency.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    #: the process instance that issued it (none: issued outside a process)
    instance_id: Mapped[Optional[int]] = mapped_column(BigId)
    #: what it is about in that instance (``rectification_order:12``, a task's key …)
    ref: Mapped[Optional[str]] = mapped_column(String(200))
    uscc: Mapped[Optional[str]] = mapped_column(String(18), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(8), default="issued")
    void_reason: Mapped[Optional[str]] = mapped_column(String(200))
    voided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    voided_by: Mapped[Optional[str]] = mapped_column(String(120))

    def __repr__(self) -> str:
        return f"Document({self.number!r}, {self.kind}, {self.status})"
