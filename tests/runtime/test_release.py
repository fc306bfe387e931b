"""A step lets go of its workflow: reference counting frees the task tree at once (no cycle is left for the
cyclic garbage collector), for starts, batched starts and task completions, call activities included."""
from __future__ import annotations

import gc

from SpiffWorkflow.task import Task
from sqlalchemy import select

from engine.runtime.models import HumanTask
from engine.runtime.serializer import RegflowWorkflow
from tests.conftest import deploy_files

DATA = {"amount": 2, "requested_by": "alice"}  # the quick check, assigned to alice


def _live() -> tuple[int, int]:
    objs = gc.get_objects()
    return (sum(1 for o in objs if isinstance(o, RegflowWorkflow)), sum(1 for o in objs if isinstance(o, Task)))


def test_steps_leave_no_workflow_behind(db, runtime, people):
    deploy_files(runtime, db, "minimal.bpmn", "call.bpmn")
    gc.collect()
    before = _live()
    gc.disable()
    try:
        with db.tx() as s:
            runtime.start(s, "minimal", data=DATA, actor="alice")
            runtime.start_many(s, "minimal", [{"data": DATA}] * 5, actor="alice")
            runtime.start(s, "parent_flow", actor="alice")
        assert _live() == before
        with db.tx() as s:
            task_id = s.scalars(select(HumanTask.id).where(HumanTask.status == "open", HumanTask.bpmn_id == "quick")
                                .order_by(HumanTask.id)).first()
            runtime.complete_task(s, task_id, "alice", {"approved": True})
        assert _live() == before
    finally:
        gc.enable()


def test_released_workflow_is_the_one_saved(db, runtime, people):
    """Releasing comes after the state is written: the instance loads and runs on."""
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "minimal", data=DATA, actor="alice").instance.id
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
        assert [t.task_spec.bpmn_id for t in wf.get_tasks() if t.task_spec.manual]
        task_id = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == iid)).one()
        runtime.complete_task(s, task_id, "alice", {"approved": True})
    with db.tx() as s:
        assert runtime.load_workflow(s, iid).completed
