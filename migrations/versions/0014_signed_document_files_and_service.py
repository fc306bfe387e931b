"""Signed PDF files of official documents and their service records (送达)

Revision ID: 0014_doc_files
Revises: 0013_documents
Create Date: 2026-12-07 18:00:00

(Reserved in the chain; its tables arrive with the slice that needs them.)
"""
from __future__ import annotations

revision = "0014_doc_files"
down_revision = "0013_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
