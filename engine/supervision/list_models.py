"""The two lists as registries: entries, removal applications, annual reports (migration ``0016_lists``).

``list_entry`` is one listing of one entity on the abnormal-operations list (经营异常名录, ``abnormal``) or the
serious-violation list (严重违法失信名单, ``serious``): why (a reason code and its text), on what legal basis, when
and by whom, and the process instance that caused it. An entry stays ``listed`` until it is ``removed`` — by
correction, an approved application, the end of its term (``expiry``) or, for an abnormal entry open three years,
its escalation to the serious list (``escalated``, ``escalated_to_id`` = the serious entry). A serious entry's term
ends on ``expires_on``, three years after the decision to list it (migration ``0019_serious_term``). Rows are never
deleted: the history of an entity's listings is the rows. One open entry per (list, entity, reason code): the
partial unique index makes a second listing for the same reason impossible even under concurrent steps.

``list_removal_application`` is a request to be taken off the list (信用修复 / 移出申请): the entity's statement and
evidence references, reviewed by an officer (``pending`` → ``approved`` | ``rejected``). ``annual_report`` holds
which entity filed its annual report for which year (the 1 July default job reads it).

``entity.abnormal_list`` / ``entity.serious_list`` (scoring's table) are a projection of this registry: true exactly
while an open entry of that list exists (:mod:`engine.supervision.lists` keeps them so).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.runtime.models import BigId

LIST_KINDS = ("abnormal", "serious")
ENTRY_STATUSES = ("listed", "removed")
REMOVAL_KINDS = ("correction", "application", "expiry", "escalated")
APPLICATION_STATUSES = ("pending", "approved", "rejected")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class ListEntry(Base):
    """One listing of one entity on one list, from entry to removal."""

    __tablename__ = "list_entry"
    __table_args__ = (
        CheckConstraint(f"list_kind IN {_in(LIST_KINDS)}", name="list_kind"),
        CheckConstraint(f"status IN {_in(ENTRY_STATUSES)}", name="status"),
        CheckConstraint(f"removal_kind IS NULL OR removal_kind IN {_in(REMOVAL_KINDS)}", name="removal_kind"),
        Index("uq_list_entry_open", "list_kind", "entity_id", "reason_code", unique=True,
              sqlite_where=text("status = 'listed'"), postgresql_where=text("status = 'listed'")),
        Index("ix_list_entry_entity", "entity_id", "list_kind", "status"),
        Index("ix_list_entry_escalates", "list_kind", "status", "escalates_on"),
        Index("ix_list_entry_expires", "list_kind", "status", "expires_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_kind: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[int] = mapped_column(Integer, ForeignKey("entity.id", ondelete="RESTRICT"))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    legal_basis: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_by: Mapped[str] = mapped_column(String(120))
    #: the process instance whose step listed the entity (None: a job, the CLI)
    instance_id: Mapped[Optional[int]] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(8), default="listed")
    removal_kind: Mapped[Optional[str]] = mapped_column(String(12))
    removed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    removed_by: Mapped[Optional[str]] = mapped_column(String(120))
    removal_reason: Mapped[Optional[str]] = mapped_column(String(500))
    #: abnormal entries: the China date from which an entry still open moves to the serious list (3 years on)
    escalates_on: Mapped[Optional[date]] = mapped_column(Date)
    #: serious entries: the China date the publication term ends (3 years after the decision to list, 列入决定):
    #: the daily job removes an entry still open on that day (``expiry``); None for an imported entry (date unknown)
    expires_on: Mapped[Optional[date]] = mapped_column(Date)
    #: the serious entry an escalated abnormal entry became
    escalated_to_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("list_entry.id", ondelete="RESTRICT"))

    def __repr__(self) -> str:
        return f"ListEntry({self.id}, {self.list_kind}, {self.uscc}, {self.reason_code}, {self.status})"


class RemovalApplication(Base):
    """The entity's request to be removed from a list, and its review."""

    __tablename__ = "list_removal_application"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(APPLICATION_STATUSES)}", name="status"),
        Index("uq_list_removal_application_pending", "entry_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, ForeignKey("list_entry.id", ondelete="RESTRICT"), index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    statement: Mapped[str] = mapped_column(Text)
    #: references to the evidence it brings (evidence ids, document numbers, file names)
    evidence: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_by: Mapped[str] = mapped_column(String(120))
    #: the list_removal process instance reviewing it, when one was started
    instance_id: Mapped[Optional[int]] = mapped_column(BigId)
    reviewed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[Optional[str]] = mapped_column(String(120))
    review_note: Mapped[Optional[str]] = mapped_column(String(500))


class AnnualReport(Base):
    """An entity's annual report for a year (年度报告), as filed: the 1 July job lists those without one."""

    __tablename__ = "annual_report"

    entity_id: Mapped[int] = mapped_column(Integer, ForeignKey("entity.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    filed_on: Mapped[date] = mapped_column(Date)
