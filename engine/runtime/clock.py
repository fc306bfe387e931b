"""The one source of "now" for the engine: timers, due dates, audit timestamps.

SpiffWorkflow's timer definitions read the wall clock themselves; regflow's subclasses
(:mod:`engine.runtime.timers`) read :func:`now` instead, so tests and simulations move time with
:func:`frozen` / :func:`set_now`.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

_local = threading.local()


def now() -> datetime:
    fixed = getattr(_local, "fixed", None)
    if fixed is not None:
        return fixed
    return datetime.now(timezone.utc)


def set_now(value: datetime | None) -> None:
    """Pin the clock of this thread to ``value`` (``None`` returns to the wall clock)."""
    if value is not None and value.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware datetime")
    _local.fixed = value.astimezone(timezone.utc) if value is not None else None


def advance(delta: timedelta) -> datetime:
    set_now(now() + delta)
    return now()


@contextmanager
def frozen(value: datetime | None) -> Iterator[None]:
    previous = getattr(_local, "fixed", None)
    set_now(value)
    try:
        yield
    finally:
        _local.fixed = previous


def parse_iso(value: str) -> datetime:
    """ISO 8601 with a timezone; a naive value is read as UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
