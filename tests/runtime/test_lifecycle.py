"""End-to-end runs of the test processes through the public runtime API, on every database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from engine.errors import Conflict, NotAllowed, NotFound
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy
from engine.runtime.models import AuditEvent, HumanTask, Incident, Job, MessageSubscription, ProcessInstance
from engine.runtime.worker import run_due
from tests.conftest import deploy_files

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def open_tasks(db, instance_id):
    with db.tx() as s:
        return s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                         .order_by(HumanTask.id)).all()


def events(db, instance_id):
    with db.tx() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{instance_id}")
                         .order_by(AuditEvent.seq)).all()


def roundtrip(runtime, db, instance_id):
    """Load the stored state, re-serialize it and check nothing changed (save -> load -> save)."""
    with db.tx() as s:
        inst = s.get(ProcessInstance, instance_id)
        wf = runtime.load_workflow(s, instance_id)
        again = runtime.serializer.dumps(wf)
        assert again == inst.state
        return wf


def test_minimal_high_path(runtime, db, people):
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "minimal", business_key="91350100M000100Y43", data={"amount": 7}, actor="alice")
        iid = out.instance.id
    tasks = open_tasks(db, iid)
    assert [t.bpmn_id for t in tasks] == ["review"]
    t = tasks[0]
    assert t.candidate_groups == ["supervisors"] and t.priority == 80
    assert t.due_at is not None and abs((t.due_at - t.created_at) - timedelta(days=5)) < timedelta(seconds=5)
    wf = roundtrip(runtime, db, iid)
    assert wf.data == {} and wf.get_tasks(spec_name="review")[0].data["score"] == 14
    # alice is an officer, not a supervisor
    with pytest.raises(NotAllowed), db.tx() as s:
        runtime.complete_task(s, t.id, "alice", {"ok": True})
    with db.tx() as s:
        out = runtime.complete_task(s, t.id, "sam", {"ok": True})
        assert out.instance.status == "completed"
    evs = events(db, iid)
    kinds = [e.kind for e in evs]
    assert kinds[0] == "instance_started" and kinds[-1] == "instance_completed"
    taken = [f for e in evs for f in e.flow_ids]
    assert "f_high" in taken and "f_low" not in taken
    done = next(e for e in evs if e.kind == "task_completed")
    assert done.actor == "sam" and done.bpmn_id == "review" and done.data_diff == {"ok": {"new": True}}
    prepared = next(e for e in evs if e.bpmn_id == "prepare")
    assert prepared.data_diff["score"] == {"new": 14}
    with db.tx() as s:
        assert audit.verify(s).ok


def test_minimal_low_path_assignee_expression(runtime, db, people):
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "minimal", data={"amount": 2, "requested_by": "bob"}).instance.id
    (t,) = open_tasks(db, iid)
    assert t.bpmn_id == "quick" and t.assignee == "bob"
    with pytest.raises(NotAllowed), db.tx() as s:  # alice is in the group but the task is bob's
        runtime.complete_task(s, t.id, "alice", {})
    with db.tx() as s:
        assert runtime.complete_task(s, t.id, "bob", {}).instance.status == "completed"
    with pytest.raises(Conflict, match="already completed"), db.tx() as s:
        runtime.complete_task(s, t.id, "bob", {})


def test_claim_unclaim_and_stale_rev(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "service_flow", data={"label": "x", "mode": "ok"})
        iid, rev = out.instance.id, out.instance.rev
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        runtime.claim(s, t.id, "alice")
    with pytest.raises(Conflict, match="claimed by alice"), db.tx() as s:
        runtime.claim(s, t.id, "bob")
    with pytest.raises(NotAllowed), db.tx() as s:
        runtime.claim(s, t.id, "sam")
    with db.tx() as s:
        runtime.unclaim(s, t.id, "alice")
        runtime.claim(s, t.id, "bob")
    with pytest.raises(Conflict, match="rev"), db.tx() as s:
        runtime.complete_task(s, t.id, "bob", {}, rev=rev + 5)
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.rev == rev and s.get(HumanTask, t.id).status == "open"
    with db.tx() as s:
        runtime.complete_task(s, t.id, "bob", {}, rev=rev)
    kinds = [e.kind for e in events(db, iid)]
    assert kinds.count("task_claimed") == 2 and "task_unclaimed" in kinds


def test_service_task_result_and_effect(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "hazard-1", "mode": "ok"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        runtime.complete_task(s, t.id, "alice", {"checked": True})
    (t2,) = open_tasks(db, iid)
    assert t2.bpmn_id == "done"
    wf = roundtrip(runtime, db, iid)
    assert wf.get_tasks(spec_name="done")[0].data["recorded"]["label"] == "hazard-1"
    with db.tx() as s:
        assert s.execute(text("select count(*) from test_effect")).scalar() == 1


def test_failing_service_keeps_completion_then_retries_into_incident(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "boom", "mode": "fail"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        out = runtime.complete_task(s, t.id, "alice", {"checked": True})
        assert out.failure and "backend down" in out.failure["error"]
    with db.tx() as s:
        # the person's completion stands, the service's own write was rolled back
        assert s.get(HumanTask, t.id).status == "completed"
        assert s.execute(text("select count(*) from test_effect")).scalar() == 0
        job = s.scalars(select(Job).where(Job.instance_id == iid)).one()
        assert job.kind == "retry" and job.bpmn_id == "record"
    now = clock.now()
    # not yet due: nothing runs
    assert run_due(runtime, db.factory, now=now).jobs_run == 0
    # retries with backoff (60 s, 120 s), then an incident
    r1 = run_due(runtime, db.factory, now=now + timedelta(seconds=61))
    assert r1.retries_run == 1
    r2 = run_due(runtime, db.factory, now=now + timedelta(seconds=61 + 121))
    assert r2.retries_run == 1
    with db.tx() as s:
        assert s.scalars(select(Job).where(Job.instance_id == iid)).all() == []
        (inc,) = s.scalars(select(Incident).where(Incident.instance_id == iid)).all()
        assert inc.status == "open" and inc.bpmn_id == "record" and "backend down" in inc.message
        assert "RuntimeError" in inc.stack and inc.attempts == 3
    kinds = [e.kind for e in events(db, iid)]
    assert kinds.count("service_failed") == 3 and "incident_opened" in kinds


def test_flaky_service_succeeds_on_retry(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "f", "mode": "flaky:1"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        assert runtime.complete_task(s, t.id, "alice", {}).failure
    run_due(runtime, db.factory, now=clock.now() + timedelta(minutes=5))
    (t2,) = open_tasks(db, iid)
    assert t2.bpmn_id == "done"
    with db.tx() as s:
        assert s.execute(text("select count(*) from test_effect")).scalar() == 1


def test_incident_retry(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "b", "mode": "fail"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        runtime.complete_task(s, t.id, "alice", {})
    run_due(runtime, db.factory, now=clock.now() + timedelta(days=1))
    run_due(runtime, db.factory, now=clock.now() + timedelta(days=2))
    with db.tx() as s:
        inc = s.scalars(select(Incident).where(Incident.instance_id == iid)).one()
        # the operator fixed the data: make the service succeed now
        runtime.load_workflow(s, iid)
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        state = inst.state.replace('"mode":"fail"', '"mode":"ok"')
        assert state != inst.state
        inst.state = state
    with db.tx() as s:
        out = runtime.retry_incident(s, inc.id, "sam")
        assert out.failure is None
    with db.tx() as s:
        assert s.get(Incident, inc.id).status == "resolved"
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["done"]


def test_error_boundary_from_service(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "u", "mode": "unreachable"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        out = runtime.complete_task(s, t.id, "alice", {})
        assert out.failure is None
    (t2,) = open_tasks(db, iid)
    assert t2.bpmn_id == "handle_unreachable"
    with db.tx() as s:
        assert s.execute(text("select count(*) from test_effect")).scalar() == 0
    taken = [f for e in events(db, iid) for f in e.flow_ids]
    assert "f_err" in taken and "f3" not in taken
    roundtrip(runtime, db, iid)


def test_dmn_business_rule_routes(runtime, db, people):
    deploy_files(runtime, db, "decide.bpmn", "risk_route.dmn")
    results = {}
    for cls in "ABCD":
        with db.tx() as s:
            out = runtime.start(s, "decide", data={"risk_class": cls})
            assert out.instance.status == "completed"
            wf = runtime.load_workflow(s, out.instance.id)
            end = wf.get_tasks(spec_name="end")[0]
            results[cls] = (end.data["path"], end.data["team_size"], end.data["took"])
    assert results == {"A": ("standard", 2, "standard"), "B": ("standard", 2, "standard"),
                       "C": ("heavy", 3, "heavy"), "D": ("heavy", 3, "heavy")}


def test_call_activity(runtime, db, people):
    deploy_files(runtime, db, "call.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "parent_flow", data={"fixed": 4}).instance.id
    (t,) = open_tasks(db, iid)
    assert t.bpmn_id == "c_task"
    roundtrip(runtime, db, iid)
    with db.tx() as s:
        out = runtime.complete_task(s, t.id, "alice", {"note": "done"})
        assert out.instance.status == "completed"
        wf = runtime.load_workflow(s, iid)
        assert wf.get_tasks(spec_name="p_end")[0].data["parent_saw"] == 40
    taken = [f for e in events(db, iid) for f in e.flow_ids]
    assert "c2" in taken and "p2" in taken


def test_parallel_multi_instance(runtime, db, people):
    deploy_files(runtime, db, "multi.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "multi", data={"departments": ["food", "drugs", "quality"]}).instance.id
    tasks = open_tasks(db, iid)
    assert len(tasks) == 3 and {t.bpmn_id for t in tasks} == {"check"}
    roundtrip(runtime, db, iid)
    for i, t in enumerate(tasks):
        with db.tx() as s:
            out = runtime.complete_task(s, t.id, "alice", {"finding": f"ok-{i}"})
    assert out.instance.status == "completed"
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
        assert sorted(wf.get_tasks(spec_name="end")[0].data["findings"]) == ["ok-0", "ok-1", "ok-2"]


def test_boundary_timer_fires_with_injected_clock(runtime, db, people):
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "timers", data={"deadline": "P10D"}).instance.id
    with db.tx() as s:
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        assert job.kind == "timer" and job.bpmn_id == "deadline" and job.due_at == T0 + timedelta(days=10)
    assert run_due(runtime, db.factory, now=T0 + timedelta(days=9)).jobs_run == 0
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["rectify"]
    rep = run_due(runtime, db.factory, now=T0 + timedelta(days=10, seconds=1))
    assert rep.timers_fired == 1
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["escalate"]
    with db.tx() as s:
        cancelled = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                      HumanTask.bpmn_id == "rectify")).one()
        assert cancelled.status == "cancelled"
    roundtrip(runtime, db, iid)


def test_intermediate_timer(runtime, db, people):
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "timers", data={"deadline": "P10D"}).instance.id
    (t,) = open_tasks(db, iid)
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, t.id, "alice", {})
    with db.tx() as s:
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        assert job.bpmn_id == "cooling" and job.due_at == T0 + timedelta(days=2)
    run_due(runtime, db.factory, now=T0 + timedelta(days=2, minutes=1))
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.status == "completed"
        assert s.scalars(select(Job).where(Job.instance_id == iid)).all() == []


def test_message_correlation(runtime, db, people):
    deploy_files(runtime, db, "message.bpmn")
    with db.tx() as s:
        a = runtime.start(s, "await_report", data={"uscc": "AAA"}).instance.id
        b = runtime.start(s, "await_report", data={"uscc": "BBB"}).instance.id
    with db.tx() as s:
        subs = s.scalars(select(MessageSubscription).order_by(MessageSubscription.instance_id)).all()
        assert [(x.message_name, x.correlations) for x in subs] == [
            ("rectification_report", {"uscc": "AAA"}), ("rectification_report", {"uscc": "BBB"})]
    with pytest.raises(NotFound), db.tx() as s:
        runtime.correlate_message(s, "rectification_report", {"fixed": True}, {"uscc": "ZZZ"})
    with pytest.raises(Conflict, match="matches 2"), db.tx() as s:
        runtime.correlate_message(s, "rectification_report", {"fixed": True}, {})
    with db.tx() as s:
        out = runtime.correlate_message(s, "rectification_report", {"fixed": True}, {"uscc": "BBB"})
        assert out.instance.id == b and out.instance.status == "completed"
        assert s.get(ProcessInstance, a).status == "running"
        wf = runtime.load_workflow(s, b)
        assert wf.get_tasks(spec_name="end")[0].data["report"]["fixed"] is True


def test_suspend_resume_terminate(runtime, db, people):
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "timers", data={"deadline": "P1D"}).instance.id
    (t,) = open_tasks(db, iid)
    with db.tx() as s:
        runtime.suspend(s, iid, "sam", "entity under court protection")
    # a suspended instance neither fires timers nor accepts completions
    assert run_due(runtime, db.factory, now=T0 + timedelta(days=3)).jobs_run == 0
    with pytest.raises(Conflict, match="suspended"), db.tx() as s:
        runtime.complete_task(s, t.id, "alice", {})
    with db.tx() as s:
        runtime.resume(s, iid, "sam", "protection lifted")
    assert run_due(runtime, db.factory, now=T0 + timedelta(days=3)).timers_fired == 1
    with db.tx() as s:
        inst = runtime.terminate(s, iid, "sam", "entity deregistered")
        assert inst.status == "terminated"
    assert open_tasks(db, iid) == []
    evs = events(db, iid)
    sus = next(e for e in evs if e.kind == "instance_suspended")
    assert sus.actor == "sam" and sus.detail["reason"] == "entity under court protection"
    assert [e.kind for e in evs][-1] == "instance_terminated"


def test_terminate_hooks_run_in_the_same_transaction_and_are_audited(runtime, db, people):
    """Domain clean-up registered with the runtime runs when an instance is terminated: what a hook returns
    is recorded in a ``termination_cleanup`` event; a hook that fails undoes the whole termination."""
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        a = runtime.start(s, "timers", data={"deadline": "P1D"}).instance.id
        b = runtime.start(s, "timers", data={"deadline": "P1D"}).instance.id
    calls = []

    def hook(session, instance_id, reason, now):
        calls.append((instance_id, reason))
        if instance_id == b:
            raise RuntimeError("clean-up failed")
        return {"released": [instance_id]}

    runtime.terminate_hooks.append(hook)
    try:
        with clock.frozen(T0 + timedelta(hours=1)), db.tx() as s:
            runtime.terminate(s, a, "sam", "opened in error")
        assert calls == [(a, "opened in error")]
        kinds = [e.kind for e in events(db, a)]
        assert kinds[-2:] == ["instance_terminated", "termination_cleanup"]
        assert events(db, a)[-1].detail == {"released": [a]} and events(db, a)[-1].actor == "sam"
        with db.tx() as s:
            assert audit.verify(s, audit.instance_chain(a)).ok
        with pytest.raises(RuntimeError, match="clean-up failed"), db.tx() as s:
            runtime.terminate(s, b, "sam", "opened in error")
        with db.tx() as s:
            assert s.get(ProcessInstance, b).status == "running"  # nothing of the termination stayed
        assert "instance_terminated" not in [e.kind for e in events(db, b)] and len(open_tasks(db, b)) == 1
    finally:
        runtime.terminate_hooks.remove(hook)


def test_definition_versions_by_content_hash(runtime, db):
    first = deploy_files(runtime, db, "minimal.bpmn")
    again = deploy_files(runtime, db, "minimal.bpmn")
    assert first[0].created and not again[0].created and first[0].version == again[0].version == 1
    changed = (Path(__file__).parent.parent / "data" / "engine" / "minimal.bpmn").read_text().replace(
        "score &gt; 10", "score &gt; 12")
    with db.tx() as s:
        (res,) = deploy(runtime, s, {"minimal.bpmn": changed}, "designer")
    assert res.created and res.version == 2

