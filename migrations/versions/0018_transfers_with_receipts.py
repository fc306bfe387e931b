"""Transfers (移送) to another department, the police, the judiciary or the new jurisdiction, with their receipts

Revision ID: 0018_transfers
Revises: 0017_enforcement
Create Date: 2026-12-07 18:00:00

* ``transfer``: one matter sent out by the ``transfer`` process — kind, entity, receiving authority, reason, the
  source instance and the transfer's own, what was sent (facts, materials, the 移送函's number) and the receipt
  (when, by whom, their reference, by message or on paper, accepted or refused and why), the outcome.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0018_transfers"
down_revision = "0017_enforcement"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "transfer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("entity_id", _ID, nullable=True),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("receiving", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("source_instance_id", _ID, nullable=True),
        sa.Column("instance_id", _ID, nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(120), nullable=False),
        sa.Column("facts", sa.Text(), nullable=True),
        sa.Column("materials", sa.JSON(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("sent_by", sa.String(120), nullable=True),
        sa.Column("letter_number", sa.String(80), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=True),
        sa.Column("received_by", sa.String(120), nullable=True),
        sa.Column("receipt_reference", sa.String(100), nullable=True),
        sa.Column("receipt_via", sa.String(8), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=True),
        sa.Column("refusal_reason", sa.String(500), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.CheckConstraint("kind IN ('other_department', 'police', 'judiciary', 'new_jurisdiction')",
                           name=op.f("ck_transfer_kind")),
        sa.CheckConstraint("status IN ('preparing', 'sent', 'received', 'refused', 'closed')",
                           name=op.f("ck_transfer_status")),
        sa.CheckConstraint("receipt_via IS NULL OR receipt_via IN ('message', 'paper')",
                           name=op.f("ck_transfer_receipt_via")),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('accepted', 'handled_ourselves', 'transferred_elsewhere', "
                           "'closed')", name=op.f("ck_transfer_outcome")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_transfer_instance_id")),
    )
    op.create_index("ix_transfer_uscc", "transfer", ["uscc"])
    op.create_index("ix_transfer_source_instance_id", "transfer", ["source_instance_id"])
    op.create_index("ix_transfer_status_opened", "transfer", ["status", "opened_at"])


def downgrade() -> None:
    op.drop_table("transfer")
