"""Hazard registry, rectification orders, enforcement cases and publications (migration ``0006_loop``).

``hazard`` is one problem of one entity (问题隐患库, the hazard registry): item, clause, grade, where it
was found (instance and task) and its status ``open`` → ``rectification_verified`` → ``removed``, or
``closed_other`` with a reason (the entity ceased to exist). Every change appends to ``history``; rows are
never deleted. ``entity_hazard_stats`` counts how often each entity comes back into the registry
(``recurrence_count``: one per recording, so 1 after the first, 2 when it returns).
``rectification_order`` (责令改正) covers one or more hazards; ``enforcement_case`` (立案查处) is a case from
lead to close, linked to its hazards by ``enforcement_case_hazard``. ``publication`` holds what is made
public (plans, results, penalties) with personal data masked, its due date and withdrawal.

Rows written by service tasks carry the (instance, task) that wrote them, unique, so a retried task
finds its own row instead of writing a second one.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

HAZARD_GRADES = ("low", "medium", "high")
HAZARD_STATUSES = ("open", "rectification_verified", "removed", "closed_other")
#: Hazards still in the registry (verified ones wait for their case to close before removal).
OPEN_HAZARD_STATUSES = ("open", "rectification_verified")
ORDER_STATUSES = ("issued", "served", "reported", "verified", "escalated", "closed_other")
#: Order statuses whose deadline still matters (the order is not settled).
OPEN_ORDER_STATUSES = ("issued", "served", "reported")
CASE_STATUSES = ("lead", "filed", "decided", "closed", "not_filed", "terminated")
#: Case statuses that no longer block removal of a hazard.
CASE_DONE = ("closed", "not_filed", "terminated")
PUBLICATION_KINDS = ("plan", "result", "penalty")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Hazard(Base):
    __tablename__ = "hazard"
    __table_args__ = (
        CheckConstraint(f"grade IN {_in(HAZARD_GRADES)}", name="grade"),
        CheckConstraint(f"status IN {_in(HAZARD_STATUSES)}", name="status"),
        UniqueConstraint("source_instance_id", "source_task", "seq", name="uq_hazard_source"),
        Index("ix_hazard_uscc_status", "uscc", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    entity_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("entity.id", ondelete="SET NULL"))
    item_code: Mapped[str] = mapped_column(String(40))
    clause: Mapped[str] = mapped_column(String(60))
    description: Mapped[Optional[str]] = mapped_column(Text)
    grade: Mapped[str] = mapped_column(String(8))
    #: The instance and task (guid) that recorded it, and the finding's position in that call.
    source_instance_id: Mapped[int] = mapped_column(Integer, index=True)
    source_task: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    #: ``inspection`` or ``reinspection`` (a new problem found when re-inspecting).
    source_kind: Mapped[str] = mapped_column(String(20), default="inspection")
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24), default="open")
    #: A case lead is owed for it (grade says so, or its order was escalated); cleared when a case opens.
    needs_case: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    removed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    closed_reason: Mapped[Optional[str]] = mapped_column(String(200))
    #: ``[{"at": iso, "event": ..., ...}]``, appended, never rewritten.
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    def __repr__(self) -> str:
        return f"Hazard({self.id}, {self.uscc}, {self.item_code}/{self.clause}, {self.grade}, {self.status})"


class EntityHazardStats(Base):
    """How often an entity comes into the hazard registry; kept when hazards are removed or closed."""

    __tablename__ = "entity_hazard_stats"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    entity_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("entity.id", ondelete="SET NULL"))
    recurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    hazards_total: Mapped[int] = mapped_column(Integer, default=0)
    first_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"EntityHazardStats({self.uscc}, recurrence={self.recurrence_count}, total={self.hazards_total})"


class RectificationOrder(Base):
    __tablename__ = "rectification_order"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(ORDER_STATUSES)}", name="status"),
        UniqueConstraint("instance_id", "task_guid", name="uq_rectification_order_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    task_guid: Mapped[str] = mapped_column(String(64))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    hazard_ids: Mapped[list[int]] = mapped_column(JSON)
    #: Deadline = ``days`` of ``deadline_kind`` (``workdays`` | ``days``) after service (or issue until served).
    days: Mapped[int] = mapped_column(Integer)
    deadline_kind: Mapped[str] = mapped_column(String(10), default="workdays")
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_day: Mapped[date] = mapped_column(Date)
    #: The deadline touches a year without a loaded calendar (weekends-only computation).
    provisional: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    served_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    reported_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: The party reported the fix before the order reached it.
    rectified_before_service: Mapped[bool] = mapped_column(default=False)
    extension_used: Mapped[bool] = mapped_column(default=False)
    extension_days: Mapped[Optional[int]] = mapped_column(Integer)
    reinspection_outcome: Mapped[Optional[str]] = mapped_column(String(20))
    verified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="issued")
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    def __repr__(self) -> str:
        return f"RectificationOrder({self.id}, {self.uscc}, {self.status}, due {self.deadline_day})"


class EnforcementCase(Base):
    __tablename__ = "enforcement_case"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(CASE_STATUSES)}", name="status"),
        UniqueConstraint("instance_id", "task_guid", name="uq_enforcement_case_source"),
        Index("ix_enforcement_case_uscc_status", "uscc", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    task_guid: Mapped[str] = mapped_column(String(64))
    case_number: Mapped[Optional[str]] = mapped_column(String(60), unique=True)
    uscc: Mapped[str] = mapped_column(String(18))
    entity_id: Mapped[Optional[int]] = mapped_column(Integer, ForeignKey("entity.id", ondelete="SET NULL"))
    #: inspection | reinspection | report | complaint | transfer | monitoring (form lead_verification)
    lead_source: Mapped[str] = mapped_column(String(20))
    lead_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: 90 days from filing (rolled to a working day); reminder ``reminder_days`` before it.
    decision_due: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_reminder_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    reminded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    escalated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_type: Mapped[Optional[str]] = mapped_column(String(30))
    penalties: Mapped[Optional[list[str]]] = mapped_column(JSON(none_as_null=True))
    fine: Mapped[Optional[float]] = mapped_column(Float)
    #: ordinary | summary (简易程序: decided on the spot without filing, ``case_safeguards.decide_summary``)
    procedure: Mapped[str] = mapped_column(String(10), default="ordinary", server_default="ordinary")
    status: Mapped[str] = mapped_column(String(12), default="lead")
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    close_reason: Mapped[Optional[str]] = mapped_column(String(200))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    def __repr__(self) -> str:
        return f"EnforcementCase({self.id}, {self.case_number}, {self.uscc}, {self.status})"


class EnforcementCaseHazard(Base):
    __tablename__ = "enforcement_case_hazard"

    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("enforcement_case.id", ondelete="CASCADE"),
                                         primary_key=True)
    hazard_id: Mapped[int] = mapped_column(Integer, ForeignKey("hazard.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class Publication(Base):
    __tablename__ = "publication"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(PUBLICATION_KINDS)}", name="kind"),
        UniqueConstraint("source_instance_id", "source_task", name="uq_publication_source"),
        Index("ix_publication_feed", "kind", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    uscc: Mapped[Optional[str]] = mapped_column(String(18), index=True)
    #: What it publishes, e.g. ``case:12``, ``campaign:3``, ``instance:40``.
    ref: Mapped[Optional[str]] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    #: Personal data masked before it is stored (see :func:`engine.supervision.publication.mask`).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The event the deadline runs from (decision, inspection completed, plan approved).
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_by: Mapped[datetime] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(default=False)
    source_instance_id: Mapped[Optional[int]] = mapped_column(Integer)
    source_task: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    withdraw_note: Mapped[Optional[str]] = mapped_column(Text)
    #: Revoked penalty: withdraw within 3 working days of the revocation.
    withdraw_due: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Publication({self.id}, {self.kind}, {self.uscc}, published={self.published_at})"
