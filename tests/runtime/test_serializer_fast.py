"""regflow's task serialization gives SpiffWorkflow's own dictionary (the suite cross-checks every state it
writes, see tests/conftest.py; this shows the check is on and catches a difference)."""
from __future__ import annotations

import pytest

from engine.runtime import serializer
from tests.conftest import deploy_files


def test_cross_check_is_on_and_catches_a_difference(runtime, db, people, monkeypatch):
    assert serializer.CROSS_CHECK, "the suite runs with REGFLOW_SERIALIZER_CROSS_CHECK=1"
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        inst = runtime.start(s, "minimal", data={"amount": 7}).instance
    with db.tx() as s:
        wf = runtime.load_workflow(s, inst.id)
    runtime.serializer.dumps(wf)  # consistent: no error
    real = serializer.tasks_to_dict

    def off_by_one(converter, tasks):
        out = real(converter, tasks)
        first = next(iter(out.values()))
        first["state"] += 1
        return out
    monkeypatch.setattr(serializer, "tasks_to_dict", off_by_one)
    with pytest.raises(AssertionError, match="differs from SpiffWorkflow"):
        runtime.serializer.dumps(wf)
