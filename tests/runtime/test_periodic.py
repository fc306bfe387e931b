"""Periodic jobs (engine.runtime.periodic): once per period, never twice with two workers at once (SQLite and
PostgreSQL), a failed run is taken back and runs again, schedules in the given time zone."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from engine.db import session_factory
from engine.runtime import periodic
from engine.runtime.periodic import Periodic, PeriodicJob, daily, run_job, yearly
from engine.supervision.calendar import SHANGHAI

NOW = datetime(2026, 7, 1, 0, 30, tzinfo=SHANGHAI)


def counting_job(name: str, calls: list, *, pause: float = 0.0, fail: list | None = None) -> Periodic:
    def fn(session, now):
        session.execute(text("SELECT 1"))
        if fail:
            fail.pop()
            raise RuntimeError("the job failed")
        time.sleep(pause)  # widen the window in which a second worker could run it too
        calls.append(now)
        return {"n": len(calls)}
    return Periodic(name, fn, daily(SHANGHAI))


def test_schedules_follow_the_time_zone():
    d = daily(SHANGHAI)
    assert d(datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc)) == "2026-06-30"
    assert d(datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)) == "2026-07-01"  # midnight in China
    y = yearly(7, 1, SHANGHAI)
    assert y(datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc)) is None
    assert y(datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)) == "2026"
    assert y(datetime(2026, 12, 31, 23, 0, tzinfo=SHANGHAI)) == "2026"
    assert y(datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI)) is None


def test_a_job_runs_once_per_period(db):
    calls: list = []
    job = counting_job("test.daily", calls)
    for at in (NOW, NOW + timedelta(hours=3), NOW + timedelta(hours=23), NOW + timedelta(days=1),
               NOW + timedelta(days=1, hours=1)):
        with db.tx() as s:
            run_job(s, job, at)
    assert calls == [NOW, NOW + timedelta(days=1)]
    with db.tx() as s:
        row = s.get(PeriodicJob, "test.daily")
        assert (row.period_key, row.runs, row.last_result) == ("2026-07-02", 2, {"n": 2})


def test_a_failed_run_is_taken_back_and_runs_again(db):
    calls: list = []
    job = counting_job("test.flaky", calls, fail=[1])
    with pytest.raises(RuntimeError), db.tx() as s:
        run_job(s, job, NOW)
    with db.tx() as s:
        assert run_job(s, job, NOW + timedelta(minutes=1)) == {"job": "test.flaky", "period": "2026-07-01", "n": 1}
    assert len(calls) == 1


@pytest.mark.parametrize("first_time", [True, False])
def test_two_workers_at_once_run_it_once(db, first_time):
    calls: list = []
    job = counting_job("test.race", calls, pause=0.3)
    if not first_time:  # the row exists from yesterday's run
        with db.tx() as s:
            run_job(s, job, NOW - timedelta(days=1))
        calls.clear()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        factory = session_factory(db.url)
        try:
            barrier.wait()
            with factory() as session, session.begin():
                results.append(run_job(session, job, NOW))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(calls) == 1
    assert sorted(r is None for r in results) == [False, True]


def test_run_periodic_reports_runs_and_failures(db, monkeypatch):
    calls: list = []
    monkeypatch.setattr(periodic, "_jobs", {})  # only this test's jobs
    periodic.register_periodic("test.ok", counting_job("test.ok", calls).fn, schedule=daily(SHANGHAI))
    periodic.register_periodic("test.bad", counting_job("test.bad", [], fail=[1]).fn, schedule=daily(SHANGHAI))
    ran, failed = periodic.run_periodic(db.factory, NOW)
    assert [r["job"] for r in ran] == ["test.ok"] and failed == [{"job": "test.bad", "error": "the job failed"}]
    ran, failed = periodic.run_periodic(db.factory, NOW)
    assert [r["job"] for r in ran] == ["test.bad"] and failed == []  # the failed one ran again; ok is done
    with db.tx() as s:
        assert [j["job"] for j in periodic.status(s)] == ["test.bad", "test.ok"]
