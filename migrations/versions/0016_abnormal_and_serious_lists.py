"""The abnormal-operations and serious-violation lists as registries: entries, removals, reasons

Revision ID: 0016_lists
Revises: 0015_portal
Create Date: 2026-12-07 18:00:00

(Reserved in the chain; its tables arrive with the slice that needs them.)
"""
from __future__ import annotations

revision = "0016_lists"
down_revision = "0015_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
