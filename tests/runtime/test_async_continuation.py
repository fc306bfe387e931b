"""Asynchronous continuations (``async`` = ``before``, engine/runtime/continuations.py): the step that reaches
such a task stops with it READY and one ``continue`` job; the worker runs it in a step of its own, with the usual
failure handling (retry jobs, then an incident); a held task cancelled before its job ran loses its job; and the
property is checked at deploy."""
from __future__ import annotations

from datetime import timedelta

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, text

from engine.errors import DefinitionError
from engine.runtime import audit, clock, history
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import HumanTask, Incident, Job, ProcessInstance
from engine.runtime.worker import run_due, run_jobs
from tests.conftest import DATA, deploy_files
from tests.runtime.test_lifecycle import events, open_tasks, roundtrip
from tests.support.services import ensure_effect_table


def _start_and_fill(runtime, db, mode: str = "ok", key: str = "K1") -> tuple[int, object]:
    deploy_files(runtime, db, "async.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "async_flow", business_key=key, data={"label": "bg", "mode": mode}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        out = runtime.complete_task(s, t.id, "alice", {})
    return iid, out


def _jobs(db, iid) -> list[tuple[str, str, int]]:
    with db.tx() as s:
        return [tuple(r) for r in s.execute(select(Job.kind, Job.bpmn_id, Job.attempts)
                                            .where(Job.instance_id == iid).order_by(Job.id))]


def _effects(db) -> int:
    with db.tx() as s:
        ensure_effect_table(s)
        return s.execute(text("select count(*) from test_effect")).scalar()


def test_the_step_stops_at_an_async_task_and_the_worker_runs_it(runtime, db, people):
    iid, out = _start_and_fill(runtime, db)
    # the completing step ran nothing of the service task: it is READY, held, with one continue job due now
    assert out.failure is None and out.instance.status == "running"
    assert [(q["process_id"], q["bpmn_id"], q["name"]) for q in out.queued] == [
        ("async_flow", "record", "Record in the background")]
    assert _jobs(db, iid) == [("continue", "record", 0)]
    assert open_tasks(db, iid) == []
    wf = roundtrip(runtime, db, iid)
    (held,) = wf.get_tasks(spec_name="record")
    assert held.state == TaskState.READY and str(held.id) == out.queued[0]["task_guid"]
    assert _effects(db) == 0
    kinds = [(e.kind, e.bpmn_id, e.actor) for e in events(db, iid)]
    assert kinds[-1] == ("async_continuation_queued", "record", "alice")
    assert ("element_completed", "record", "alice") not in kinds
    with db.tx() as s:  # the instance's diagram shows it waiting at the held task, reached through f2
        path = history.history(s, iid).path  # (and at the boundary event, whose message it also waits for)
        assert path.current == ["record", "on_stop"] and "f2" in path.flows and "record" not in path.done

    report = run_due(runtime, db.factory, now=clock.now() + timedelta(seconds=1))
    assert (report.jobs_run, report.continuations_run, report.failures) == (1, 1, [])
    assert _jobs(db, iid) == []
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["done"]
    assert _effects(db) == 1
    wf = roundtrip(runtime, db, iid)
    assert wf.get_tasks(spec_name="done")[0].data["recorded"]["label"] == "bg"
    evs = events(db, iid)
    started = next(i for i, e in enumerate(evs) if e.kind == "async_continuation_started")
    after = [(e.kind, e.bpmn_id, e.actor) for e in evs[started:]]
    assert after[0] == ("async_continuation_started", "record", "worker")
    assert ("element_completed", "record", "worker") in after and ("task_created", "done", "worker") in after
    with db.tx() as s:
        assert audit.verify(s).ok


def test_a_failing_async_task_retries_in_the_worker_then_becomes_an_incident(runtime, db, people):
    iid, out = _start_and_fill(runtime, db, mode="fail")
    assert out.failure is None  # nothing ran in the person's step, so nothing failed there
    now = clock.now()
    first = run_due(runtime, db.factory, now=now + timedelta(seconds=1))
    assert first.continuations_run == 1 and "backend down" in first.failures[0]["error"]
    assert _jobs(db, iid) == [("retry", "record", 0)]
    r1 = run_due(runtime, db.factory, now=now + timedelta(seconds=62))
    assert r1.retries_run == 1 and r1.continuations_run == 0  # a retry runs at once: it is in the worker already
    assert _jobs(db, iid) == [("retry", "record", 1)]
    r2 = run_due(runtime, db.factory, now=now + timedelta(seconds=62 + 121))
    assert r2.retries_run == 1 and r2.continuations_run == 0
    assert _jobs(db, iid) == []
    with db.tx() as s:
        (inc,) = s.scalars(select(Incident).where(Incident.instance_id == iid)).all()
        assert inc.status == "open" and inc.bpmn_id == "record" and inc.attempts == 3
    kinds = [e.kind for e in events(db, iid)]
    assert kinds.count("service_failed") == 3 and kinds.count("async_continuation_queued") == 1

    # the incident fixed and retried by a person: queued for the worker again, not run in that person's request
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        inst.state = inst.state.replace('"mode":"fail"', '"mode":"ok"')
    with db.tx() as s:
        retried = runtime.retry_incident(s, inc.id, "sam")
    assert retried.failure is None and [q["bpmn_id"] for q in retried.queued] == ["record"]
    assert _jobs(db, iid) == [("continue", "record", runtime.settings.service_retries)]
    assert _effects(db) == 0
    assert run_jobs(runtime, db.factory).continuations_run == 1
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["done"] and _effects(db) == 1


def test_a_retried_incident_that_fails_again_opens_a_new_incident_at_once(runtime, db, people):
    iid, _out = _start_and_fill(runtime, db, mode="fail")
    now = clock.now()
    for seconds in (1, 62, 62 + 121):
        run_due(runtime, db.factory, now=now + timedelta(seconds=seconds))
    with db.tx() as s:
        inc = s.scalars(select(Incident).where(Incident.instance_id == iid)).one()
    with db.tx() as s:
        runtime.retry_incident(s, inc.id, "sam")
    report = run_jobs(runtime, db.factory)
    assert report.continuations_run == 1 and "incident_id" in report.failures[0]
    assert _jobs(db, iid) == []
    with db.tx() as s:
        assert [i.status for i in s.scalars(select(Incident).where(Incident.instance_id == iid)
                                            .order_by(Incident.id))] == ["resolved", "open"]


def test_a_held_task_cancelled_by_a_boundary_event_leaves_no_job(runtime, db, people):
    iid, _out = _start_and_fill(runtime, db, key="K-STOP")
    assert _jobs(db, iid) == [("continue", "record", 0)]
    with db.tx() as s:
        runtime.correlate_message(s, "stop_async", {}, business_key="K-STOP")
    assert _jobs(db, iid) == []  # the interrupting boundary cancelled the held task, and its job with it
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["stopped"]
    wf = roundtrip(runtime, db, iid)
    assert wf.get_tasks(spec_name="record")[0].state == TaskState.CANCELLED
    assert run_due(runtime, db.factory, now=clock.now() + timedelta(seconds=1)).jobs_run == 0
    assert _effects(db) == 0
    kinds = [(e.kind, e.bpmn_id) for e in events(db, iid)]
    assert ("async_continuation_cancelled", "record") in kinds
    assert ("async_continuation_started", "record") not in kinds


def test_a_continue_job_whose_task_is_gone_is_consumed(runtime, db, people):
    """A stale continue job (its task no longer READY, e.g. a second job for it) is dropped, nothing runs."""
    iid, _out = _start_and_fill(runtime, db)
    with db.tx() as s:
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        s.add(Job(kind="continue", instance_id=iid, task_guid="00000000-0000-0000-0000-000000000000",
                  bpmn_id="record", due_at=job.due_at, attempts=0, created_at=job.created_at))
    report = run_due(runtime, db.factory, now=clock.now() + timedelta(seconds=1))
    assert report.continuations_run == 2 and not report.failures
    assert _jobs(db, iid) == [] and [t.bpmn_id for t in open_tasks(db, iid)] == ["done"]


def test_terminating_the_instance_drops_its_continue_job(runtime, db, people):
    iid, _out = _start_and_fill(runtime, db)
    with db.tx() as s:
        runtime.terminate(s, iid, "sam", "no longer needed")
    assert _jobs(db, iid) == []
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "terminated"
        assert s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).all() == []


@pytest.mark.parametrize("value", ["after", "true", ""])
def test_an_async_value_other_than_before_is_refused_at_deploy(runtime, db, value):
    files = read_paths([DATA / "engine" / "async.bpmn"])
    files["async.bpmn"] = files["async.bpmn"].replace('name="async" value="before"', f'name="async" value="{value}"')
    with pytest.raises(DefinitionError) as refused, db.tx() as s:
        deploy(runtime, s, files, "designer")
    (issue,) = [i for i in refused.value.issues if i["field"] == "property:async"]
    assert issue["element_id"] == "record" and issue["line"]
    assert "'record'" in issue["message"] and "'before'" in issue["message"] and repr(value) in issue["message"]
    assert "element record (property:async)" in str(refused.value)


def test_async_on_a_user_task_is_refused_at_deploy(runtime, db):
    files = read_paths([DATA / "engine" / "async.bpmn"])
    files["async.bpmn"] = files["async.bpmn"].replace(
        '<spiffworkflow:property name="candidateGroups" value="officers"/>\n      </spiffworkflow:properties>'
        '</bpmn:extensionElements>\n      <bpmn:incoming>f3</bpmn:incoming>',
        '<spiffworkflow:property name="candidateGroups" value="officers"/>\n'
        '        <spiffworkflow:property name="async" value="before"/>\n      </spiffworkflow:properties>'
        '</bpmn:extensionElements>\n      <bpmn:incoming>f3</bpmn:incoming>')
    assert files["async.bpmn"].count('name="async"') == 2
    with pytest.raises(DefinitionError) as refused, db.tx() as s:
        deploy(runtime, s, files, "designer")
    (issue,) = refused.value.issues
    assert issue["element_id"] == "done" and "user or manual tasks" in issue["message"]
