"""Web workbench: API tokens, evidence files, user jurisdictions, task reminder/escalation marks

Revision ID: 0007_web
Revises: 0006_loop
Create Date: 2026-11-22 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0007_web"
down_revision = "0006_loop"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_api_token_user_id_app_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_token_token_sha256")),
    )
    op.create_index(op.f("ix_api_token_user_id"), "api_token", ["user_id"])
    op.create_table(
        "evidence",
        sa.Column("id", BigId, nullable=False),
        sa.Column("instance_id", BigId, nullable=False),
        sa.Column("task_id", BigId, nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["process_instance.id"],
                                name=op.f("fk_evidence_instance_id_process_instance")),
        sa.ForeignKeyConstraint(["task_id"], ["human_task.id"], name=op.f("fk_evidence_task_id_human_task")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
    )
    op.create_index(op.f("ix_evidence_instance_id"), "evidence", ["instance_id"])
    op.create_index(op.f("ix_evidence_task_id"), "evidence", ["task_id"])
    op.create_index(op.f("ix_evidence_sha256"), "evidence", ["sha256"])
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.JSON(), nullable=True))
    with op.batch_alter_table("human_task") as batch:
        batch.add_column(sa.Column("reminded_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("escalated_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("human_task_candidate") as batch:
        batch.add_column(sa.Column("due_key", UTCDateTime(), nullable=False,
                                   server_default=sa.text("'9999-12-31 00:00:00'")))
        batch.add_column(sa.Column("claimed", sa.Boolean(), nullable=False, server_default=sa.false()))
    # copy the state of tasks that are already open
    op.execute("UPDATE human_task_candidate SET due_key = (SELECT due_at FROM human_task "
               "WHERE human_task.id = human_task_candidate.task_id) WHERE task_id IN "
               "(SELECT id FROM human_task WHERE due_at IS NOT NULL)")
    op.execute("UPDATE human_task_candidate SET claimed = (1 = 1) WHERE task_id IN "
               "(SELECT id FROM human_task WHERE assignee IS NOT NULL)")
    with op.batch_alter_table("human_task_candidate") as batch:
        batch.alter_column("due_key", server_default=None)
        batch.alter_column("claimed", server_default=None)
    op.create_index("ix_human_task_candidate_queue", "human_task_candidate", ["group_name", "claimed", "due_key"])


def downgrade() -> None:
    op.drop_index("ix_human_task_candidate_queue", table_name="human_task_candidate")
    with op.batch_alter_table("human_task_candidate") as batch:
        batch.drop_column("claimed")
        batch.drop_column("due_key")
    with op.batch_alter_table("human_task") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("reminded_at")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("jurisdiction")
    op.drop_index(op.f("ix_evidence_sha256"), table_name="evidence")
    op.drop_index(op.f("ix_evidence_task_id"), table_name="evidence")
    op.drop_index(op.f("ix_evidence_instance_id"), table_name="evidence")
    op.drop_table("evidence")
    op.drop_index(op.f("ix_api_token_user_id"), table_name="api_token")
    op.drop_table("api_token")
