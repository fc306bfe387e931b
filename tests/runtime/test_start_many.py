"""A long batch of starts writes its rows as it goes (every ``_FLUSH_EVERY`` instances) and keeps the
objects alive before it out of the collector's full passes while it runs (``gc.freeze``), giving them back
when it ends, whether it ends well or not."""
from __future__ import annotations

import gc
import logging

import pytest
from sqlalchemy import event, func, select, text

from engine.errors import InvalidInput
from engine.runtime import audit
from engine.runtime import runtime as runtime_module
from engine.runtime.models import AuditEvent, HumanTask, HumanTaskCandidate, Job, ProcessInstance
from tests.conftest import deploy_files

DATA = {"amount": 2, "requested_by": "alice"}


def test_batch_written_in_chunks_is_the_same_as_in_one(monkeypatch, db, runtime, people):
    deploy_files(runtime, db, "minimal.bpmn")
    monkeypatch.setattr(runtime_module, "_FLUSH_EVERY", 3)
    monkeypatch.setattr(runtime_module, "_FREEZE_FROM", 4)
    frozen_during = []
    real = runtime_module.Runtime._advance

    def spy(self, *a, **kw):
        frozen_during.append(gc.get_freeze_count())
        return real(self, *a, **kw)
    monkeypatch.setattr(runtime_module.Runtime, "_advance", spy)
    with db.tx() as s:
        out = runtime.start_many(s, "minimal", [{"business_key": f"k{i}", "data": DATA} for i in range(7)],
                                 actor="alice")
    assert gc.get_freeze_count() == 0 and min(frozen_during) > 0
    ids = [o.instance.id for o in out]
    with db.tx() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance).where(ProcessInstance.id.in_(ids))) == 7
        tasks = s.scalars(select(HumanTask).where(HumanTask.instance_id.in_(ids))).all()
        assert sorted(t.instance_id for t in tasks) == sorted(ids) and len({t.id for t in tasks}) == 7
        assert s.scalar(select(func.count()).select_from(HumanTaskCandidate)
                        .where(HumanTaskCandidate.task_id.in_([t.id for t in tasks]))) >= 7
        per_instance = dict(s.execute(select(AuditEvent.instance_id, func.count()).where(
            AuditEvent.instance_id.in_(ids)).group_by(AuditEvent.instance_id)).all())
        assert len(set(per_instance.values())) == 1  # every instance wrote the same events
        assert all(s.get(ProcessInstance, i).state for i in ids)
        for i in ids:
            report = audit.verify(s, chain=audit.instance_chain(i))
            assert report.ok and report.events == per_instance[i], report.problems


def test_freeze_is_undone_when_the_batch_fails(monkeypatch, db, runtime, people):
    deploy_files(runtime, db, "minimal.bpmn")
    monkeypatch.setattr(runtime_module, "_FREEZE_FROM", 1)
    with pytest.raises(InvalidInput), db.tx() as s:
        runtime.start_many(s, "minimal", [{"data": DATA}, {"data": DATA, "business_key": "x"}, {"data": 5}])
    with pytest.raises(RuntimeError), db.tx() as s:
        real = runtime_module.Runtime._advance

        def boom(self, *a, **kw):
            assert gc.get_freeze_count() > 0
            raise RuntimeError("disk full")
        monkeypatch.setattr(runtime_module.Runtime, "_advance", boom)
        runtime.start_many(s, "minimal", [{"data": DATA}] * 2)
    monkeypatch.setattr(runtime_module.Runtime, "_advance", real)
    assert gc.get_freeze_count() == 0


def _savepoints(db):
    seen: list[str] = []

    def on(_conn, _cursor, statement, *_a):
        if statement.startswith("SAVEPOINT"):
            seen.append(statement)
    return seen, on


def test_optimistic_batch_has_one_savepoint_for_all_service_calls(db, runtime, people):
    deploy_files(runtime, db, "record_at_start.bpmn")
    seen, on = _savepoints(db)
    with db.tx() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", on)
        try:
            out = runtime.start_many(s, "record_at_start",
                                     [{"data": {"label": f"l{i}", "mode": "ok"}} for i in range(4)])
        finally:
            event.remove(conn, "before_cursor_execute", on)
    assert len(seen) == 1 and all(o.failure is None for o in out)
    with db.tx() as s:
        assert s.execute(text("select count(*) from test_effect")).scalar() == 4


def test_failing_call_replays_the_batch_carefully(db, runtime, people, caplog):
    """One call fails in an optimistic batch: the batch goes back to its savepoint and runs again with a
    savepoint per call, so the failure stays with its own instance and the others' writes stand."""
    deploy_files(runtime, db, "record_at_start.bpmn")
    modes = ["ok", "fail", "ok"]
    with caplog.at_level(logging.INFO, logger="engine.runtime.runtime"), db.tx() as s:
        out = runtime.start_many(s, "record_at_start", [{"data": {"label": f"l{i}", "mode": m}}
                                                        for i, m in enumerate(modes)])
    assert any("replayed with a savepoint per service call" in r.getMessage() for r in caplog.records)
    assert [o.failure is not None for o in out] == [False, True, False]
    assert "backend down" in out[1].failure["error"]
    with db.tx() as s:
        labels = sorted(s.execute(text("select label from test_effect")).scalars())
        assert labels == ["l0", "l2"]  # the failing call's own write was rolled back, the others' stand
        assert s.scalars(select(Job.kind).where(Job.instance_id == out[1].instance.id)).all() == ["retry"]
        tasks = dict(s.execute(select(HumanTask.instance_id, HumanTask.bpmn_id)).all())
        assert tasks == {out[0].instance.id: "done", out[2].instance.id: "done"}
        for o in out:
            assert audit.verify(s, chain=audit.instance_chain(o.instance.id)).ok
    assert len({o.instance.id for o in out}) == 3
