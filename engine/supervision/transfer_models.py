"""Transfers (移送) of a matter to another authority, with the receiving side's receipt (migration ``0018_transfers``).

A ``transfer`` row is one matter sent out by the ``transfer`` process: to another department (inspection result
``5``: another department's violation), to the police (``G``: suspected crime), to the judiciary (a case decided
as "transfer to judiciary") or to the new jurisdiction of an entity that moved out (``12``). It records what was
sent, when, under which transfer letter, and the receipt: who received it, when, their reference, and whether they
accepted it. See :mod:`engine.supervision.transfers`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.runtime.models import BigId

#: kind → (who receives it, in Chinese; the inspection result code that leads to it, if any)
TRANSFER_KINDS: dict[str, tuple[str, str | None]] = {
    "other_department": ("其他行政部门", "5"),
    "police": ("公安机关", "G"),
    "judiciary": ("司法机关", None),
    "new_jurisdiction": ("迁入地市场监管部门", "12"),
}
TRANSFER_STATUSES = ("preparing", "sent", "received", "refused", "closed")
RECEIPT_VIA = ("message", "paper")
OUTCOMES = ("accepted", "handled_ourselves", "transferred_elsewhere", "closed")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Transfer(Base):
    """One matter transferred out, from its opening to the receiving side's receipt."""

    __tablename__ = "transfer"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(TRANSFER_KINDS)}", name="kind"),
        CheckConstraint(f"status IN {_in(TRANSFER_STATUSES)}", name="status"),
        CheckConstraint(f"receipt_via IS NULL OR receipt_via IN {_in(RECEIPT_VIA)}", name="receipt_via"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {_in(OUTCOMES)}", name="outcome"),
        Index("ix_transfer_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[Optional[int]] = mapped_column(BigId)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    #: the receiving authority, as named in the letter (``区卫生健康委员会``, ``郑州市公安局金水分局``)
    receiving: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    #: the instance whose finding or decision led to the transfer (inspection, case), and the transfer's own
    source_instance_id: Mapped[Optional[int]] = mapped_column(BigId, index=True)
    instance_id: Mapped[Optional[int]] = mapped_column(BigId, unique=True)
    status: Mapped[str] = mapped_column(String(12), default="preparing")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[str] = mapped_column(String(120))
    #: what was sent: the facts as written in the letter, the list of materials (案卷材料清单)
    facts: Mapped[Optional[str]] = mapped_column(Text)
    materials: Mapped[list] = mapped_column(JSON, default=list)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    sent_by: Mapped[Optional[str]] = mapped_column(String(120))
    #: the 移送函's number from the document register, when one was issued
    letter_number: Mapped[Optional[str]] = mapped_column(String(80))
    received_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: who signed the receipt on the receiving side, and their own reference (their 受理 number)
    received_by: Mapped[Optional[str]] = mapped_column(String(120))
    receipt_reference: Mapped[Optional[str]] = mapped_column(String(100))
    receipt_via: Mapped[Optional[str]] = mapped_column(String(8))
    accepted: Mapped[Optional[bool]] = mapped_column(Boolean)
    refusal_reason: Mapped[Optional[str]] = mapped_column(String(500))
    outcome: Mapped[Optional[str]] = mapped_column(String(24))
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    note: Mapped[Optional[str]] = mapped_column(String(500))

    def __repr__(self) -> str:
        return f"Transfer({self.id}, {self.kind}, {self.uscc}, {self.status})"
