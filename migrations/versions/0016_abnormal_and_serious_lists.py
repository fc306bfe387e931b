"""The abnormal-operations and serious-violation lists as registries: entries, removals, reasons

Revision ID: 0016_lists
Revises: 0015_portal
Create Date: 2026-12-07 18:00:00

* ``list_entry``: one listing of an entity on the abnormal (经营异常名录) or serious (严重违法失信名单) list, with its
  reason, legal basis, causing instance, removal and (abnormal) the date it escalates; one open entry per
  (list, entity, reason code) by a partial unique index.
* ``list_removal_application``: an entity's application for removal and its review (one pending per entry).
* ``annual_report``: which entity filed its annual report for which year (the 1 July default job).
* ``periodic_job``: the period each periodic job last ran for (several workers run each period once).

Entities flagged ``abnormal_list`` / ``serious_list`` before this revision (imported flags) get one open entry
each (reason ``imported``), so the flags stay a projection of the registry.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0016_lists"
down_revision = "0015_portal"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LISTED = sa.text("status = 'listed'")
_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "list_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_kind", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("legal_basis", sa.String(length=200), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.Column("entered_by", sa.String(length=120), nullable=False),
        sa.Column("instance_id", _ID, nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("removal_kind", sa.String(length=12), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_by", sa.String(length=120), nullable=True),
        sa.Column("removal_reason", sa.String(length=500), nullable=True),
        sa.Column("escalates_on", sa.Date(), nullable=True),
        sa.Column("escalated_to_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("list_kind IN ('abnormal', 'serious')", name=op.f("ck_list_entry_list_kind")),
        sa.CheckConstraint("status IN ('listed', 'removed')", name=op.f("ck_list_entry_status")),
        sa.CheckConstraint("removal_kind IS NULL OR removal_kind IN ('correction', 'application', 'expiry', "
                           "'escalated')", name=op.f("ck_list_entry_removal_kind")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_list_entry_entity_id_entity"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["escalated_to_id"], ["list_entry.id"],
                                name=op.f("fk_list_entry_escalated_to_id_list_entry"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_entry")),
    )
    op.create_index("uq_list_entry_open", "list_entry", ["list_kind", "entity_id", "reason_code"], unique=True,
                    sqlite_where=_LISTED, postgresql_where=_LISTED)
    op.create_index("ix_list_entry_entity", "list_entry", ["entity_id", "list_kind", "status"])
    op.create_index("ix_list_entry_escalates", "list_entry", ["list_kind", "status", "escalates_on"])
    op.create_index(op.f("ix_list_entry_uscc"), "list_entry", ["uscc"])
    op.create_table(
        "list_removal_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.Column("applied_by", sa.String(length=120), nullable=False),
        sa.Column("instance_id", _ID, nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=120), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')",
                           name=op.f("ck_list_removal_application_status")),
        sa.ForeignKeyConstraint(["entry_id"], ["list_entry.id"],
                                name=op.f("fk_list_removal_application_entry_id_list_entry"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_removal_application")),
    )
    op.create_index("uq_list_removal_application_pending", "list_removal_application", ["entry_id"], unique=True,
                    sqlite_where=_PENDING, postgresql_where=_PENDING)
    op.create_index(op.f("ix_list_removal_application_entry_id"), "list_removal_application", ["entry_id"])
    op.create_index(op.f("ix_list_removal_application_uscc"), "list_removal_application", ["uscc"])
    op.create_table(
        "annual_report",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_annual_report_entity_id_entity"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entity_id", "year", name=op.f("pk_annual_report")),
    )
    op.create_table(
        "periodic_job",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("period_key", sa.String(length=40), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_job")),
    )
    # imported flags become open entries, so the flags stay the registry's projection
    for kind, flag in (("abnormal", "abnormal_list"), ("serious", "serious_list")):
        op.execute(
            "INSERT INTO list_entry (list_kind, entity_id, uscc, reason_code, reason, legal_basis, entered_at, "
            "entered_by, status) "
            f"SELECT '{kind}', id, uscc, 'imported', '导入时已列入', '（导入数据）', CURRENT_TIMESTAMP, 'migration', "
            f"'listed' FROM entity WHERE {flag}")


def downgrade() -> None:
    op.drop_table("periodic_job")
    op.drop_table("annual_report")
    op.drop_index(op.f("ix_list_removal_application_uscc"), table_name="list_removal_application")
    op.drop_index(op.f("ix_list_removal_application_entry_id"), table_name="list_removal_application")
    op.drop_index("uq_list_removal_application_pending", table_name="list_removal_application")
    op.drop_table("list_removal_application")
    op.drop_index(op.f("ix_list_entry_uscc"), table_name="list_entry")
    op.drop_index("ix_list_entry_escalates", table_name="list_entry")
    op.drop_index("ix_list_entry_entity", table_name="list_entry")
    op.drop_index("uq_list_entry_open", table_name="list_entry")
    op.drop_table("list_entry")
