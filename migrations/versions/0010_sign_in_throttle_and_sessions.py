"""Sign-in hardening: a per-user session version (sessions that can be ended) and the shared table of failed
sign-in attempts that throttles guessing

Revision ID: 0010_sign_in
Revises: 0009_hot_path
Create Date: 2026-12-07 09:00:00

* ``app_user.session_version``: every web session carries the value it was signed in with; sign-out, a password
  change or reset, deactivation and a change of roles or groups bump it, which ends the user's sessions
  everywhere (the session cookie held the last 16 characters of the password hash before).
* ``sign_in_throttle``: failures counted per account, per account and address (or known browser) and per
  address, in the database so that every web process sees the same counts; keys are SHA-256 digests, rows
  whose last attempt is a day old are pruned.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0010_sign_in"
down_revision = "0009_hot_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttle")),
    )
    op.create_index(op.f("ix_sign_in_throttle_last_at"), "sign_in_throttle", ["last_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_throttle_last_at"), table_name="sign_in_throttle")
    op.drop_table("sign_in_throttle")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("session_version")
