"""A deadline that ran into a year without an official schedule is provisional (weekends only) and is
recomputed — the waiting timer rescheduled through the engine — when that year is loaded."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from engine.runtime import audit, clock
from engine.runtime.models import AuditEvent, Job, ProcessInstance
from engine.runtime.worker import run_due
from engine.supervision import calendar as cal
from engine.supervision.deadlines import reschedule_for_year
from tests.conftest import deploy_files

CN = timezone(timedelta(hours=8))
FIXTURE_2027 = Path(__file__).parent / "data" / "2027.yaml"  # a test fixture, not the official schedule


def test_provisional_timer_is_rescheduled_when_the_year_is_loaded(runtime, db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        cal.refresh(s)
    deploy_files(runtime, db, "workday_timer.bpmn")
    with clock.frozen(datetime(2026, 12, 24, 10, 0, tzinfo=CN)), db.tx() as s:
        iid = runtime.start(s, "workday_timer").instance.id
    with db.tx() as s:
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        # weekends only in 2027: Jan 1 counts as a working day
        assert job.due_at == datetime(2027, 1, 7, 23, 59, 59, tzinfo=CN)
        wf = runtime.load_workflow(s, iid)
        (waiting,) = [t for t in wf.get_tasks() if t.task_spec.bpmn_id == "deadline" and t.state == 8]
        assert waiting.internal_data["deadline"]["provisional"] is True
        assert waiting.internal_data["deadline"]["missing_years"] == [2027]
    with db.tx() as s:
        result = cal.load_year_file(s, FIXTURE_2027)
        assert result.became_exact
        changed = reschedule_for_year(runtime, s, 2027)
    assert changed == [{"instance_id": iid, "bpmn_id": "deadline", "old": "2027-01-07T23:59:59+08:00",
                        "new": "2027-01-08T23:59:59+08:00", "provisional": False}]
    with db.tx() as s:
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        assert job.due_at == datetime(2027, 1, 8, 23, 59, 59, tzinfo=CN)
        ev = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                AuditEvent.kind == "timer_rescheduled")).one()
        assert ev.detail["reason"] == "calendar year 2027 loaded"
        assert audit.verify(s).ok
    # the old time passes without firing; the new one fires
    assert run_due(runtime, db.factory, now=datetime(2027, 1, 8, 0, 30, tzinfo=CN)).jobs_run == 0
    assert run_due(runtime, db.factory, now=datetime(2027, 1, 9, 0, 30, tzinfo=CN)).timers_fired == 1
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
    # loading the same year again changes nothing
    with db.tx() as s:
        assert reschedule_for_year(runtime, s, 2027) == []
