"""Enforcement safeguards: legal review, collective deliberation, evidence holds and the summary procedure

Revision ID: 0017_enforcement
Revises: 0016_lists
Create Date: 2026-12-07 18:00:00

* ``enforcement_case.procedure``: ``ordinary`` or ``summary`` (简易程序: a penalty decided on the spot, without
  filing or investigation). Existing cases were all ordinary.

Legal review and collective deliberation opinions and the evidence held with its 7-day decision are events of the
case's ``history`` (JSON), like the decision clock's: no new tables.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_enforcement"
down_revision = "0016_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enforcement_case") as batch:
        batch.add_column(sa.Column("procedure", sa.String(length=10), nullable=False, server_default="ordinary"))


def downgrade() -> None:
    with op.batch_alter_table("enforcement_case") as batch:
        batch.drop_column("procedure")
