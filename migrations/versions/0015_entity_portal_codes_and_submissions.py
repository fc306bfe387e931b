"""The entity portal: access codes per served document, and the businesses' submissions with receipts

Revision ID: 0015_portal
Revises: 0014_doc_files
Create Date: 2026-12-07 18:00:00

* ``portal_access_code``: a business's sign-in code (only its keyed hash) for one served document or none, its
  expiry, first use, revocation and the version of the entity sessions opened with it.
* ``portal_submission``: each submission under its unique receipt number — kind, payload, evidence references,
  ``delivered`` to an instance or ``routed`` to an officer or group, then ``handled``.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0015_portal"
down_revision = "0014_doc_files"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KINDS = ("'rectification_report', 'information_publicised', 'hearing_request', 'statement_defence', "
          "'extension_request', 'credit_repair'")


def upgrade() -> None:
    op.create_table(
        "portal_access_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by", sa.String(length=120), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.Column("session_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"],
                                name=op.f("fk_portal_access_code_document_id_document"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_access_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_portal_access_code_code_hash")),
    )
    op.create_index(op.f("ix_portal_access_code_document_id"), "portal_access_code", ["document_id"])
    op.create_index("ix_portal_access_code_uscc", "portal_access_code", ["uscc", "expires_at"])
    op.create_table(
        "portal_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.String(length=24), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("instance_id", _ID, nullable=True),
        sa.Column("kept_reason", sa.String(length=300), nullable=True),
        sa.Column("routed_user", sa.String(length=120), nullable=True),
        sa.Column("routed_group", sa.String(length=120), nullable=True),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=120), nullable=True),
        sa.Column("handled_note", sa.String(length=500), nullable=True),
        sa.CheckConstraint(f"kind IN ({_KINDS})", name=op.f("ck_portal_submission_kind")),
        sa.CheckConstraint("status IN ('delivered', 'routed', 'handled')", name=op.f("ck_portal_submission_status")),
        sa.ForeignKeyConstraint(["code_id"], ["portal_access_code.id"],
                                name=op.f("fk_portal_submission_code_id_portal_access_code")),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_portal_submission_instance_id_process_instance")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_submission")),
        sa.UniqueConstraint("receipt", name=op.f("uq_portal_submission_receipt")),
    )
    op.create_index(op.f("ix_portal_submission_instance_id"), "portal_submission", ["instance_id"])
    op.create_index("ix_portal_submission_status", "portal_submission", ["status", "submitted_at"])
    op.create_index("ix_portal_submission_uscc", "portal_submission", ["uscc", "submitted_at"])


def downgrade() -> None:
    op.drop_table("portal_submission")
    op.drop_table("portal_access_code")
