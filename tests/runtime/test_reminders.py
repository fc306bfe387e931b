"""Reminders before a task's due date and escalation to the supervisors after it: once each, audited on
the instance's hash chain, also when the worker runs them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.runtime import audit, clock
from engine.runtime.models import AuditEvent, HumanTask
from engine.runtime.reminders import run_reminders
from engine.runtime.worker import run_due
from tests.supervision.test_inbox_service import deploy_task_processes, start_task


@pytest.fixture
def tasks(runtime, db, people):
    now = clock.now()
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("remind_me", {}))
        t = {"soon": start_task(runtime, s, "remind_me", due=now + timedelta(hours=2)).id,
             "claimed_soon": start_task(runtime, s, "remind_me", due=now + timedelta(hours=20)).id,
             "later": start_task(runtime, s, "remind_me", due=now + timedelta(days=5)).id,
             "late": start_task(runtime, s, "remind_me", due=now - timedelta(hours=1)).id,
             "undated": start_task(runtime, s, "remind_me", due=None).id}
    with db.tx() as s:
        runtime.claim(s, t["claimed_soon"], "alice")
    return t


def _events(db, task_id: int, kind: str) -> list[AuditEvent]:
    with db.tx() as s:
        ht = s.get(HumanTask, task_id)
        return list(s.scalars(select(AuditEvent).where(AuditEvent.instance_id == ht.instance_id,
                                                       AuditEvent.kind == kind)))


def test_remind_soon_escalate_late_once(db, tasks):
    now = clock.now()
    with db.tx() as s:
        rep = run_reminders(s, now=now, remind_within=timedelta(hours=24))
    assert sorted(rep.reminded) == sorted([tasks["soon"], tasks["claimed_soon"]])
    assert rep.escalated == [tasks["late"]]
    with db.tx() as s:
        rows = {k: s.get(HumanTask, v) for k, v in tasks.items()}
        assert rows["soon"].reminded_at is not None and rows["soon"].escalated_at is None
        assert rows["late"].escalated_at is not None and rows["late"].reminded_at is None
        assert rows["later"].reminded_at is None and rows["undated"].reminded_at is None

    (esc,) = _events(db, tasks["late"], "task_escalated")
    assert esc.actor == "system" and esc.detail["to_group"] == "supervisors"
    assert esc.detail["task_id"] == tasks["late"] and esc.detail["overdue_hours"] >= 1
    (rem,) = _events(db, tasks["claimed_soon"], "task_reminder")
    assert rem.detail["to"] == {"user": "alice"}
    (rem2,) = _events(db, tasks["soon"], "task_reminder")
    assert rem2.detail["to"] == {"groups": ["officers"]}

    with db.tx() as s:  # idempotent
        again = run_reminders(s, now=now + timedelta(minutes=5))
    assert again.reminded == [] and again.escalated == []
    assert len(_events(db, tasks["late"], "task_escalated")) == 1
    with db.tx() as s:
        assert audit.verify(s).ok


def test_a_reminded_task_is_escalated_when_it_becomes_overdue(db, tasks):
    now = clock.now()
    with db.tx() as s:
        run_reminders(s, now=now)
    with db.tx() as s:
        rep = run_reminders(s, now=now + timedelta(hours=3))
    assert rep.escalated == [tasks["soon"]]
    assert len(_events(db, tasks["soon"], "task_reminder")) == 1
    assert len(_events(db, tasks["soon"], "task_escalated")) == 1


def test_completed_tasks_are_left_alone(runtime, db, tasks):
    with db.tx() as s:
        runtime.complete_task(s, tasks["late"], "bob", {})
    with db.tx() as s:
        rep = run_reminders(s, now=clock.now())
    assert tasks["late"] not in rep.escalated
    assert _events(db, tasks["late"], "task_escalated") == []


def test_the_worker_runs_reminders(runtime, db, tasks):
    report = run_due(runtime, db.factory, now=clock.now())
    assert (report.reminded, report.escalated) == (2, 1)
    assert report.to_dict()["escalated"] == 1
    assert run_due(runtime, db.factory, now=clock.now()).reminded == 0
