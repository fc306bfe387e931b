"""The job worker: claims due jobs from the database and runs each as one step.

Claiming and running happen in one transaction: on PostgreSQL the job row is taken with
``FOR UPDATE SKIP LOCKED`` so that concurrent workers skip it; on SQLite the transaction's
``BEGIN IMMEDIATE`` serializes workers. If a worker dies mid-step its transaction is rolled back, the
job row is still there, and the next poll redoes the step — exactly once in effect, since the service
task's database writes were part of the rolled-back transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import audit, clock
from .models import Job, ProcessInstance
from .reminders import run_reminders

log = logging.getLogger(__name__)


@dataclass
class WorkerReport:
    jobs_run: int = 0
    timers_fired: int = 0
    retries_run: int = 0
    failures: list[dict] = field(default_factory=list)
    #: human tasks reminded of their coming due date / escalated as overdue (engine.runtime.reminders)
    reminded: int = 0
    escalated: int = 0

    def to_dict(self) -> dict:
        return {"jobs_run": self.jobs_run, "timers_fired": self.timers_fired, "retries_run": self.retries_run,
                "failures": self.failures, "reminded": self.reminded, "escalated": self.escalated}


def claim_due_job(session: Session, now: datetime) -> Job | None:
    q = (select(Job).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
         .where(Job.due_at <= now, ProcessInstance.status == "running")
         .order_by(Job.due_at, Job.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Job, skip_locked=True)
    return session.scalars(q).first()


def run_due(runtime, factory: sessionmaker, now: datetime | None = None, limit: int | None = None) -> WorkerReport:
    """Run every job due at ``now`` (the clock's now by default), one transaction per job."""
    report = WorkerReport()
    with clock.frozen(now) if now is not None else _nullcontext():
        while limit is None or report.jobs_run < limit:
            with factory() as session, session.begin():
                job = claim_due_job(session, clock.now())
                if job is None:
                    break
                kind = job.kind
                outcome = runtime.run_job(session, job, actor="worker")
            report.jobs_run += 1
            if kind == "timer":
                report.timers_fired += 1
            else:
                report.retries_run += 1
            if outcome is not None and outcome.failure:
                report.failures.append({"instance_id": outcome.instance.id, **outcome.failure})
        with factory() as session, session.begin():  # reminders and escalations: one transaction of their own
            rem = run_reminders(session, now=clock.now())
        report.reminded, report.escalated = len(rem.reminded), len(rem.escalated)
        with factory() as session, session.begin():
            audit.write_anchor(session)
    return report


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
            report = run_due(runtime, factory)
            if report.jobs_run:
                log.info("worker ran %s job(s): %s", report.jobs_run, report.to_dict())
        except Exception:  # noqa: BLE001 - keep polling; the failed step was rolled back
            log.exception("worker tick failed")

    scheduler.add_job(tick, "interval", seconds=interval_s, max_instances=1, coalesce=True,
                      next_run_time=clock.now())
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
