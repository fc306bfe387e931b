"""Agencies (a bureau and its stations), their members, and the register of official documents

Revision ID: 0013_documents
Revises: 0012_totp_reads
Create Date: 2026-12-08 09:00:00

* ``agency``: code (the prefix of document numbers), name, parent (a station's bureau), districts covered, active.
* ``agency_member``: the one agency of each user (beside ``app_user``, which belongs to the generic runtime).
* ``document_counter``: the last number handed out per (agency, kind, year).
* ``document``: each issued document under its number, unique per (agency, kind, year, seq); voided documents
  keep their number.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0013_documents"
down_revision = "0012_totp_reads"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KINDS = ("'inspection_record', 'rectification_notice', 'filing_approval', 'penalty_notice', 'hearing_notice', "
          "'penalty_decision', 'service_receipt', 'transfer_letter'")


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("districts", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["agency.id"], name=op.f("fk_agency_parent_id_agency"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency")),
        sa.UniqueConstraint("code", name=op.f("uq_agency_code")),
        sa.UniqueConstraint("name", name=op.f("uq_agency_name")),
    )
    op.create_index(op.f("ix_agency_parent_id"), "agency", ["parent_id"])
    op.create_table(
        "agency_member",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_agency_member_agency_id_agency"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_agency_member_user_id_app_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agency_member")),
    )
    op.create_index(op.f("ix_agency_member_agency_id"), "agency_member", ["agency_id"])
    op.create_table(
        "document_counter",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(f"kind IN ({_KINDS})", name=op.f("ck_document_counter_kind")),
        sa.CheckConstraint("last_seq >= 1", name=op.f("ck_document_counter_last_seq")),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_document_counter_agency_id_agency"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("agency_id", "kind", "year", name=op.f("pk_document_counter")),
    )
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("instance_id", _ID, nullable=True),
        sa.Column("ref", sa.String(length=200), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        sa.Column("voided_at", UTCDateTime(), nullable=True),
        sa.Column("voided_by", sa.String(length=120), nullable=True),
        sa.CheckConstraint(f"kind IN ({_KINDS})", name=op.f("ck_document_kind")),
        sa.CheckConstraint("status IN ('issued', 'void')", name=op.f("ck_document_status")),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_document_seq")),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_document_agency_id_agency"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
        sa.UniqueConstraint("agency_id", "kind", "year", "seq", name=op.f("uq_document_register")),
        sa.UniqueConstraint("number", name=op.f("uq_document_number")),
    )
    op.create_index("ix_document_instance_kind", "document", ["instance_id", "kind"])
    op.create_index(op.f("ix_document_uscc"), "document", ["uscc"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_uscc"), table_name="document")
    op.drop_index("ix_document_instance_kind", table_name="document")
    op.drop_table("document")
    op.drop_table("document_counter")
    op.drop_index(op.f("ix_agency_member_agency_id"), table_name="agency_member")
    op.drop_table("agency_member")
    op.drop_index(op.f("ix_agency_parent_id"), table_name="agency")
    op.drop_table("agency")
