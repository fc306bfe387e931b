"""Stored states must keep loading: a golden state from serializer 1.5 / SpiffWorkflow 3.2.0, and a refusal
(not a silent misread) for a state written by any other serializer version."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.runtime.models import HumanTask, ProcessInstance
from engine.runtime.serializer import StateVersionError
from tests.conftest import DATA, deploy_files

GOLDEN = DATA / "engine" / "golden_minimal_state_1.5.json"


def _plant(runtime, db, state: str, version: str = "1.5") -> int:
    (deployed,) = deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "minimal", data={"amount": 9})
        inst = s.get(ProcessInstance, out.instance.id)
        doc = json.loads(state)
        doc["spec_ref"] = deployed.definition_id
        inst.state = json.dumps(doc)
        inst.serializer_version = version
        return inst.id


def test_golden_state_still_loads_and_runs(runtime, db, people):
    iid = _plant(runtime, db, GOLDEN.read_text())
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
        (ready,) = [t for t in wf.get_tasks() if t.task_spec.bpmn_id == "review" and t.state == 16]
        assert ready.data["score"] == 18 and ready.data["notes"] == [0, 1, 2]
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).one()
        # point the inbox row at the golden state's task
        ht.task_guid = str(ready.id)
    with db.tx() as s:
        assert runtime.complete_task(s, ht.id, "sam", {"ok": True}).instance.status == "completed"


def test_other_serializer_version_is_refused(runtime, db):
    doc = json.loads(GOLDEN.read_text())
    doc["serializer_version"] = "1.4"
    iid = _plant(runtime, db, json.dumps(doc), version="1.4")
    with pytest.raises(StateVersionError, match="'1.4'"), db.tx() as s:
        runtime.load_workflow(s, iid)
