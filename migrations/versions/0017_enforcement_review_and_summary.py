"""Enforcement safeguards: legal review, collective deliberation, evidence holds and the summary procedure

Revision ID: 0017_enforcement
Revises: 0016_lists
Create Date: 2026-12-07 18:00:00

(Reserved in the chain; its tables arrive with the slice that needs them.)
"""
from __future__ import annotations

revision = "0017_enforcement"
down_revision = "0016_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
