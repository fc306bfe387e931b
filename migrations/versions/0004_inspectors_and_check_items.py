"""Registries: departments, skills, inspectors (leave, conflicts), check items, team draws and assignments

Schema only: rows come from ``regflow import departments|skills|inspectors|leaves|conflicts|items FILE.csv``
and from the ``team.*`` service tasks.

Revision ID: 0004_registries
Revises: 0003_calendar
Create Date: 2026-11-22 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0004_registries"
down_revision = "0003_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "department",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_department")),
    )
    op.create_table(
        "skill",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_skill")),
    )
    op.create_table(
        "inspector",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("cert_no", sa.String(length=40), nullable=True),
        sa.Column("cert_expires", sa.Date(), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("is_expert", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("leader_eligible", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("seniority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("seniority >= 0", name=op.f("ck_inspector_seniority")),
        sa.ForeignKeyConstraint(["department"], ["department.code"],
                                name=op.f("fk_inspector_department_department")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector")),
        sa.UniqueConstraint("code", name=op.f("uq_inspector_code")),
    )
    op.create_index(op.f("ix_inspector_department"), "inspector", ["department"], unique=False)
    op.create_index(op.f("ix_inspector_region"), "inspector", ["region"], unique=False)
    op.create_index(op.f("ix_inspector_username"), "inspector", ["username"], unique=False)

    op.create_table(
        "inspector_leave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default=sa.text("''"), nullable=False),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_inspector_leave_period")),
        sa.ForeignKeyConstraint(["inspector_id"], ["inspector.id"],
                                name=op.f("fk_inspector_leave_inspector_id_inspector"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector_leave")),
        sa.UniqueConstraint("inspector_id", "start_date", "end_date", name="uq_inspector_leave_period"),
    )
    op.create_table(
        "inspector_conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("entity_uscc", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["inspector_id"], ["inspector.id"],
                                name=op.f("fk_inspector_conflict_inspector_id_inspector"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector_conflict")),
        sa.UniqueConstraint("inspector_id", "entity_uscc", name="uq_inspector_conflict_pair"),
    )
    op.create_index(op.f("ix_inspector_conflict_entity_uscc"), "inspector_conflict", ["entity_uscc"], unique=False)

    op.create_table(
        "check_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sub_item", sa.String(length=200), server_default=sa.text("''"), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("industries", sa.JSON(), nullable=False),
        sa.Column("required_skill", sa.String(length=32), nullable=True),
        sa.Column("clauses", sa.JSON(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("method IN ('documentary', 'on_site', 'online')", name=op.f("ck_check_item_method")),
        sa.CheckConstraint("frequency IN ('once', 'annual', 'semiannual', 'quarterly', 'monthly')",
                           name=op.f("ck_check_item_frequency")),
        sa.CheckConstraint("ratio > 0 AND ratio <= 1", name=op.f("ck_check_item_ratio")),
        sa.ForeignKeyConstraint(["department"], ["department.code"],
                                name=op.f("fk_check_item_department_department")),
        sa.ForeignKeyConstraint(["required_skill"], ["skill.code"],
                                name=op.f("fk_check_item_required_skill_skill")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_item")),
        sa.UniqueConstraint("code", name=op.f("uq_check_item_code")),
    )
    op.create_index(op.f("ix_check_item_department"), "check_item", ["department"], unique=False)

    op.create_table(
        "team_draw",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=40), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("pool", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('form', 'replace')", name=op.f("ck_team_draw_kind")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_team_draw_entity_id_entity")),
        sa.ForeignKeyConstraint(["team_id"], ["team_draw.id"], name=op.f("fk_team_draw_team_id_team_draw")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_draw")),
        sa.UniqueConstraint("instance_id", "task_key", name="uq_team_draw_call"),
    )
    op.create_index(op.f("ix_team_draw_entity_id"), "team_draw", ["entity_id"], unique=False)
    op.create_index(op.f("ix_team_draw_team_id"), "team_draw", ["team_id"], unique=False)

    op.create_table(
        "team_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("draw_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("release_reason", sa.String(length=200), nullable=True),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("role IN ('leader', 'member', 'expert')", name=op.f("ck_team_assignment_role")),
        sa.ForeignKeyConstraint(["draw_id"], ["team_draw.id"], name=op.f("fk_team_assignment_draw_id_team_draw")),
        sa.ForeignKeyConstraint(["entity_id"], ["entity.id"], name=op.f("fk_team_assignment_entity_id_entity")),
        sa.ForeignKeyConstraint(["inspector_id"], ["inspector.id"],
                                name=op.f("fk_team_assignment_inspector_id_inspector")),
        sa.ForeignKeyConstraint(["replaced_by_id"], ["team_assignment.id"],
                                name=op.f("fk_team_assignment_replaced_by_id_team_assignment")),
        sa.ForeignKeyConstraint(["team_id"], ["team_draw.id"], name=op.f("fk_team_assignment_team_id_team_draw")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_assignment")),
        sa.UniqueConstraint("draw_id", "inspector_id", name="uq_team_assignment_draw_inspector"),
    )
    op.create_index("ix_team_assignment_open", "team_assignment", ["inspector_id", "released_at"], unique=False)
    op.create_index(op.f("ix_team_assignment_entity_id"), "team_assignment", ["entity_id"], unique=False)
    op.create_index(op.f("ix_team_assignment_instance_id"), "team_assignment", ["instance_id"], unique=False)
    op.create_index(op.f("ix_team_assignment_team_id"), "team_assignment", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_team_assignment_team_id"), table_name="team_assignment")
    op.drop_index(op.f("ix_team_assignment_instance_id"), table_name="team_assignment")
    op.drop_index(op.f("ix_team_assignment_entity_id"), table_name="team_assignment")
    op.drop_index("ix_team_assignment_open", table_name="team_assignment")
    op.drop_table("team_assignment")
    op.drop_index(op.f("ix_team_draw_team_id"), table_name="team_draw")
    op.drop_index(op.f("ix_team_draw_entity_id"), table_name="team_draw")
    op.drop_table("team_draw")
    op.drop_index(op.f("ix_check_item_department"), table_name="check_item")
    op.drop_table("check_item")
    op.drop_index(op.f("ix_inspector_conflict_entity_uscc"), table_name="inspector_conflict")
    op.drop_table("inspector_conflict")
    op.drop_table("inspector_leave")
    op.drop_index(op.f("ix_inspector_username"), table_name="inspector")
    op.drop_index(op.f("ix_inspector_region"), table_name="inspector")
    op.drop_index(op.f("ix_inspector_department"), table_name="inspector")
    op.drop_table("inspector")
    op.drop_table("skill")
    op.drop_table("department")
