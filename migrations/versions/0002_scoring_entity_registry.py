"""Scoring: entity registry (12 risk factors, current score, class, reasons) and model registry

Revision ID: 0002_scoring
Revises: 0001_runtime
Create Date: 2026-11-22 05:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0002_scoring"
down_revision = "0001_runtime"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint("version", name=op.f("uq_model_version_version")),
    )
    op.create_index("ix_model_version_one_active", "model_version", ["active"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))

    op.create_table(
        "entity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("industry_section", sa.String(length=1), nullable=False),
        sa.Column("district", sa.String(length=6), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("factors_as_of", UTCDateTime(), nullable=True),
        sa.Column("years_in_business", sa.Float(), nullable=True),
        sa.Column("subscribed_capital", sa.Float(), nullable=True),
        sa.Column("employee_count", sa.Integer(), nullable=True),
        sa.Column("annual_report_late_3y", sa.Integer(), nullable=True),
        sa.Column("penalties_3y", sa.Integer(), nullable=True),
        sa.Column("abnormal_list_ever", sa.Boolean(), nullable=True),
        sa.Column("complaints_12m", sa.Integer(), nullable=True),
        sa.Column("reg_changes_24m", sa.Integer(), nullable=True),
        sa.Column("shared_address_count", sa.Integer(), nullable=True),
        sa.Column("linked_bad_entities", sa.Integer(), nullable=True),
        sa.Column("abnormal_list", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("serious_list", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=True),
        sa.Column("risk_class", sa.String(length=1), nullable=True),
        sa.Column("risk_reasons", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("scored_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("risk_class IN ('A', 'B', 'C', 'D')", name=op.f("ck_entity_risk_class")),
        sa.CheckConstraint("status IN ('active', 'suspended', 'deregistered', 'revoked')",
                           name=op.f("ck_entity_status")),
        sa.ForeignKeyConstraint(["model_version"], ["model_version.version"],
                                name=op.f("fk_entity_model_version_model_version"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity")),
        sa.UniqueConstraint("uscc", name=op.f("uq_entity_uscc")),
    )
    op.create_index(op.f("ix_entity_district"), "entity", ["district"], unique=False)
    op.create_index(op.f("ix_entity_industry_section"), "entity", ["industry_section"], unique=False)
    op.create_index(op.f("ix_entity_model_version"), "entity", ["model_version"], unique=False)
    op.create_index(op.f("ix_entity_risk_class"), "entity", ["risk_class"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_entity_risk_class"), table_name="entity")
    op.drop_index(op.f("ix_entity_model_version"), table_name="entity")
    op.drop_index(op.f("ix_entity_industry_section"), table_name="entity")
    op.drop_index(op.f("ix_entity_district"), table_name="entity")
    op.drop_table("entity")
    op.drop_index("ix_model_version_one_active", table_name="model_version")
    op.drop_table("model_version")
