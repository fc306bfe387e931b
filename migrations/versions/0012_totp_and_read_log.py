"""Accountability for reads and a second sign-in factor: the read log and each user's TOTP secret

Revision ID: 0012_totp_reads
Revises: 0011_simulation_jobs
Create Date: 2026-12-07 11:00:00

* ``app_user.totp_secret``, ``totp_enabled_at``, ``totp_last_step``: the user's TOTP secret (kept when enrolment
  starts, in use once confirmed) and the time step of the last accepted code (a code is accepted once).
* ``read_record``: one row per read of a dossier, an evidence file or an instance's history (who, what, when,
  web/api/cli, the client address); append-only, pruned after ``REGFLOW_LOG_RETENTION_DAYS``.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0012_totp_reads"
down_revision = "0011_simulation_jobs"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "read_record",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_read_record")),
    )
    op.create_index(op.f("ix_read_record_at"), "read_record", ["at"])
    op.create_index("ix_read_record_actor", "read_record", ["actor", "at"])
    op.create_index("ix_read_record_ref", "read_record", ["ref", "at"])


def downgrade() -> None:
    op.drop_index("ix_read_record_ref", table_name="read_record")
    op.drop_index("ix_read_record_actor", table_name="read_record")
    op.drop_index(op.f("ix_read_record_at"), table_name="read_record")
    op.drop_table("read_record")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
