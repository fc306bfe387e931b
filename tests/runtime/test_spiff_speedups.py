"""regflow's cheaper versions of two SpiffWorkflow hot spots (engine/runtime/spiff_speedups.py) do what
SpiffWorkflow's own code does: the same tasks in the same order from every tree walk, the same state
changes and the same log records."""
from __future__ import annotations

import logging
import os
import threading
import uuid

import pytest
from SpiffWorkflow import task as spiff_task
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskIterator, TaskState
from sqlalchemy import select

from engine.runtime import spiff_speedups
from engine.runtime.models import ProcessDefinition, ProcessInstance
from engine.runtime.serializer import RegflowWorkflow
from tests.conftest import deploy_files

MASKS = [TaskState.ANY_MASK, TaskState.READY, TaskState.WAITING, TaskState.COMPLETED, TaskState.FUTURE,
         TaskState.NOT_FINISHED_MASK, TaskState.FINISHED_MASK, TaskState.PREDICTED_MASK, TaskState.DEFINITE_MASK,
         TaskState.MAYBE | TaskState.COMPLETED, TaskState.CANCELLED]


def _ids(tasks) -> list:
    return [t.id for t in tasks]


def _workflows(db, runtime) -> list[RegflowWorkflow]:
    """Instances of the engine's test processes at their first wait states: a call activity (subprocess
    tree), timers, a message catch, parallel multi-instance, a user task."""
    deploy_files(runtime, db, "minimal.bpmn", "call.bpmn", "timers.bpmn", "message.bpmn", "multi.bpmn")
    with db.tx() as s:
        for pid in s.scalars(select(ProcessDefinition.process_id).distinct()):
            try:
                runtime.start(s, pid, data={"amount": 2, "requested_by": "alice", "order_id": "o-1",
                                            "items": ["a", "b", "c"]}, actor="alice")
            except Exception:  # noqa: BLE001 - a process this data does not suit; the others are enough
                pass
    with db.tx() as s:
        ids = list(s.scalars(select(ProcessInstance.id)))
        return [runtime.load_workflow(s, i) for i in ids]


def test_suite_cross_checks_every_walk():
    assert spiff_speedups.CROSS_CHECK, "the suite runs with REGFLOW_ENGINE_CROSS_CHECK=1"


def test_walks_match_spiffworkflow_iterators(db, runtime, people):
    workflows = _workflows(db, runtime)
    assert len(workflows) >= 4
    assert any(wf.subprocesses for wf in workflows), "a call activity gives a subprocess tree to walk"
    compared = 0
    for wf in workflows:
        roots = [wf.task_tree] + [t for t in wf.get_tasks() if t._children][:3]
        for root in roots:
            for mask in MASKS:
                for extra in ({}, {"manual": True}, {"manual": False}, {"skip_subprocesses": True},
                              {"spec_name": "Start"}):
                    fast = spiff_speedups.iter_tasks(root, subprocesses=True, state=mask, **extra)
                    assert _ids(fast) == _ids(BpmnTaskIterator(root, state=mask, **extra)), (wf.spec.name, mask, extra)
                    compared += 1
                if mask != TaskState.ANY_MASK:
                    plain = spiff_speedups.iter_tasks(root, subprocesses=False, state=mask)
                    assert _ids(plain) == _ids(TaskIterator(root, state=mask))
    assert compared > 500


def test_subprocess_tasks_come_before_the_calling_tasks_children(db, runtime, people):
    (wf,) = [w for w in _workflows(db, runtime) if w.subprocesses]
    order = list(spiff_speedups.iter_tasks(wf.task_tree, subprocesses=True))
    (caller_id, sub), *_ = wf.subprocesses.items()
    pos = {t.id: i for i, t in enumerate(order)}
    caller = wf.get_task_from_id(caller_id)
    assert pos[caller.id] < pos[sub.task_tree.id]
    assert all(pos[sub.task_tree.id] < pos[c.id] for c in caller.children)
    skipped = _ids(spiff_speedups.iter_tasks(wf.task_tree, subprocesses=True, skip_subprocesses=True))
    assert sub.task_tree.id not in skipped and caller.id in skipped


def test_a_different_walk_is_reported():
    class T:
        def __init__(self, i, name):
            self.id, self.task_spec = i, type("S", (), {"name": name})()
    a, b = T(1, "a"), T(2, "b")
    assert spiff_speedups.checked(iter([a, b]), iter([a, b]), "same") == [a, b]
    with pytest.raises(AssertionError, match="fast tree walk gave 2 tasks"):
        spiff_speedups.checked(iter([a, b]), iter([b, a]), "swapped")


def _run_logged(runtime, s, def_id: int) -> list[tuple]:
    d = runtime.definition(s, def_id)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("spiff.task")
    handler, level = Keep(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        wf = RegflowWorkflow(d.spec, d.subs, script_engine=runtime.script_engine(None), spec_ref=d.id)
        wf.get_tasks(state=TaskState.READY)[0].set_data(amount=2, requested_by="alice")
        wf.do_engine_steps()
        states = [(t.task_spec.name, t.state) for t in wf.get_tasks()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return states, [(r.levelname, r.getMessage(), r.task_spec, r.task_type, r.state, r.workflow_spec)
                    for r in records if hasattr(r, "task_spec")]


def test_state_changes_and_their_log_records_are_spiffworkflows(db, runtime, people):
    assert spiff_speedups.installed()
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        def_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == "minimal"))
        states, logs = _run_logged(runtime, s, def_id)
        with spiff_speedups.disabled():
            assert not spiff_speedups.installed()
            states_orig, logs_orig = _run_logged(runtime, s, def_id)
        assert spiff_speedups.installed()
    assert states == states_orig
    assert logs == logs_orig
    assert any(msg.startswith("State changed to READY") for _l, msg, *_ in logs)
    assert {lvl for lvl, *_ in logs} >= {"INFO"}


def test_nothing_is_built_for_a_silent_logger(monkeypatch, db, runtime, people):
    """With spiff.task quiet (the default), a state change builds no log extras at all."""
    calls = []
    original = Task.collect_log_extras
    monkeypatch.setattr(Task, "collect_log_extras", lambda self, dct=None: calls.append(1) or original(self, dct))
    deploy_files(runtime, db, "minimal.bpmn")
    logger = logging.getLogger("spiff.task")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with db.tx() as s:
            runtime.start(s, "minimal", data={"amount": 2, "requested_by": "alice"}, actor="alice")
    finally:
        logger.setLevel(level)
    assert calls == []


def test_flat_lookups_give_what_the_walks_give(db, runtime, people):
    """``get_tasks(state=...)`` for unfinished definite states reads the flat task mapping when the tree has no
    subprocesses and at most one task matches; whatever path it takes, the answer is the walk's."""
    workflows = _workflows(db, runtime)
    flat_used = 0
    for wf in workflows:
        for mask in (TaskState.READY, TaskState.WAITING, TaskState.FUTURE, TaskState.STARTED,
                     TaskState.READY | TaskState.WAITING, spiff_speedups.FLAT_STATES):
            got = wf.get_tasks(state=mask)
            assert _ids(got) == _ids(BpmnTaskIterator(wf.task_tree, state=mask)), (wf.spec.name, mask)
            flat_used += not wf.subprocesses and len(got) <= 1
    assert flat_used, "some lookups take the flat path"


def test_update_waiting_tasks_updates_each_waiting_task_in_walk_order(monkeypatch, db, runtime, people):
    workflows = _workflows(db, runtime)
    updated: list = []
    counts = []
    for wf in workflows:
        want = list(TaskIterator(wf.task_tree, state=TaskState.WAITING))
        counts.append(len(want))
        for spec in {t.task_spec for t in want}:
            monkeypatch.setattr(spec, "_update", lambda task: updated.append(task.id), raising=False)
        updated.clear()
        wf.update_waiting_tasks()
        assert updated == _ids(want), wf.spec.name
    assert 0 in counts and max(counts) >= 1, counts


def test_data_inheritance_is_spiffworkflows(db, runtime, people):
    """A task without data takes its parent's values as SpiffWorkflow's merge gives them (mutable values
    copied, not shared); a task with data goes through the merge itself. The whole supervision process,
    with and without the replacement, ends with the same data in every task."""
    parent_data = {"n": 1, "s": "检查", "items": [1, [2]], "team": {"leader": "a", "members": ["a", "b"]},
                   "tags": {"x"}, "none": None}
    parent = object.__new__(Task)
    parent.data = parent_data
    for existing in ({}, {"n": 0, "team": {"leader": "z"}, "own": True}):
        fast, slow = object.__new__(Task), object.__new__(Task)
        for t in (fast, slow):
            t.data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in existing.items()}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Task, "parent", property(lambda self: parent))  # a property reading the workflow
            spiff_speedups.inherit_data(fast)
        slow.data = DeepMerge.merge(slow.data, parent_data)
        assert fast.data == slow.data
        for key in ("items", "team", "tags"):
            assert (fast.data[key] is parent_data[key]) == (slow.data[key] is parent_data[key])
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        def_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == "minimal"))
        d = runtime.definition(s, def_id)

    def run():
        wf = RegflowWorkflow(d.spec, d.subs, script_engine=runtime.script_engine(None), spec_ref=d.id)
        wf.get_tasks(state=TaskState.READY)[0].set_data(amount=2, requested_by="alice", notes={"a": [1]})
        wf.do_engine_steps()
        return [(t.task_spec.name, t.state, t.data) for t in wf.get_tasks()]

    ours = run()
    with spiff_speedups.disabled():
        theirs = run()
    assert ours == theirs and any(data for _n, _s, data in ours)


def test_task_ids_are_version_4_uuids_never_repeated_across_threads_or_forks():
    assert spiff_task.uuid4 is spiff_speedups.uuid4  # what Task.__init__ calls
    ids = [spiff_speedups.uuid4() for _ in range(1000)]  # several refills of the buffer
    assert len(set(ids)) == 1000
    for u in ids[:50]:
        assert type(u) is uuid.UUID and u.version == 4 and u.variant == uuid.RFC_4122
        assert u == uuid.UUID(str(u)) and hash(u) == hash(uuid.UUID(str(u)))
    other: list = []
    worker = threading.Thread(target=lambda: other.extend(spiff_speedups.uuid4() for _ in range(300)))
    worker.start()
    worker.join()
    assert not set(other) & set(ids)
    spiff_speedups.uuid4()  # the parent's buffer now holds unused bytes a child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its next id and leaves at once
        os.write(write, str(spiff_speedups.uuid4()).encode())
        os._exit(0)
    os.close(write)
    child = uuid.UUID(os.read(read, 100).decode())
    os.waitpid(pid, 0)
    os.close(read)
    assert child != spiff_speedups.uuid4()
    with spiff_speedups.disabled():
        assert spiff_task.uuid4 is uuid.uuid4
