"""Simulation jobs (the designer's what-if runs of the loop simulator): submit one, read one, list one's own —
and the runner the worker calls for them (:func:`job_runner`, registered by ``engine.bootstrap``).

A request never runs a simulation: :func:`submit` checks the parameters and queues a
:class:`~engine.runtime.models.BackgroundJob` row, which a worker process claims
(:func:`engine.runtime.worker.run_background`); every web process sees the same rows. The run itself is a child
process (``python -m engine.simulation.jobs``) on its own temporary database, whose progress file the runner
reads every couple of seconds (also the job's heartbeat). Who may read a job: :func:`engine.policy.check_read_job`.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import policy
from engine.config import Settings
from engine.errors import EngineError, InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime import clock, modeling
from engine.runtime.deploy import read_paths
from engine.runtime.models import AppUser, BackgroundJob

#: the kind of a simulation job
SIMULATION = "simulation"
#: seeds accepted from a person (the simulator's random generators take any whole number)
SEEDS = (0, 2**31 - 1)
#: what-if decision tables one job may carry, and the largest one, in bytes
MAX_DECISIONS = 5
MAX_DECISION_BYTES = 256 * 1024
#: the training set of a designer's run (the CLI's default is larger)
TRAINING_ENTITIES = 2000
#: seconds between two reads of a running child's progress (each one also renews the job's heartbeat)
POLL_S = 2.0


class TooManyJobs(EngineError):
    """A person already has as many simulations queued or running as allowed."""
    exit_code = 6
    http_status = 429


def _whole(field: str, raw: Any, lo: int, hi: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput.fmt("“{field}” must be a whole number, got {value}.", field=field, value=repr(raw),
                               details={"field": field}) from None
    if not lo <= value <= hi:
        raise InvalidInput.fmt("“{field}” must be between {lo} and {hi}, got {value}.", field=field, lo=lo, hi=hi,
                               value=value, details={"field": field})
    return value


def check_decisions(decisions: list[tuple[str, bytes]], processes_dir: str) -> list[tuple[str, str]]:
    """Uploaded what-if tables as (file name, text): at most :data:`MAX_DECISIONS`, each a well-formed ``.dmn``
    file of UTF-8 text, at most :data:`MAX_DECISION_BYTES`, defining decisions the process library has (the
    job's run checks the rest)."""
    if len(decisions) > MAX_DECISIONS:
        raise InvalidInput.fmt("“decisions”: at most {n} what-if decision tables per simulation.", n=MAX_DECISIONS,
                               details={"field": "decisions"})
    known = set(modeling.decision_ids(read_paths([Path(processes_dir)])))
    out = []
    for name, data in decisions:
        name = Path(name or "").name
        if not name.endswith(".dmn"):
            raise InvalidInput.fmt("“decisions”: {name} is not a .dmn file.", name=name or "—",
                                   details={"field": "decisions"})
        if len(data) > MAX_DECISION_BYTES:
            raise InvalidInput.fmt("“decisions”: {name} is larger than {kb} KB.", name=name,
                                   kb=MAX_DECISION_BYTES // 1024, details={"field": "decisions"})
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput.fmt("“decisions”: {name} is not UTF-8 text.", name=name,
                                   details={"field": "decisions"}) from None
        issues = modeling.syntax_issues(name, text)
        if issues:
            raise InvalidInput.fmt("“decisions”: {name}: {problem}", name=name, problem=issues[0]["message"],
                                   details={"field": "decisions"})
        ids = set(modeling.decision_ids({name: text}))
        if not ids or not ids <= known:
            raise InvalidInput.fmt("“decisions”: {name} defines the decisions {ids}, not all in the process "
                                   "library ({known}).", name=name, ids=", ".join(sorted(ids)) or "—",
                                   known=", ".join(sorted(known)), details={"field": "decisions"})
        out.append((name, text))
    return out


def submit(session: Session, actor: Actor, settings: Settings, *, entities: Any, seed: Any,
           decisions: list[tuple[str, bytes]] = ()) -> BackgroundJob:
    """Queue a simulation of ``entities`` synthetic entities with ``seed`` and the what-if tables ``decisions``
    (file name, bytes) for ``actor``; refused (:class:`TooManyJobs`) while they have
    ``settings.simulation_jobs_per_user`` queued or running."""
    policy.check_roles(actor, policy.SIMULATORS)
    lo, hi = modeling.SIMULATION_ENTITIES
    entities = _whole("entities", entities, lo, hi)
    seed = _whole("seed", seed, *SEEDS)
    tables = check_decisions(list(decisions), settings.processes_dir)
    if session.get_bind().dialect.name == "postgresql":  # one count at a time per person (SQLite: one writer)
        session.execute(select(AppUser.id).where(AppUser.username == actor.username).with_for_update())
    active = session.scalar(select(func.count()).select_from(BackgroundJob).where(
        BackgroundJob.kind == SIMULATION, BackgroundJob.owner == actor.username,
        BackgroundJob.status.in_(("queued", "running"))))
    if active >= settings.simulation_jobs_per_user:
        raise TooManyJobs.fmt("You already have {n} simulation(s) queued or running (at most {limit}); wait "
                              "until one ends.", n=active, limit=settings.simulation_jobs_per_user)
    job = BackgroundJob(kind=SIMULATION, owner=actor.username, status="queued", created_at=clock.now(),
                        params={"entities": entities, "seed": seed,
                                "decisions": [{"name": n, "text": t} for n, t in tables]})
    session.add(job)
    session.flush()
    return job


def get(session: Session, actor: Actor, job_id: int) -> BackgroundJob:
    job = session.get(BackgroundJob, job_id)
    if job is None or job.kind != SIMULATION:
        raise NotFound.fmt("Simulation {id} does not exist.", id=job_id)
    policy.check_read_job(actor, job.owner, job.id)
    return job


def recent(session: Session, actor: Actor, limit: int = 20) -> list[BackgroundJob]:
    """``actor``'s newest simulations, newest first."""
    policy.check_roles(actor, policy.SIMULATORS)
    return list(session.scalars(select(BackgroundJob).where(BackgroundJob.kind == SIMULATION,
                                                            BackgroundJob.owner == actor.username)
                                .order_by(BackgroundJob.id.desc()).limit(limit)))


# ------------------------------------------------------------------------------------------- the runner
def job_runner(settings: Settings) -> Callable[[dict, Callable[[dict], None]], dict]:
    """The worker's runner of simulation jobs (``engine.runtime.worker.register_background``)."""
    def run(params: dict, progress: Callable[[dict], None]) -> dict:
        return run_simulation(params, progress, timeout_s=settings.simulation_timeout_s)
    return run


def run_simulation(params: dict, progress: Callable[[dict], None], *, timeout_s: float,
                   poll_s: float = POLL_S) -> dict:
    """Run the job's simulation in a child process; ``progress`` hears the child's progress every ``poll_s``
    seconds; returns the summary. Refused what-if tables raise :class:`InvalidInput` (naming the file, never
    the server's temporary path); a run past ``timeout_s`` is stopped."""
    with tempfile.TemporaryDirectory(prefix="regflow-simjob-") as tmp:
        root = Path(tmp)
        files = []
        for n, d in enumerate(params.get("decisions", ())):
            path = root / str(n) / Path(d["name"]).name
            path.parent.mkdir()
            path.write_text(d["text"], encoding="utf-8")
            files.append(str(path))
        spec = root / "params.json"
        spec.write_text(json.dumps({"entities": params["entities"], "seed": params["seed"],
                                    "training_entities": TRAINING_ENTITIES, "decision_files": files}),
                        encoding="utf-8")
        status, out, err = root / "progress.json", root / "stdout", root / "stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "engine.simulation.jobs", str(spec), str(status)],
                                    stdout=stdout, stderr=stderr)
            started = time.monotonic()
            while True:
                try:
                    proc.wait(timeout=poll_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - started > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise EngineError.fmt("The simulation did not finish within {s} s.", s=f"{timeout_s:g}")
                progress(_read_progress(status))
        stdout_text = out.read_text(encoding="utf-8", errors="replace")
        stderr_text = err.read_text(encoding="utf-8", errors="replace")
        if proc.returncode == 2:  # refused input: the child names the file and the problem
            message = next((ln for ln in stderr_text.splitlines() if ln.startswith("error: ")), stderr_text.strip())
            raise InvalidInput(re.sub(re.escape(tmp) + r"/\d+/", "", message.removeprefix("error: ")))
    try:
        return json.loads(stdout_text)
    except json.JSONDecodeError:
        tail = (stderr_text or stdout_text).strip().splitlines()[-5:]
        raise EngineError(f"the simulation failed (exit {proc.returncode}): " + " | ".join(tail)) from None


def _read_progress(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"phase": "starting"}
    return doc if isinstance(doc, dict) else {"phase": "starting"}
