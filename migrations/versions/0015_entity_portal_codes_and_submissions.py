"""The entity portal: access codes per served document, and the businesses' submissions with receipts

Revision ID: 0015_portal
Revises: 0014_doc_files
Create Date: 2026-12-07 18:00:00

(Reserved in the chain; its tables arrive with the slice that needs them.)
"""
from __future__ import annotations

revision = "0015_portal"
down_revision = "0014_doc_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
