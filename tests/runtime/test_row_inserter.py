"""The engine's hot-path writes: ``RowInserter`` stores exactly what a Core ``insert`` stores, on both backends,
and the id allocator never hands out an id twice (a second transaction of one session, a savepoint)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text

from engine import db_rows
from engine.db import IdAllocator, JsonText, RowInserter
from engine.runtime import audit
from engine.runtime.audit import Event
from engine.runtime.models import AuditEvent, HumanTask, HumanTaskCandidate, ProcessInstance
from tests.conftest import deploy_files

AT = datetime(2026, 3, 5, 2, 0, 1, 123456, tzinfo=timezone.utc)
CN = datetime(2026, 3, 5, 10, 0, 1, 5, tzinfo=timezone(timedelta(hours=8)))  # another zone, stored as UTC


def stored_rows(s, table: str, where: str, columns: list[str]) -> list[tuple]:
    """The rows as the driver returns them, with no SQLAlchemy type processing."""
    sql = f"select {', '.join(columns)} from {table} where {where} order by id"
    return [tuple(r) for r in s.connection().exec_driver_sql(sql).fetchall()]


def instance_row(iid: int) -> dict:
    return {"id": iid, "definition_id": None, "process_id": "p", "business_key": "91410105341672112H",
            "status": "running", "state": '{"tasks": {"a": 1}, "名": "检查"}', "serializer_version": "1.5",
            "library_version": "3.2.0", "rev": 1, "parent_instance_id": None, "started_by": "张三",
            "started_at": AT, "updated_at": CN, "ended_at": None, "status_reason": None, "audit_seq": 0,
            "audit_head": "0" * 64, "audit_anchored_seq": 0}


def test_rows_stored_as_core_stores_them(db, runtime, monkeypatch):
    """Each table the hot path writes, through executemany."""
    monkeypatch.setattr(db_rows, "COPY_FROM_ROWS", 10**9)
    _rows_stored_as_core_stores_them(db, runtime)


def test_copy_stores_what_core_stores(pg_db, runtime, monkeypatch):
    """The same through PostgreSQL's COPY (batches of COPY_FROM_ROWS or more rows)."""
    monkeypatch.setattr(db_rows, "COPY_FROM_ROWS", 1)
    _rows_stored_as_core_stores_them(pg_db, runtime)


def _rows_stored_as_core_stores_them(db, runtime):
    deploy_files(runtime, db, "minimal.bpmn")
    pi = ProcessInstance.__table__
    cols = [c.name for c in pi.columns if c.name != "id"]
    with db.tx() as s:
        def_id = s.execute(select(text("min(id)")).select_from(text("process_definition"))).scalar_one()
        raw, core = instance_row(1), instance_row(2)
        raw["definition_id"] = core["definition_id"] = def_id
        RowInserter(pi, list(raw)).insert(s, [raw])
        s.execute(insert(pi), [core])
        a, b = stored_rows(s, "process_instance", "id in (1, 2)", cols)
        assert a == b

        ht = HumanTask.__table__
        task_cols = ["instance_id", "task_guid", "bpmn_id", "name", "process_id", "business_key", "form_id",
                     "form_hash", "candidate_groups", "assignee", "priority", "due_at", "status", "created_at",
                     "claimed_at", "completed_at", "completed_by"]
        rows = [{"id": 10 + k, "instance_id": 1, "task_guid": f"g{k}", "bpmn_id": "inspect", "name": "现场检查",
                 "process_id": "p", "business_key": None, "form_id": "f", "form_hash": None,
                 "candidate_groups": groups, "assignee": None, "priority": 50, "due_at": due, "status": "open",
                 "created_at": CN, "claimed_at": None, "completed_at": None, "completed_by": None}
                for k, (groups, due) in enumerate([(["officers", "检查组"], AT), ([], None)])]
        RowInserter(ht, ["id", *task_cols]).insert(s, rows[:1])
        s.execute(insert(ht), [dict(rows[0], id=20, task_guid="c0")])
        RowInserter(ht, ["id", *task_cols]).insert(s, rows[1:])
        s.execute(insert(ht), [dict(rows[1], id=21, task_guid="c1")])
        got = stored_rows(s, "human_task", "id in (10, 11, 20, 21)", [c for c in task_cols if c != "task_guid"])
        assert got[0] == got[2] and got[1] == got[3]

        htc = HumanTaskCandidate.__table__
        RowInserter(htc, ["task_id", "group_name", "due_key", "claimed"]).insert(
            s, [{"task_id": 10, "group_name": "officers", "due_key": AT, "claimed": True}])
        s.execute(insert(htc), [{"task_id": 20, "group_name": "officers", "due_key": AT, "claimed": True}])
        c1, c2 = [tuple(r) for r in s.connection().exec_driver_sql(
            "select group_name, due_key, claimed from human_task_candidate order by task_id")]
        assert c1 == c2

        events = [Event("element_completed", "张三", 1, "inspect", "g0", flow_ids=["f1"],
                        data_diff={"得分": {"new": 1.5}, "items": {"new": [1, None, True]}},
                        detail={"type": "UserTask"}, at=CN),
                  Event("task_created", "system", 1, "review", None, at=AT)]
        rows, (seq, head) = audit.build_rows("instance:1", events, (0, audit.GENESIS))
        assert all(type(r["detail"]) is JsonText for r in rows)
        audit.insert_rows(s, rows)
        s.execute(insert(AuditEvent.__table__), [dict(r, chain="instance:2") for r in rows])
        ev_cols = ["seq", "at", "actor", "kind", "instance_id", "bpmn_id", "task_guid", "flow_ids", "data_diff",
                   "detail", "prev_hash", "hash"]
        first = stored_rows(s, "audit_event", "chain = 'instance:1'", ev_cols)
        second = stored_rows(s, "audit_event", "chain = 'instance:2'", ev_cols)
        assert first == second and len(first) == 2
        s.execute(text("update process_instance set audit_seq = :q, audit_head = :h where id = 1"),
                  {"q": seq, "h": head})
    with db.tx() as s:
        assert audit.verify(s, chain="instance:1").ok  # the stored text is the text that was hashed


def test_unknown_column_is_named():
    with pytest.raises(KeyError, match="no_such_column"):
        RowInserter(HumanTask.__table__, ["id", "no_such_column"])


def _deployment(s, i: int) -> None:
    s.execute(text("insert into deployment (id, sha256, files, deployed_by, deployed_at) "
                   "values (:i, 'x', '{}', 't', :at)"), {"i": i, "at": AT})


def test_ids_are_counted_per_transaction(db):
    """Ids are never handed out twice: a rolled-back savepoint keeps the count (ids taken before it may still be
    written after), and a session's second transaction counts again from what the database holds (another
    writer may have added rows in between)."""
    ids = IdAllocator()
    with db.factory() as s:
        with s.begin():
            first = ids.take(s, "deployment", 2)
            with pytest.raises(RuntimeError):
                with s.begin_nested():
                    assert ids.take(s, "deployment", 1) == [first[-1] + 1]
                    raise RuntimeError("roll the savepoint back")
            (third,) = ids.take(s, "deployment", 1)
            assert third == first[-1] + 2
            for i in (*first, third):
                _deployment(s, i)
        with db.tx() as other:  # another writer, between this session's two transactions
            (theirs,) = ids.take(other, "deployment", 1)
            assert theirs > third
            _deployment(other, theirs)
        with s.begin():
            (again,) = ids.take(s, "deployment", 1)
            assert again > theirs
            _deployment(s, again)


def test_task_ids_from_blocks_are_never_handed_out_twice(pg_db):
    """PostgreSQL hands human-task ids out of blocks a process takes from the sequence: two processes (two
    allocators) get disjoint ids, each process's ids keep growing, and ids of a rolled-back step are not given
    again. (SQLite counts from max(id) under its write lock: test_ids_are_counted_per_transaction.)"""
    db = pg_db
    first, second = IdAllocator(pooled={"human_task"}), IdAllocator(pooled={"human_task"})
    with pytest.raises(RuntimeError):
        with db.tx() as s:
            lost = first.take(s, "human_task", 3)
            raise RuntimeError("the step fails")
    mine: list[int] = []
    theirs: list[int] = []
    for _ in range(3):
        with db.tx() as s:
            mine += first.take(s, "human_task", 2)
            theirs += second.take(s, "human_task", 1)
    assert mine == sorted(mine) and len(set(mine)) == len(mine) == 6
    assert not set(mine) & set(theirs) and len(set(theirs)) == len(theirs) == 3
    assert not set(lost) & set(mine + theirs) and mine[0] > max(lost)
