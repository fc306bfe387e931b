"""Engine hot path: one audit index fewer, and SQLite's candidate-district trigger skipped for tasks
without a business key

Revision ID: 0009_hot_path
Revises: 0008_inbox
Create Date: 2026-12-06 03:40:00

Every step appends audit rows and candidate rows; this migration trims what those writes cost the database:

* ``ix_audit_event_instance_seq`` (instance_id, seq) is dropped: an instance's events are its chain
  (``chain = 'instance:<id>'``), which the unique (chain, seq) index already serves in the same order.
* SQLite: 0008's ``trg_human_task_candidate_district`` fires only when the candidate's task has a business
  key: a task without one has no entity, so there is no district to write (the trigger's UPDATE of the row
  just inserted cost about 4 µs per candidate row for nothing). PostgreSQL's trigger is a BEFORE trigger that
  sets the value in place and stays as it is.

Tried and left out: PostgreSQL's ``toast_tuple_target = 8160`` on ``process_instance`` (states of a few kilobytes
stored uncompressed) was 2 % faster for one process and 5–18 % slower for four in an A/B of bench/engine.py's
parallel starts: the WAL grows with the uncompressed states.
"""
from __future__ import annotations

from alembic import op

revision = "0009_hot_path"
down_revision = "0008_inbox"
branch_labels = None
depends_on = None

_SQLITE_DISTRICT = """CREATE TRIGGER trg_human_task_candidate_district AFTER INSERT ON human_task_candidate
    {when}BEGIN
        UPDATE human_task_candidate SET district = (
            SELECT e.district FROM human_task t JOIN entity e ON e.uscc = t.business_key WHERE t.id = NEW.task_id)
        WHERE task_id = NEW.task_id AND group_name = NEW.group_name;
    END"""
_WHEN_KEYED = "WHEN (SELECT business_key FROM human_task WHERE id = NEW.task_id) IS NOT NULL\n    "


def upgrade() -> None:
    op.drop_index("ix_audit_event_instance_seq", table_name="audit_event")
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER trg_human_task_candidate_district")
        op.execute(_SQLITE_DISTRICT.format(when=_WHEN_KEYED))


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER trg_human_task_candidate_district")
        op.execute(_SQLITE_DISTRICT.format(when=""))
    op.create_index("ix_audit_event_instance_seq", "audit_event", ["instance_id", "seq"])
