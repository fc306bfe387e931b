"""``regflow worker`` (APScheduler polling) fires a timer on the wall clock; two workers never fire one job twice."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from engine.runtime import clock
from engine.runtime.models import AuditEvent, HumanTask, Job
from tests.conftest import ROOT, deploy_files

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)


def test_polling_worker_fires_due_timer(runtime, sqlite_db):
    db = sqlite_db
    deploy_files(runtime, db, "timers.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "timers", data={"deadline": "PT1S"}).instance.id
    env = {**db.env, "REGFLOW_WORKER_INTERVAL_S": "0.2"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "regflow"), "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with db.tx() as s:
                open_ = s.scalars(select(HumanTask.bpmn_id).where(HumanTask.instance_id == iid,
                                                                  HumanTask.status == "open")).all()
            if open_ == ["escalate"]:
                break
            assert proc.poll() is None, "worker died"
            assert time.monotonic() < deadline, f"timer never fired: {open_}"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)


def test_two_workers_fire_each_job_once(runtime, db, people):
    deploy_files(runtime, db, "timers.bpmn")
    with clock.frozen(T0), db.tx() as s:
        ids = [runtime.start(s, "timers", data={"deadline": "PT1H"}).instance.id for _ in range(12)]
    exe = str(Path(sys.executable).parent / "regflow")
    later = (T0 + timedelta(hours=2)).isoformat()
    procs = [subprocess.Popen([exe, "worker", "--once", "--now", later, "--json"], env=db.env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    fired = [json.loads(o[0])["timers_fired"] for o in outs]
    assert sum(fired) == 12
    with db.tx() as s:
        assert s.scalars(select(Job)).all() == []
        for iid in ids:
            fired_events = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{iid}",
                                                              AuditEvent.kind == "timer_fired")).all()
            assert len(fired_events) == 1
            assert s.scalars(select(HumanTask.bpmn_id).where(HumanTask.instance_id == iid,
                                                             HumanTask.status == "open")).all() == ["escalate"]
