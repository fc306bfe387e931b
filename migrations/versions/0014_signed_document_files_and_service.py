"""Signed PDF files of official documents and their service records (送达)

Revision ID: 0014_doc_files
Revises: 0013_documents
Create Date: 2026-12-07 18:00:00

* ``document_file``: each document's signed PDF (bytes), its SHA-256, the signer certificate's fingerprint and
  subject, the fields it was rendered from (JSON) and its template.
* ``document_service``: the 送达回证 of a document — served at, method, served to, recorded by, note; one per
  document.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0014_doc_files"
down_revision = "0013_documents"
branch_labels = None
depends_on = None

_METHODS = "'in_person', 'left_at_address', 'registered_mail', 'electronic', 'entrusted', 'public_notice'"


def upgrade() -> None:
    op.create_table(
        "document_file",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signer_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("signer_subject", sa.String(length=300), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("template", sa.String(length=60), nullable=False),
        sa.Column("rendered_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_document_file_document_id_document"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_document_file")),
    )
    op.create_table(
        "document_service",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("served_at", UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("served_to", sa.String(length=120), nullable=False),
        sa.Column("recorded_by", sa.String(length=120), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.CheckConstraint(f"method IN ({_METHODS})", name=op.f("ck_document_service_method")),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"],
                                name=op.f("fk_document_service_document_id_document"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_document_service")),
    )


def downgrade() -> None:
    op.drop_table("document_service")
    op.drop_table("document_file")
