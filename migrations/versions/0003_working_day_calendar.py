"""Working-day calendar: holidays and swapped working days per day, known years

Schema only: the rows come from ``regflow calendar seed`` (the chinese-calendar package) and
``regflow calendar load FILE`` (a year's official schedule), never from a migration.

Revision ID: 0003_calendar
Revises: 0002_scoring
Create Date: 2026-11-22 06:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0003_calendar"
down_revision = "0002_scoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'swapped_workday', 'weekend', 'workday')",
                           name=op.f("ck_calendar_day_kind")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_day")),
    )
    op.create_table(
        "calendar_year",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_year")),
    )


def downgrade() -> None:
    op.drop_table("calendar_year")
    op.drop_table("calendar_day")
