"""Tables owned by ``scoring``: the entity registry and the model registry (migration 0002_scoring)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    """A stored risk model. Exactly zero or one row has ``active`` true (partial unique index)."""

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    kind: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict] = mapped_column(JSON)
    meta: Mapped[dict] = mapped_column("metadata", JSON)
    # deferred: scoring reads id/version/sha256 per call and the bytes only on a cache miss
    artifact: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_model_version_one_active", "active", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )


class Entity(Base):
    """One market entity (市场主体): identity, the 12 risk factors, flags and its current score."""

    __tablename__ = "entity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    industry_section: Mapped[str] = mapped_column(String(1), index=True)
    district: Mapped[str] = mapped_column(String(6), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    factors_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the 12 factors (industry_section and entity_type above are factors 4 and 5); NULL = unknown
    years_in_business: Mapped[float | None] = mapped_column(Float)
    subscribed_capital: Mapped[float | None] = mapped_column(Float)
    employee_count: Mapped[int | None] = mapped_column(Integer)
    annual_report_late_3y: Mapped[int | None] = mapped_column(Integer)
    penalties_3y: Mapped[int | None] = mapped_column(Integer)
    abnormal_list_ever: Mapped[bool | None] = mapped_column(Boolean)
    complaints_12m: Mapped[int | None] = mapped_column(Integer)
    reg_changes_24m: Mapped[int | None] = mapped_column(Integer)
    shared_address_count: Mapped[int | None] = mapped_column(Integer)
    linked_bad_entities: Mapped[int | None] = mapped_column(Integer)
    # list flags
    abnormal_list: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    serious_list: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # current score
    risk_score: Mapped[float | None] = mapped_column(Float)
    risk_class: Mapped[str | None] = mapped_column(String(1), index=True)
    risk_reasons: Mapped[list | None] = mapped_column(JSON(none_as_null=True))  # None -> SQL NULL
    model_version: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("model_version.version", ondelete="SET NULL"), index=True)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("risk_class IN ('A', 'B', 'C', 'D')", name="risk_class"),
        CheckConstraint("status IN ('active', 'suspended', 'deregistered', 'revoked')", name="status"),
    )


ENTITY_COLUMNS = [c.name for c in Entity.__table__.columns]
