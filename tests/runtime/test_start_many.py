"""A long batch of starts writes its rows as it goes (every ``_FLUSH_EVERY`` instances) and keeps the
objects alive before it out of the collector's full passes while it runs (``gc.freeze``), giving them back
when it ends, whether it ends well or not."""
from __future__ import annotations

import gc

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidInput
from engine.runtime import audit
from engine.runtime import runtime as runtime_module
from engine.runtime.models import AuditEvent, HumanTask, HumanTaskCandidate, ProcessInstance
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
