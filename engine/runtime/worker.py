"""The job worker: claims due jobs from the database (timers, retries, the continue jobs of tasks held for the
worker: :mod:`engine.runtime.continuations`) and runs each as one step.

Claiming and running happen in one transaction: on PostgreSQL the job row is taken with
``FOR UPDATE SKIP LOCKED`` so that concurrent workers skip it; on SQLite the transaction's
``BEGIN IMMEDIATE`` serializes workers. If a worker dies mid-step its transaction is rolled back, the
job row is still there, and the next poll redoes the step — exactly once in effect, since the service
task's database writes were part of the rolled-back transaction.

Background jobs (:class:`~.models.BackgroundJob`, e.g. the designer's what-if simulations) are long work a person
asked for: :func:`run_background` claims a queued one (the same row lock / conditional update), runs it through
the runner its kind registered (:func:`register_background`; the application wires them, the runtime knows no
kind) outside any transaction, and writes its progress, result or error in short transactions of their own.
A running job whose worker stopped renewing its heartbeat is marked failed (never re-run: the work may be what
killed the worker).
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import EngineError

from . import audit, clock, reads
from .continuations import CONTINUE_JOB
from .models import BackgroundJob, Job, ProcessInstance
from .periodic import run_periodic
from .reminders import run_reminders

log = logging.getLogger(__name__)


@dataclass
class WorkerReport:
    jobs_run: int = 0
    timers_fired: int = 0
    retries_run: int = 0
    #: held tasks run (asynchronous continuations, :mod:`engine.runtime.continuations`)
    continuations_run: int = 0
    failures: list[dict] = field(default_factory=list)
    #: human tasks reminded of their coming due date / escalated as overdue (engine.runtime.reminders)
    reminded: int = 0
    escalated: int = 0
    #: background jobs run to their end (done or failed), see :func:`run_background`
    background_run: int = 0
    #: rows of the read log deleted past ``REGFLOW_LOG_RETENTION_DAYS``
    reads_pruned: int = 0
    #: periodic jobs run for their period (:mod:`engine.runtime.periodic`): what each reported, and failures
    periodic: list[dict] = field(default_factory=list)
    periodic_failures: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"jobs_run": self.jobs_run, "timers_fired": self.timers_fired, "retries_run": self.retries_run,
                "continuations_run": self.continuations_run,
                "failures": self.failures, "reminded": self.reminded, "escalated": self.escalated,
                "background_run": self.background_run, "reads_pruned": self.reads_pruned, "periodic": self.periodic,
                "periodic_failures": self.periodic_failures}


def claim_due_job(session: Session, now: datetime, kinds: tuple[str, ...] | None = None) -> Job | None:
    """The next due job of a running instance (of one of ``kinds``, if given), locked for this transaction."""
    q = (select(Job).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
         .where(Job.due_at <= now, ProcessInstance.status == "running")
         .order_by(Job.due_at, Job.id).limit(1))
    if kinds is not None:
        q = q.where(Job.kind.in_(kinds))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Job, skip_locked=True)
    return session.scalars(q).first()


def run_due(runtime, factory: sessionmaker, now: datetime | None = None, limit: int | None = None, *,
            background: bool = True) -> WorkerReport:
    """Run every job due at ``now`` (the clock's now by default), one transaction per job; then, with
    ``background``, the queued background jobs (:func:`run_background`)."""
    report = WorkerReport()
    with clock.frozen(now) if now is not None else _nullcontext():
        run_jobs(runtime, factory, limit=limit, report=report)
        with factory() as session, session.begin():  # reminders and escalations: one transaction of their own
            rem = run_reminders(session, now=clock.now())
        report.reminded, report.escalated = len(rem.reminded), len(rem.escalated)
        with factory() as session, session.begin():  # the read log past its retention (the chains never)
            report.reads_pruned = reads.prune_reads(session, clock.now(), runtime.settings.log_retention_days)
        ran, failed = run_periodic(factory, clock.now())  # each due periodic job once, one transaction each
        report.periodic, report.periodic_failures = ran, failed
        if background:
            report.background_run = run_background(factory, stale_s=runtime.settings.background_job_stale_s)
        with factory() as session, session.begin():
            audit.write_anchor(session)
    return report


def run_jobs(runtime, factory: sessionmaker, *, kinds: tuple[str, ...] | None = None, limit: int | None = None,
             report: WorkerReport | None = None) -> WorkerReport:
    """Run the jobs due at the clock's now (timers, retries, continuations; only ``kinds`` if given), one
    transaction per job, until none is due (or ``limit`` ran): the worker's job loop (:func:`run_due`), also
    used by whoever drives a clock itself (the simulator runs the continuations a day's work queued)."""
    report = report or WorkerReport()
    while limit is None or report.jobs_run < limit:
        with factory() as session, session.begin():
            job = claim_due_job(session, clock.now(), kinds)
            if job is None:
                break
            kind = job.kind
            outcome = runtime.run_job(session, job, actor="worker")
        report.jobs_run += 1
        if kind == "timer":
            report.timers_fired += 1
        elif kind == CONTINUE_JOB:
            report.continuations_run += 1
        else:
            report.retries_run += 1
        if outcome is not None and outcome.failure:
            report.failures.append({"instance_id": outcome.instance.id, **outcome.failure})
    return report


# ------------------------------------------------------------------------------------------ background jobs
#: ``runner(params, progress) -> result``: runs one job of its kind from its parameters (JSON-like), calling
#: ``progress(doc)`` now and then (at least every few seconds: it is also the heartbeat), and returns the
#: result document; an exception fails the job with its message.
BackgroundRunner = Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], dict[str, Any]]
_runners: dict[str, BackgroundRunner] = {}


def register_background(kind: str, runner: BackgroundRunner) -> None:
    """Run the background jobs of ``kind`` with ``runner`` in this process (``engine.bootstrap`` wires them)."""
    _runners[kind] = runner


def background_kinds() -> tuple[str, ...]:
    return tuple(sorted(_runners))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def fail_stale_background(session: Session, stale_s: float) -> int:
    """Mark failed every running job whose heartbeat is older than ``stale_s`` seconds (its worker died)."""
    now = clock.now()
    return session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.status == "running", BackgroundJob.heartbeat_at < now - timedelta(seconds=stale_s))
        .values(status="failed", finished_at=now,
                error=f"interrupted: the worker running it stopped (no sign of life for {stale_s:g} s)")
        .execution_options(synchronize_session=False)).rowcount


def claim_background(session: Session, kinds: tuple[str, ...], worker: str) -> BackgroundJob | None:
    """Take the oldest queued job of one of ``kinds``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then a
    conditional update from ``queued`` (the lease on SQLite, whose write transactions are serialized)."""
    q = (select(BackgroundJob).where(BackgroundJob.status == "queued", BackgroundJob.kind.in_(kinds))
         .order_by(BackgroundJob.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    job = session.scalars(q).first()
    if job is None:
        return None
    now = clock.now()
    taken = session.execute(
        update(BackgroundJob).where(BackgroundJob.id == job.id, BackgroundJob.status == "queued")
        .values(status="running", worker=worker, started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if not taken:
        return None
    session.refresh(job)
    return job


def _finish(factory: sessionmaker, job_id: int, **values) -> None:
    with factory() as session, session.begin():
        session.execute(update(BackgroundJob)
                        .where(BackgroundJob.id == job_id, BackgroundJob.status == "running")
                        .values(finished_at=clock.now(), **values)
                        .execution_options(synchronize_session=False))


def run_background(factory: sessionmaker, *, stale_s: float, limit: int | None = None) -> int:
    """Fail the stale running jobs, then run queued background jobs one after the other (at most ``limit``),
    each outside a transaction; returns how many ran to their end."""
    with factory() as session, session.begin():
        if fail_stale_background(session, stale_s):
            log.warning("background jobs whose worker stopped were marked failed")
    kinds, worker, ran = background_kinds(), worker_name(), 0
    while kinds and (limit is None or ran < limit):
        with factory() as session, session.begin():
            job = claim_background(session, kinds, worker)
            if job is None:
                break
            job_id, kind, params = job.id, job.kind, dict(job.params or {})

        def progress(doc: dict[str, Any], job_id: int = job_id) -> None:
            with factory() as session, session.begin():
                session.execute(update(BackgroundJob)
                                .where(BackgroundJob.id == job_id, BackgroundJob.status == "running")
                                .values(progress=doc, heartbeat_at=clock.now())
                                .execution_options(synchronize_session=False))

        try:
            result = _runners[kind](params, progress)
        except Exception as exc:  # noqa: BLE001 - the job fails with its message; the worker goes on
            if not isinstance(exc, EngineError):
                log.exception("background job %s (%s) failed", job_id, kind)
            _finish(factory, job_id, status="failed", error=str(exc) or type(exc).__name__)
        else:
            _finish(factory, job_id, status="done", result=result)
        ran += 1
    return ran


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def serve_forever(runtime, factory: sessionmaker, interval_s: float) -> None:
    """Poll with an APScheduler interval job until interrupted."""
    # deferred: only the worker command needs APScheduler (heavy to import for every other command)
    from apscheduler.schedulers.blocking import BlockingScheduler  # noqa: PLC0415  (APScheduler: the worker only)

    scheduler = BlockingScheduler(timezone="UTC")

    def tick():
        try:
            report = run_due(runtime, factory, background=False)
            if report.jobs_run:
                log.info("worker ran %s job(s): %s", report.jobs_run, report.to_dict())
        except Exception:  # noqa: BLE001 - keep polling; the failed step was rolled back
            log.exception("worker tick failed")

    def background_tick():
        try:
            ran = run_background(factory, stale_s=runtime.settings.background_job_stale_s)
            if ran:
                log.info("worker ran %s background job(s)", ran)
        except Exception:  # noqa: BLE001 - keep polling
            log.exception("worker background tick failed")

    # timers and retries in one thread, background jobs (minutes long) in another: neither waits for the other
    scheduler.add_job(tick, "interval", seconds=interval_s, max_instances=1, coalesce=True,
                      next_run_time=clock.now())
    scheduler.add_job(background_tick, "interval", seconds=interval_s, max_instances=1, coalesce=True,
                      next_run_time=clock.now())
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
