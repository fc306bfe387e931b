"""Background jobs: long work a person asks for (the designer's what-if simulations) queued in the database and
run by the worker instead of a web request thread

Revision ID: 0011_simulation_jobs
Revises: 0010_sign_in
Create Date: 2026-12-07 10:00:00

* ``background_job``: who asked, the kind and its parameters, the status (queued, running, done, failed), the
  progress and result documents or the error, the worker running it and its heartbeat.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0011_simulation_jobs"
down_revision = "0010_sign_in"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "background_job",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_job")),
    )
    op.create_index("ix_background_job_status", "background_job", ["status", "id"])
    op.create_index("ix_background_job_owner", "background_job", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_background_job_owner", table_name="background_job")
    op.drop_index("ix_background_job_status", table_name="background_job")
    op.drop_table("background_job")
