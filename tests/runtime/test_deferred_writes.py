"""``engine.db.deferred_writes``: rows that deferrable writers hold back reach the database before any other
statement of the connection (so the transaction reads its own writes), keep their order within a table, go
back with a savepoint's rollback and are dropped with a failing block; ``RowUpdater`` stores what a Core
``update`` stores; and a campaign-size batch of starts whose held-back write fails runs again the careful way,
the failure staying with its own instance."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select, text, update

from engine.db import DeferredWriteError, RowInserter, RowUpdater, deferred_writes, deferring, held_back
from engine.runtime import audit, script_engine
from engine.runtime.models import Deployment, HumanTask, Job, ProcessInstance
from scoring.models import Entity
from scoring.service import RECORD_SCORE
from tests.conftest import deploy_files
from tests.runtime.test_row_inserter import instance_row, stored_rows
from tests.support.services import EFFECT

AT = datetime(2026, 3, 5, 2, 0, 1, 123456, tzinfo=timezone.utc)
CN = datetime(2026, 3, 5, 10, 0, 1, 5, tzinfo=timezone(timedelta(hours=8)))

HELD = RowInserter(EFFECT, ["idem", "label", "at"], deferrable=True)
HELD_RELABEL = RowUpdater(EFFECT, "idem", ["label"], deferrable=True)
AT_ONCE = RowInserter(EFFECT, ["idem", "label", "at"])


def _row(idem: str, label: str = "x") -> dict:
    return {"idem": idem, "label": label, "at": "2026-03-05"}


def _labels(s) -> dict:
    return dict(s.execute(text("select idem, label from test_effect")).all())


def test_held_rows_reach_the_database_before_the_next_statement(db):
    with db.tx() as s:
        with deferred_writes(s):
            assert deferring(s)
            HELD.insert(s, [_row("a"), _row("b")])
            AT_ONCE.insert(s, [_row("c")])  # not deferrable: the held rows go first, then this one
            assert held_back(s) == 0
            HELD.insert(s, [_row("d")])
            assert held_back(s) == 1
            assert _labels(s) == {"a": "x", "b": "x", "c": "x", "d": "x"}  # a read sees what was held
            assert held_back(s) == 0
            HELD.insert(s, [_row("e")])
        assert not deferring(s) and held_back(s) == 0  # the end of the block wrote "e"
    with db.tx() as s:
        assert sorted(_labels(s)) == ["a", "b", "c", "d", "e"]


def test_rows_of_one_table_keep_their_order(db):
    """An update held after an insert of the same table runs after it, even when another table's rows were
    held in between (rows of different tables may be grouped out of order, never rows of one table)."""
    dep = RowInserter(Deployment.__table__, ["id", "sha256", "files", "deployed_by", "deployed_at"], deferrable=True)
    with db.tx() as s:
        with deferred_writes(s):
            HELD.insert(s, [_row("a", "first")])
            dep.insert(s, [{"id": 7, "sha256": "x", "files": {}, "deployed_by": "t", "deployed_at": AT}])
            HELD_RELABEL.update(s, [{"idem": "a", "label": "second"}])
            HELD.insert(s, [_row("b", "first")])
            HELD_RELABEL.update(s, [{"idem": "b", "label": "second"}])
            HELD.insert(s, [_row("c", "only")])
        assert _labels(s) == {"a": "second", "b": "second", "c": "only"}
        assert s.scalar(select(func.count()).select_from(Deployment)) == 1


def test_a_savepoints_rollback_takes_held_rows_back(db):
    with db.tx() as s, deferred_writes(s):
        HELD.insert(s, [_row("kept")])
        with pytest.raises(RuntimeError), s.begin_nested():
            HELD.insert(s, [_row("undone")])
            raise RuntimeError("roll the savepoint back")
        HELD.insert(s, [_row("after")])
    with db.tx() as s:
        assert sorted(_labels(s)) == ["after", "kept"]


def test_leaving_the_block_with_an_error_drops_what_it_holds(db):
    with db.tx() as s:
        savepoint = s.begin_nested()
        with pytest.raises(ZeroDivisionError), deferred_writes(s):
            HELD.insert(s, [_row("dropped")])
            1 / 0
        savepoint.rollback()
        assert not deferring(s)
        AT_ONCE.insert(s, [_row("written")])
    with db.tx() as s:
        assert _labels(s) == {"written": "x"}


def test_a_failing_held_write_is_named_by_the_statement_it_holds_up(db):
    with db.tx() as s:
        AT_ONCE.insert(s, [_row("dup")])
        savepoint = s.begin_nested()
        with pytest.raises(DeferredWriteError, match="deferred write to test_effect failed"), deferred_writes(s):
            HELD.insert(s, [_row("dup")])
            s.execute(text("select 1"))
        savepoint.rollback()
        assert _labels(s) == {"dup": "x"}


def test_blocks_do_not_nest(db):
    with db.tx() as s, deferred_writes(s):
        with deferred_writes(s):
            HELD.insert(s, [_row("a")])
        assert held_back(s) == 1  # the inner block left it to the outer one


def test_row_updater_stores_what_core_stores(db, runtime):
    deploy_files(runtime, db, "minimal.bpmn")
    pi = ProcessInstance.__table__
    cols = ["status", "state", "updated_at", "ended_at", "status_reason", "rev"]
    with db.tx() as s:
        def_id = s.execute(select(text("min(id)")).select_from(text("process_definition"))).scalar_one()
        RowInserter(pi, list(instance_row(1))).insert(s, [dict(instance_row(1), definition_id=def_id),
                                                       dict(instance_row(2), id=2, definition_id=def_id)])
        change = {"status": "error", "state": '{"名": "检查", "n": [1, 2]}', "updated_at": CN, "ended_at": AT,
                  "status_reason": "审核", "rev": 3}
        RowUpdater(pi, "id", cols).update(s, [{"id": 1, **change}])
        s.execute(update(pi).where(pi.c.id == 2).values(**change))
        a, b = stored_rows(s, "process_instance", "id in (1, 2)", cols)
        assert a == b and a[0] == "error"


@pytest.mark.parametrize("modes", [
    # the second instance's held row fails when the third instance's service runs its first statement
    ["held_dup", "held_dup", "held"],
    # the last instance's held row fails when the batch writes its instances
    ["held_dup", "held", "held_dup"],
])
def test_a_failing_held_write_replays_the_batch_carefully(db, runtime, people, caplog, modes):
    deploy_files(runtime, db, "record_at_start.bpmn")
    failing = modes.index("held_dup", 1)
    with caplog.at_level(logging.INFO, logger="engine.runtime.runtime"), db.tx() as s:
        out = runtime.start_many(s, "record_at_start", [{"data": {"label": f"l{i}", "mode": m}}
                                                        for i, m in enumerate(modes)])
    replays = [r.getMessage() for r in caplog.records if "replayed" in r.getMessage()]
    assert len(replays) == 1 and "deferred write to test_effect failed" in replays[0]
    assert [o.failure is not None for o in out] == [i == failing for i in range(3)]
    with db.tx() as s:
        assert sorted(s.execute(text("select label from test_effect")).scalars()) == \
            sorted(f"l{i}" for i in range(3) if i != failing)
        assert s.scalars(select(Job.kind).where(Job.instance_id == out[failing].instance.id)).all() == ["retry"]
        done = dict(s.execute(select(HumanTask.instance_id, HumanTask.bpmn_id)).all())
        assert done == {o.instance.id: "done" for i, o in enumerate(out) if i != failing}
        for o in out:
            assert audit.verify(s, chain=audit.instance_chain(o.instance.id)).ok


def test_a_failing_held_write_met_by_a_reading_call_replays_the_batch(db, runtime, people, caplog):
    """The second instance's held row fails when its own reading service call queries: SpiffWorkflow wraps
    what the call raised as a task error, which must not become that instance's incident (the failure may
    be another instance's) — the batch runs again, and the careful run puts the failure where it happens."""
    deploy_files(runtime, db, "record_then_peek.bpmn")
    with caplog.at_level(logging.INFO, logger="engine.runtime.runtime"), db.tx() as s:
        out = runtime.start_many(s, "record_then_peek", [{"data": {"label": f"l{i}", "mode": "held_dup"}}
                                                         for i in range(2)])
    replays = [r.getMessage() for r in caplog.records if "replayed" in r.getMessage()]
    assert len(replays) == 1 and "deferred write to test_effect failed" in replays[0]
    assert [o.failure is not None for o in out] == [False, True]
    with db.tx() as s:
        assert s.execute(text("select label from test_effect")).scalars().all() == ["l0"]
        (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == out[0].instance.id))
        assert ht.bpmn_id == "done"


def test_a_read_only_operator_that_holds_back_a_write_is_stopped(db, runtime, people):
    """The suite's cross-check sees a write that a ``writes=False`` operator only held back (no statement ran
    for it yet), and tells it from held rows that a read of the operator wrote out."""
    assert script_engine.CROSS_CHECK, "the suite runs with REGFLOW_ENGINE_CROSS_CHECK=1"
    deploy_files(runtime, db, "peek.bpmn", "record_then_peek.bpmn")
    with db.tx() as s:
        sneaky = runtime.start_many(s, "peek_flow", [{"data": {"label": f"s{i}", "mode": "held"}} for i in range(2)])
        honest = runtime.start_many(s, "record_then_peek", [{"data": {"label": f"h{i}", "mode": "held"}}
                                                            for i in range(2)])
    assert all(o.failure and "held back a write" in o.failure["error"] for o in sneaky)
    assert all(o.failure is None for o in honest)  # each "count" read wrote out the row held before it


def test_a_score_stored_held_back_is_what_core_stores(db):
    """The score ``UPDATE`` scoring uses (JSON reasons with Chinese text, a float, an aware timestamp): held back
    in a block and written at once outside one, it stores what a Core ``update`` stores."""
    t = Entity.__table__
    values = {"risk_score": 0.8125, "risk_class": "D", "model_version": None, "scored_at": CN,
              "risk_reasons": [{"factor": "penalties_3y", "zh": "近三年行政处罚 2 次", "en": "2 penalties",
                                "delta": 0.12, "value": None}]}
    with db.tx() as s:
        s.execute(insert(t), [{"id": i, "uscc": f"9141010534167211{i}X", "name": f"商户{i}", "industry_section": "F",
                               "district": "410105", "entity_type": "company"} for i in (1, 2, 3)])
        with deferred_writes(s):
            RECORD_SCORE.update(s, [{"id": 1, **values}])
            assert held_back(s) == 1
        RECORD_SCORE.update(s, [{"id": 2, **values}])
        s.execute(update(t).where(t.c.id == 3).values(**values))
        cols = ["risk_score", "risk_class", "risk_reasons", "model_version", "scored_at"]
        rows = s.connection().exec_driver_sql(f"select {', '.join(cols)} from entity order by id").fetchall()
        assert tuple(rows[0]) == tuple(rows[1]) == tuple(rows[2])
        assert s.get(Entity, 1).risk_reasons == values["risk_reasons"]
