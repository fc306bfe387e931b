"""Campaigns and draws: plan, frozen eligible population, logged exclusions, drawn entities

Schema only. ``draw_result`` is written once per campaign by ``engine.supervision.draw.draw_campaign``.

Revision ID: 0005_campaigns
Revises: 0004_registries
Create Date: 2026-11-22 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0005_campaigns"
down_revision = "0004_registries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("target_industries", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("jurisdiction", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("ratios", sa.JSON(), nullable=False),
        sa.Column("control_share", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("lookback_months", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("public_value", sa.String(length=200), nullable=True),
        sa.Column("approved_by", sa.String(length=120), nullable=True),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("population_hash", sa.String(length=64), nullable=True),
        sa.Column("population_size", sa.Integer(), nullable=True),
        sa.Column("population_frozen_at", UTCDateTime(), nullable=True),
        sa.Column("population_summary", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("algorithm", sa.String(length=32), nullable=True),
        sa.Column("drawn_at", UTCDateTime(), nullable=True),
        sa.Column("draw_summary", sa.JSON(none_as_null=True), nullable=True),
        sa.CheckConstraint("status IN ('draft', 'approved', 'drawn', 'published', 'closed')",
                           name=op.f("ck_campaign_status")),
        sa.CheckConstraint("window_end >= window_start", name=op.f("ck_campaign_window")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("code", name=op.f("uq_campaign_code")),
    )
    op.create_index("ix_campaign_window", "campaign", ["window_start", "window_end"])

    op.create_table(
        "campaign_population",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("entity_ids", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_population_campaign_id_campaign")),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_population")),
    )

    op.create_table(
        "campaign_exclusion",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.CheckConstraint("reason IN ('terminal_status', 'checked_in_lookback', 'open_task', 'open_case')",
                           name=op.f("ck_campaign_exclusion_reason")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_exclusion_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_campaign_exclusion_entity_id_entity")),
        sa.PrimaryKeyConstraint("campaign_id", "entity_id", name=op.f("pk_campaign_exclusion")),
    )

    op.create_table(
        "draw_result",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("stratum", sa.String(length=7), nullable=False),
        sa.Column("risk_class", sa.String(length=1), nullable=False),
        sa.Column("key_hex", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.CheckConstraint("stratum IN ('A', 'B', 'C', 'D', 'control')", name=op.f("ck_draw_result_stratum")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_draw_result_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_draw_result_entity_id_entity")),
        sa.PrimaryKeyConstraint("campaign_id", "entity_id", name=op.f("pk_draw_result")),
        sa.UniqueConstraint("campaign_id", "stratum", "rank", name="uq_draw_result_rank"),
        sa.UniqueConstraint("campaign_id", "uscc", name="uq_draw_result_uscc"),
    )
    op.create_index(op.f("ix_draw_result_entity_id"), "draw_result", ["entity_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_draw_result_entity_id"), table_name="draw_result")
    op.drop_table("draw_result")
    op.drop_table("campaign_exclusion")
    op.drop_table("campaign_population")
    op.drop_index("ix_campaign_window", table_name="campaign")
    op.drop_table("campaign")
