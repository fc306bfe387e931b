"""A campaign approved over HTTP launches nothing in the request: the step queues the launch (an asynchronous
continuation, ``async`` = ``before`` on ``launch``) and the page says so; the worker then launches the inspections
in two processes when the batch is long enough, and the server, its database and the launched inspections are
fine afterwards (the split itself is tested in tests/supervision/test_split_launch.py)."""
from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from engine.demo import start_demo_campaigns
from engine.runtime import audit
from engine.runtime.models import HumanTask, Job, ProcessInstance
from engine.runtime.worker import run_due
from tests.web.conftest import WebEnv


@pytest.fixture
def web_env(web_env) -> WebEnv:
    """The usual web environment, splitting every batch of two starts or more."""
    return WebEnv(web_env.url, replace(web_env.settings, parallel_start_from=2), web_env.tmp)


def test_approval_over_http_queues_the_launch_which_the_worker_splits(http, web_env, caplog):

    waiting = start_demo_campaigns(web_env.runtime, web_env.factory, web_env.settings)["awaiting_approval"]
    with web_env.tx() as s:
        task_id = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == waiting,
                                                       HumanTask.status == "open")).one()
        rev = s.get(ProcessInstance, waiting).rev
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    caplog.clear()
    approver = http(username="approver")
    approver.get(f"/inbox/tasks/{task_id}")
    r = approver.post(f"/inbox/tasks/{task_id}?rev={rev}", {
        "decision": "approve", "public_random_value": "05 09 13 21 28 33 + 11",
        "public_random_source": "福利彩票双色球 (test)", "notice_date": "2026-12-07"})
    assert r.status_code in (302, 303), r.text[:2000]
    # the request launched nothing and forked nothing: it left one continue job, and the page says it is queued
    assert not [m for m in caplog.messages if "second process" in m]
    with web_env.tx() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)
                        .where(ProcessInstance.parent_instance_id == waiting)) == 0
        assert s.execute(select(Job.kind, Job.bpmn_id).where(Job.instance_id == waiting)).all() == [
            ("continue", "launch")]
    inbox = approver.get("/inbox/")
    assert "Queued to run in the background" in inbox.text or "已转入后台队列" in inbox.text, inbox.text[:3000]
    report = run_due(web_env.runtime, web_env.factory, background=False)  # a worker
    assert report.continuations_run == 1 and not report.failures, report.to_dict()
    splits = [m for m in caplog.messages if "second process" in m]
    assert len(splits) == 1 and "computed by a second process" in splits[0], splits
    with web_env.tx() as s:
        children = s.scalars(select(ProcessInstance.id).where(ProcessInstance.parent_instance_id == waiting)).all()
        waits = dict(s.execute(select(HumanTask.bpmn_id, func.count()).where(
            HumanTask.instance_id.in_(children), HumanTask.status == "open").group_by(HumanTask.bpmn_id)).all())
    assert len(children) >= 2 and splits[0].startswith(f"batch of {len(children)} starts")
    assert sum(waits.values()) == len(children) and set(waits) <= {"inspect", "resolve_staffing"}
    # the server and its database carry on after the worker's launch: the leader of the last launched team (the
    # forked process computed that instance) opens the inspection, whose form is built from the state the fork
    # sent back, and hands it back to the team (a write through the same server); its audit chain verifies
    with web_env.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == max(children), HumanTask.status == "open")
                       ).one()
    assert ht.bpmn_id == "inspect" and ht.assignee
    leader = http(username=ht.assignee)
    page = leader.get(f"/inbox/tasks/{ht.id}")
    assert page.status_code == 200 and 'class="rf-checklist-table"' in page.text
    r = leader.post(f"/inbox/tasks/{ht.id}/unclaim", {})
    assert r.status_code in (302, 303), r.text[:1000]
    with web_env.tx() as s:
        assert s.get(HumanTask, ht.id).assignee is None
        report = audit.verify(s, chain=audit.instance_chain(ht.instance_id))
        assert report.ok and report.events > 0, report.problems
