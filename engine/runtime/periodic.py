"""Periodic jobs: work the application runs on a calendar (daily checks, a yearly job), once per period.

The application registers a job with :func:`register_periodic` (``engine.bootstrap`` wires the domain's jobs;
the runtime knows none): a name, ``fn(session, now) -> dict`` and a *schedule* — a function of the moment
giving the key of the period it falls in, or ``None`` while the job is not due in it (``daily(tz)``: the local
date; ``yearly(7, 1, tz)``: the year, from 1 July on). A job is due when the key of now differs from the key
its row last ran for.

One row per job in ``periodic_job`` makes several workers run each due period once: a worker claims the period
with a conditional update (``… SET period_key = :k WHERE name = :n AND period_key IS DISTINCT FROM :k``) and
runs the job in the same transaction. On PostgreSQL a second worker's update waits for the first one's row
lock, then re-reads the row, finds the key taken and updates nothing; on SQLite every write transaction holds
the database's write lock (``BEGIN IMMEDIATE``), so the second worker only starts once the first committed.
A job that raises rolls its transaction back — the claim with it — and runs again at the next tick; the
error is logged and reported, and the worker goes on with the next job. Nothing is caught up: a worker down
for three days runs a daily job once, for today (the jobs look at the state of things, not at one day).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Callable, Optional

from sqlalchemy import JSON, Integer, String, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from engine.db import Base, UTCDateTime
from engine.errors import EngineError

from . import clock

log = logging.getLogger(__name__)

#: ``schedule(now) -> period key | None``: the period ``now`` falls in, or None while the job is not due
Schedule = Callable[[datetime], Optional[str]]
#: ``fn(session, now) -> result``: the job's work in the caller's transaction (it never commits)
PeriodicFn = Callable[[Session, datetime], Optional[dict]]


class PeriodicJob(Base):
    """The last period a periodic job ran for, when, and what it reported."""

    __tablename__ = "periodic_job"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    period_key: Mapped[Optional[str]] = mapped_column(String(40))
    last_run_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_result: Mapped[Optional[dict]] = mapped_column(JSON)
    runs: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Periodic:
    name: str
    fn: PeriodicFn
    schedule: Schedule


_jobs: dict[str, Periodic] = {}
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def register_periodic(name: str, fn: PeriodicFn, *, schedule: Schedule) -> None:
    """Run ``fn`` once per period of ``schedule`` in the worker (``engine.bootstrap`` wires the jobs)."""
    if not name or len(name) > 80:
        raise ValueError(f"a periodic job needs a name of 1-80 characters, not {name!r}")
    _jobs[name] = Periodic(name, fn, schedule)


def periodic_jobs() -> tuple[str, ...]:
    return tuple(sorted(_jobs))


def get_job(name: str) -> Periodic:
    """The registered job ``name`` (KeyError when none is)."""
    return _jobs[name]


def daily(tz: tzinfo) -> Schedule:
    """Once a day, from midnight in ``tz``: the key is the local date."""
    return lambda now: now.astimezone(tz).date().isoformat()


def yearly(month: int, day: int, tz: tzinfo) -> Schedule:
    """Once a year, on or after ``month``/``day`` in ``tz``: the key is the year (``None`` before the day)."""
    def schedule(now: datetime) -> str | None:
        local = now.astimezone(tz)
        return str(local.year) if (local.month, local.day) >= (month, day) else None
    return schedule


def claim(session: Session, name: str, key: str, now: datetime) -> bool:
    """Take ``key`` for job ``name`` unless it already ran for it (creating its row the first time); True when
    this transaction is the one to run it."""
    dialect = session.get_bind().dialect.name
    if dialect in _INSERT:  # the row, once: a concurrent first insert by another worker is no error
        session.execute(_INSERT[dialect](PeriodicJob.__table__).values(name=name, runs=0)
                        .on_conflict_do_nothing(index_elements=["name"]))
    elif session.get(PeriodicJob, name) is None:
        session.add(PeriodicJob(name=name, period_key=None, runs=0))
        session.flush()
    taken = session.execute(
        update(PeriodicJob).where(PeriodicJob.name == name,
                                  or_(PeriodicJob.period_key.is_(None), PeriodicJob.period_key != key))
        .values(period_key=key, last_run_at=now, runs=PeriodicJob.runs + 1)
        .execution_options(synchronize_session=False)).rowcount
    return bool(taken)


def run_job(session: Session, job: Periodic, now: datetime) -> dict | None:
    """Run ``job`` for the period of ``now`` if it has not run for it: its result, or ``None`` (not due)."""
    key = job.schedule(now)
    if key is None:
        return None
    done = session.scalar(select(PeriodicJob.period_key).where(PeriodicJob.name == job.name))
    if done == key or not claim(session, job.name, key, now):  # (the read spares a write on every tick)
        return None
    result = dict(job.fn(session, now) or {})
    session.execute(update(PeriodicJob).where(PeriodicJob.name == job.name).values(last_result=result)
                    .execution_options(synchronize_session=False))
    return {"job": job.name, "period": key, **result}


def run_periodic(factory: sessionmaker, now: datetime | None = None) -> tuple[list[dict], list[dict]]:
    """Every registered job due at ``now`` (the clock's by default), one transaction each: ``(ran, failed)``."""
    now = now or clock.now()
    ran, failed = [], []
    for name in periodic_jobs():
        job = _jobs[name]
        try:
            with factory() as session, session.begin():
                out = run_job(session, job, now)
        except Exception as exc:  # noqa: BLE001 - rolled back with its claim; runs again next tick
            if not isinstance(exc, EngineError):
                log.exception("periodic job %s failed", name)
            failed.append({"job": name, "error": str(exc) or type(exc).__name__})
            continue
        if out is not None:
            ran.append(out)
    return ran, failed


def status(session: Session) -> list[dict[str, Any]]:
    """Each registered job with the period it last ran for, when, and its result."""
    rows = {r.name: r for r in session.scalars(select(PeriodicJob))}
    out = []
    for name in periodic_jobs():
        r = rows.get(name)
        out.append({"job": name, "period": r.period_key if r else None,
                    "last_run_at": r.last_run_at.isoformat() if r and r.last_run_at else None,
                    "runs": r.runs if r else 0, "last_result": r.last_result if r else None})
    return out
