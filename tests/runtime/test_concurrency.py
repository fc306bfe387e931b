"""Two processes racing for one task, and a worker killed in the middle of a step."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, text

from engine.bootstrap import build_runtime
from engine.db import session_factory, transaction
from engine.errors import EngineError
from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Job, ProcessInstance
from tests.conftest import ROOT, deploy_files

T0 = datetime(2026, 5, 11, 8, 0, tzinfo=timezone.utc)


def _complete_in_child(url: str, task_id: int, user: str, barrier, results) -> None:
    os.environ["REGFLOW_DATABASE_URL"] = url
    import tests.support.services  # noqa: F401, PLC0415  (registers the test operators)

    runtime = build_runtime()
    factory = session_factory(url)
    barrier.wait(timeout=30)
    try:
        with transaction(factory) as s:
            runtime.complete_task(s, task_id, user, {"by": user})
        results.put((user, "ok"))
    except EngineError as exc:
        results.put((user, f"{type(exc).__name__}: {exc}"))


def test_two_processes_complete_the_same_task(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "race", "mode": "ok"}).instance.id
        (t,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).all()
        rev0 = s.get(ProcessInstance, iid).rev
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_complete_in_child, args=(db.url, t.id, u, barrier, results)) for u in ("alice", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = dict(results.get(timeout=5) for _ in procs)
    winners = [u for u, r in outcomes.items() if r == "ok"]
    losers = [r for u, r in outcomes.items() if r != "ok"]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].startswith("Conflict") and "already completed" in losers[0]
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        done = s.get(HumanTask, t.id)
        assert done.status == "completed" and done.completed_by == winners[0]
        assert inst.rev == rev0 + 1
        assert s.execute(text("select count(*) from test_effect")).scalar() == 1
        open_ = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).all()
        assert [h.bpmn_id for h in open_] == ["done"]
        assert audit.verify(s).ok
        wf = runtime.load_workflow(s, iid)
        assert wf.get_tasks(spec_name="fill")[0].data["by"] == winners[0]


def test_worker_killed_mid_step_leaves_no_trace_and_redoes_it_once(runtime, db, people, tmp_path):
    deploy_files(runtime, db, "crash.bpmn")
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "crash_flow", data={"label": "once", "mode": "sleep:60"}).instance.id
        rev0 = s.get(ProcessInstance, iid).rev
    marker = tmp_path / "in-step"
    env = {**db.env, "REGFLOW_TEST_MARKER": str(marker)}
    exe = Path(sys.executable).parent / "regflow"
    later = (T0 + timedelta(hours=2)).isoformat()
    proc = subprocess.Popen([str(exe), "worker", "--once", "--now", later], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, f"worker exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "worker never reached the service task"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.rev == rev0  # nothing of the step was written
        assert s.execute(text("select count(*) from test_effect")).scalar() == 0
        (job,) = s.scalars(select(Job).where(Job.instance_id == iid)).all()
        assert job.kind == "timer"
    again = subprocess.run([str(exe), "worker", "--once", "--now", later, "--json"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.rev == rev0 + 1
        assert s.execute(text("select count(*) from test_effect")).scalar() == 1
        assert s.scalars(select(Job).where(Job.instance_id == iid)).all() == []
        open_ = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).all()
        assert [h.bpmn_id for h in open_] == ["confirm"]
        assert audit.verify(s).ok
