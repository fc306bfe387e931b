"""Hazard registry, entity recurrence counts, rectification orders, enforcement cases, publications

Schema only; rows are written by the hazard, case and publication services (engine/supervision).

Revision ID: 0006_loop
Revises: 0005_campaigns
Create Date: 2026-11-22 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0006_loop"
down_revision = "0005_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hazard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("clause", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("source_instance_id", sa.Integer(), nullable=False),
        sa.Column("source_task", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("found_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("needs_case", sa.Boolean(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_reason", sa.String(length=200), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.CheckConstraint("grade IN ('low', 'medium', 'high')", name=op.f("ck_hazard_grade")),
        sa.CheckConstraint("status IN ('open', 'rectification_verified', 'removed', 'closed_other')",
                           name=op.f("ck_hazard_status")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_hazard_entity_id_entity"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard")),
        sa.UniqueConstraint("source_instance_id", "source_task", "seq", name=op.f("uq_hazard_source")),
    )
    op.create_index("ix_hazard_uscc_status", "hazard", ["uscc", "status"], unique=False)
    op.create_index(op.f("ix_hazard_source_instance_id"), "hazard", ["source_instance_id"], unique=False)

    op.create_table(
        "entity_hazard_stats",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("recurrence_count", sa.Integer(), nullable=False),
        sa.Column("hazards_total", sa.Integer(), nullable=False),
        sa.Column("first_recorded_at", UTCDateTime(), nullable=False),
        sa.Column("last_recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_entity_hazard_stats_entity_id_entity"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_entity_hazard_stats")),
    )

    op.create_table(
        "rectification_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_guid", sa.String(length=64), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("hazard_ids", sa.JSON(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("deadline_kind", sa.String(length=10), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("deadline_day", sa.Date(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("served_at", UTCDateTime(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("rectified_before_service", sa.Boolean(), nullable=False),
        sa.Column("extension_used", sa.Boolean(), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=True),
        sa.Column("reinspection_outcome", sa.String(length=20), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('issued', 'served', 'reported', 'verified', 'escalated', 'closed_other')",
                           name=op.f("ck_rectification_order_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rectification_order")),
        sa.UniqueConstraint("instance_id", "task_guid", name=op.f("uq_rectification_order_source")),
    )
    op.create_index(op.f("ix_rectification_order_instance_id"), "rectification_order", ["instance_id"], unique=False)
    op.create_index(op.f("ix_rectification_order_uscc"), "rectification_order", ["uscc"], unique=False)

    op.create_table(
        "enforcement_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_guid", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=60), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("lead_source", sa.String(length=20), nullable=False),
        sa.Column("lead_at", UTCDateTime(), nullable=False),
        sa.Column("filed_at", UTCDateTime(), nullable=True),
        sa.Column("decision_due", UTCDateTime(), nullable=True),
        sa.Column("decision_reminder_at", UTCDateTime(), nullable=True),
        sa.Column("reminded_at", UTCDateTime(), nullable=True),
        sa.Column("escalated_at", UTCDateTime(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_type", sa.String(length=30), nullable=True),
        sa.Column("penalties", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("fine", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.String(length=200), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('lead', 'filed', 'decided', 'closed', 'not_filed', 'terminated')",
                           name=op.f("ck_enforcement_case_status")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_enforcement_case_entity_id_entity"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforcement_case")),
        sa.UniqueConstraint("case_number", name=op.f("uq_enforcement_case_case_number")),
        sa.UniqueConstraint("instance_id", "task_guid", name=op.f("uq_enforcement_case_source")),
    )
    op.create_index("ix_enforcement_case_uscc_status", "enforcement_case", ["uscc", "status"], unique=False)
    op.create_index(op.f("ix_enforcement_case_instance_id"), "enforcement_case", ["instance_id"], unique=False)

    op.create_table(
        "enforcement_case_hazard",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"],
                                name=op.f("fk_enforcement_case_hazard_case_id_enforcement_case"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazard.id"],
                                name=op.f("fk_enforcement_case_hazard_hazard_id_hazard"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "hazard_id", name=op.f("pk_enforcement_case_hazard")),
    )
    op.create_index(op.f("ix_enforcement_case_hazard_hazard_id"), "enforcement_case_hazard", ["hazard_id"],
                    unique=False)

    op.create_table(
        "publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("ref", sa.String(length=60), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("event_at", UTCDateTime(), nullable=False),
        sa.Column("due_by", UTCDateTime(), nullable=False),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("source_instance_id", sa.Integer(), nullable=True),
        sa.Column("source_task", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.Column("withdraw_note", sa.Text(), nullable=True),
        sa.Column("withdraw_due", UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('plan', 'result', 'penalty')", name=op.f("ck_publication_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
        sa.UniqueConstraint("source_instance_id", "source_task", name=op.f("uq_publication_source")),
    )
    op.create_index("ix_publication_feed", "publication", ["kind", "published_at"], unique=False)
    op.create_index(op.f("ix_publication_uscc"), "publication", ["uscc"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_publication_uscc"), table_name="publication")
    op.drop_index("ix_publication_feed", table_name="publication")
    op.drop_table("publication")
    op.drop_index(op.f("ix_enforcement_case_hazard_hazard_id"), table_name="enforcement_case_hazard")
    op.drop_table("enforcement_case_hazard")
    op.drop_index(op.f("ix_enforcement_case_instance_id"), table_name="enforcement_case")
    op.drop_index("ix_enforcement_case_uscc_status", table_name="enforcement_case")
    op.drop_table("enforcement_case")
    op.drop_index(op.f("ix_rectification_order_uscc"), table_name="rectification_order")
    op.drop_index(op.f("ix_rectification_order_instance_id"), table_name="rectification_order")
    op.drop_table("rectification_order")
    op.drop_table("entity_hazard_stats")
    op.drop_index(op.f("ix_hazard_source_instance_id"), table_name="hazard")
    op.drop_index("ix_hazard_uscc_status", table_name="hazard")
    op.drop_table("hazard")
