"""Campaign and draw tables (migration ``0005_campaigns``).

``campaign`` is the plan (抽查计划) with everything the draw depends on: its public ``code``, the per-class
ratios and control share (decimal strings, so the arithmetic is exact), the capacity, the public randomness
value recorded at approval, and once drawn the seed, the population hash and the algorithm version.
``campaign_population`` keeps the frozen eligible population exactly as it was hashed (the sorted
``USCC,CLASS`` lines, zlib-compressed), so that ``regflow draw verify`` recomputes the draw from stored
inputs alone. ``campaign_exclusion`` logs every in-scope entity left out and why; ``draw_result`` holds the
drawn entities, one compact row each, written once per campaign.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

CAMPAIGN_STATUSES = ("draft", "approved", "drawn", "published", "closed")
CLASSES = ("A", "B", "C", "D")
STRATA = CLASSES + ("control",)
#: Why an in-scope entity is not in the eligible population (logged when it is frozen).
EXCLUSION_REASONS = ("terminal_status", "checked_in_lookback", "open_task", "open_case")


class Campaign(Base):
    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'approved', 'drawn', 'published', 'closed')", name="status"),
        CheckConstraint("window_end >= window_start", name="window"),
        Index("ix_campaign_window", "window_start", "window_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The public identifier, part of the seed (no control characters).
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Departments taking part (a joint plan has several).
    departments: Mapped[list[str]] = mapped_column(JSON)
    #: Check item codes (``check_item``).
    items: Mapped[list[str]] = mapped_column(JSON)
    #: Industry sections the items target; NULL = every industry.
    target_industries: Mapped[Optional[list[str]]] = mapped_column(JSON(none_as_null=True))
    #: District code prefixes (GB/T 2260, e.g. ``3501`` = a whole city); NULL = every district.
    jurisdiction: Mapped[Optional[list[str]]] = mapped_column(JSON(none_as_null=True))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    #: ``{"A": "0.01", "B": "0.04", "C": "0.12", "D": "0.30"}`` — decimal strings.
    ratios: Mapped[dict[str, str]] = mapped_column(JSON)
    #: Share of all draws that goes to the pure-random control stratum, decimal string.
    control_share: Mapped[str] = mapped_column(String(16))
    #: Most entities the campaign can inspect; NULL = no limit.
    capacity: Mapped[Optional[int]] = mapped_column(Integer)
    #: Months back in which a draw of the same item excludes an entity.
    lookback_months: Mapped[int] = mapped_column(Integer, default=12)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The public randomness value (e.g. a published lottery number), recorded at approval.
    public_value: Mapped[Optional[str]] = mapped_column(String(200))
    approved_by: Mapped[Optional[str]] = mapped_column(String(120))
    approved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: SHA-256 of the eligible population list (set when the population is frozen).
    population_hash: Mapped[Optional[str]] = mapped_column(String(64))
    population_size: Mapped[Optional[int]] = mapped_column(Integer)
    population_frozen_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: Counts of the eligible population and of exclusions (``engine.supervision.draw.freeze_population``).
    population_summary: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON(none_as_null=True))
    #: Seed = SHA-256 over (algorithm, code, population hash, public value); hex.
    seed: Mapped[Optional[str]] = mapped_column(String(64))
    algorithm: Mapped[Optional[str]] = mapped_column(String(32))
    drawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: Quotas, carries, capacity cuts, shortfalls and counts of the draw (``DrawOutcome.summary``).
    draw_summary: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON(none_as_null=True))

    def __repr__(self) -> str:
        return f"Campaign({self.id}, {self.code!r}, {self.status})"


class CampaignPopulation(Base):
    """The frozen eligible population: the exact bytes hashed into ``campaign.population_hash``."""

    __tablename__ = "campaign_population"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    #: ``uscc-class-csv/1+zlib``: zlib of the sorted ``USCC,CLASS\n`` lines.
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    #: zlib of the registry ids (int64 little-endian) in list order; not part of the hash.
    entity_ids: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class CampaignExclusion(Base):
    """An in-scope entity left out of the eligible population, with the first reason that applied."""

    __tablename__ = "campaign_exclusion"
    __table_args__ = (
        CheckConstraint("reason IN ('terminal_status', 'checked_in_lookback', 'open_task', 'open_case')",
                        name="reason"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    reason: Mapped[str] = mapped_column(String(32))
    #: e.g. the status, the earlier campaign's code, the open instance id.
    detail: Mapped[Optional[str]] = mapped_column(String(200))


class DrawResult(Base):
    """One drawn entity. ``stratum`` is its credit class or ``control``; ``rank`` is 1-based within it."""

    __tablename__ = "draw_result"
    __table_args__ = (
        CheckConstraint("stratum IN ('A', 'B', 'C', 'D', 'control')", name="stratum"),
        UniqueConstraint("campaign_id", "stratum", "rank", name="uq_draw_result_rank"),
        UniqueConstraint("campaign_id", "uscc", name="uq_draw_result_uscc"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), primary_key=True, index=True)
    uscc: Mapped[str] = mapped_column(String(18))
    stratum: Mapped[str] = mapped_column(String(7))
    #: The entity's credit class in the frozen population (differs from ``stratum`` for control draws).
    risk_class: Mapped[str] = mapped_column(String(1))
    #: HMAC-SHA256(seed, uscc), hex.
    key_hex: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"DrawResult({self.campaign_id}, {self.uscc}, {self.stratum} #{self.rank})"
