"""Registry tables of the supervision loop (migration ``0004_registries``).

* reference codes: ``department``, ``skill`` (what an officer can check, what an item requires);
* ``inspector_pool``: ``inspector`` with its ``inspector_leave`` periods and declared ``inspector_conflict`` s
  (the entity by USCC, so a conflict can be declared before the entity is imported);
* ``check_item``: the spot-check item list, clauses included;
* team formation: ``team_draw`` (one verifiable draw — a formation or a replacement — keyed by the
  (instance, task) that made it, so a retried service task finds its earlier draw instead of drawing again)
  and ``team_assignment`` (who is on which entity's team, in which role, until when and why released).

The ``entity`` table itself belongs to ``scoring`` (scoring/models.py).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow

ROLES = ("leader", "member", "expert")
METHODS = ("documentary", "on_site", "online")
FREQUENCIES = ("once", "annual", "semiannual", "quarterly", "monthly")
DRAW_KINDS = ("form", "replace")


class Department(Base):
    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"Department({self.code!r}, {self.name!r})"


class Skill(Base):
    """A competence an officer holds and a check item may require (e.g. ``food_safety``, ``drug_gsp``)."""

    __tablename__ = "skill"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"Skill({self.code!r}, {self.name!r})"


class Inspector(Base):
    """One entry of the inspector pool: a certified officer, or an expert (not counted toward the two officers)."""

    __tablename__ = "inspector"
    __table_args__ = (
        CheckConstraint("seniority >= 0", name="seniority"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The application user who receives this officer's tasks (``app_user.username``); optional.
    username: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    department: Mapped[str] = mapped_column(String(32), ForeignKey("department.code"), index=True)
    #: Enforcement certificate (执法证) number and last valid day; experts may have none.
    cert_no: Mapped[Optional[str]] = mapped_column(String(40))
    cert_expires: Mapped[Optional[date]] = mapped_column(Date)
    skills: Mapped[list] = mapped_column(JSON)
    #: GB/T 2260 code of the jurisdiction: a district (``410105``) or a city/province (``410100``,
    #: ``410000``), which covers every district under it.
    region: Mapped[str] = mapped_column(String(6), index=True)
    is_expert: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    leader_eligible: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    seniority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"Inspector({self.code!r}, {self.name!r}, {self.department!r})"


class InspectorLeave(Base):
    """An absence (leave, training, secondment): ``start_date`` to ``end_date``, both days included."""

    __tablename__ = "inspector_leave"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="period"),
        UniqueConstraint("inspector_id", "start_date", "end_date", name="uq_inspector_leave_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id", ondelete="CASCADE"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))


class InspectorConflict(Base):
    """A declared conflict of interest with an entity (by USCC): grounds for recusal (回避)."""

    __tablename__ = "inspector_conflict"
    __table_args__ = (
        UniqueConstraint("inspector_id", "entity_uscc", name="uq_inspector_conflict_pair"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id", ondelete="CASCADE"))
    entity_uscc: Mapped[str] = mapped_column(String(18), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CheckItem(Base):
    """One row of the spot-check item list (随机抽查事项清单) with its checklist clauses."""

    __tablename__ = "check_item"
    __table_args__ = (
        CheckConstraint("method IN ('documentary', 'on_site', 'online')", name="method"),
        CheckConstraint("frequency IN ('once', 'annual', 'semiannual', 'quarterly', 'monthly')", name="frequency"),
        CheckConstraint("ratio > 0 AND ratio <= 1", name="ratio"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    sub_item: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    legal_basis: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(32), ForeignKey("department.code"), index=True)
    #: GB/T 4754 sections the item targets; empty = every section.
    industries: Mapped[list] = mapped_column(JSON)
    required_skill: Mapped[Optional[str]] = mapped_column(String(32), ForeignKey("skill.code"))
    #: ``[{code, text, basis}]`` — the shape ``forms.checklist.merge_checklist`` reads.
    clauses: Mapped[list] = mapped_column(JSON)
    ratio: Mapped[float] = mapped_column(Float)
    frequency: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"CheckItem({self.code!r}, {self.name!r})"


class TeamDraw(Base):
    """One verifiable team draw: its inputs, seed, algorithm, filtered pool and result.

    ``kind`` ``form`` starts a team (``team_id`` NULL: the draw *is* the team); ``replace`` redraws one
    member of the team ``team_id``. Unique per (instance, task): the idempotency key of the service call.
    """

    __tablename__ = "team_draw"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_key", name="uq_team_draw_call"),
        CheckConstraint("kind IN ('form', 'replace')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("team_draw.id"), index=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    task_key: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), index=True)
    seed: Mapped[str] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(40))
    #: everything the draw depended on besides the registry: skills, team size, window, policy, campaign seed
    inputs: Mapped[dict] = mapped_column(JSON)
    #: the filtered pool (codes with their keys) and the exclusions with reasons, for ``verify``
    pool: Mapped[dict] = mapped_column(JSON)
    result: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TeamAssignment(Base):
    """An inspector on an entity's team. Open while ``released_at`` is NULL (counts toward the workload cap)."""

    __tablename__ = "team_assignment"
    __table_args__ = (
        CheckConstraint("role IN ('leader', 'member', 'expert')", name="role"),
        UniqueConstraint("draw_id", "inspector_id", name="uq_team_assignment_draw_inspector"),
        Index("ix_team_assignment_open", "inspector_id", "released_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the formation draw (= the team); replacements keep it
    team_id: Mapped[int] = mapped_column(ForeignKey("team_draw.id"), index=True)
    #: the draw that picked this member (the formation, or a replacement)
    draw_id: Mapped[int] = mapped_column(ForeignKey("team_draw.id"))
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    task_key: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id"))
    role: Mapped[str] = mapped_column(String(8))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    release_reason: Mapped[Optional[str]] = mapped_column(String(200))
    replaced_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("team_assignment.id"))

    def __repr__(self) -> str:
        return (f"TeamAssignment(team={self.team_id}, inspector={self.inspector_id}, {self.role}, "
                f"open={self.released_at is None})")
