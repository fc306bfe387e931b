"""Attempt counters shared by every process through the database (table ``sign_in_throttle``).

A :class:`Key` is a rule (its scope, how many attempts are free, the longest wait) and a value (an account, an
address…). After ``free`` counted attempts each further one waits ``BASE_DELAY_S · 2^(n - free)`` seconds after
the previous one, at most the rule's ``cap_s``: the wait is always bounded, so nobody is locked out for good.

:func:`charge` counts an attempt *before* it is checked, in the caller's write transaction (the rows are
locked, ``FOR UPDATE`` on PostgreSQL, the database's one write lock on SQLite), so that parallel requests
cannot all pass the same free slot; :func:`refund` takes a charge back when the attempt succeeded. A row
whose last attempt is :data:`FORGET_AFTER` old counts as nothing and is pruned by the next charge.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import clock
from .models import SignInThrottle

BASE_DELAY_S = 1.0
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Rule:
    scope: str
    free: int
    cap_s: float
    #: a success deletes the row (the attempts of that account from that place are forgiven); otherwise a
    #: success only takes its own charge back
    forgive_on_success: bool = False


@dataclass(frozen=True)
class Key:
    rule: Rule
    value: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.rule.scope}\x00{self.value}".encode()).hexdigest()


def delay_after(rule: Rule, failures: int) -> float:
    """Seconds the next attempt waits after the last of ``failures`` counted attempts."""
    if failures < rule.free:
        return 0.0
    return min(rule.cap_s, BASE_DELAY_S * 2.0 ** min(failures - rule.free, 60))


def _wait(rows: dict[str, SignInThrottle], keys: list[Key], now: datetime) -> float:
    wait = 0.0
    for key in keys:
        row = rows.get(key.digest)
        if row is None or row.last_at < now - FORGET_AFTER:
            continue
        delay = delay_after(key.rule, row.failures)
        if delay > 0:
            wait = max(wait, (row.last_at + timedelta(seconds=delay) - now).total_seconds())
    return wait


def _rows(session: Session, keys: list[Key], *, lock: bool) -> dict[str, SignInThrottle]:
    q = select(SignInThrottle).where(SignInThrottle.key.in_(sorted({k.digest for k in keys})))
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.order_by(SignInThrottle.key).with_for_update()
    return {r.key: r for r in session.scalars(q.execution_options(populate_existing=True))}


def wait_seconds(session: Session, keys: list[Key]) -> int:
    """Whole seconds until an attempt on every key is allowed (0: now). Reads only."""
    return math.ceil(_wait(_rows(session, keys, lock=False), keys, clock.now()))


def charge(session: Session, keys: list[Key]) -> int:
    """Count an attempt on every key if each allows one now and return 0; otherwise count nothing and return the
    whole seconds to wait. Prunes forgotten rows."""
    by_digest = {k.digest: k for k in keys}
    if by_digest:
        values = [{"key": d, "scope": by_digest[d].rule.scope, "failures": 0, "last_at": clock.now()}
                  for d in sorted(by_digest)]
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(SignInThrottle).values(values).on_conflict_do_nothing(index_elements=["key"]))
    rows = _rows(session, keys, lock=True)
    # the time is read once the rows are ours (SQLite's write lock, PostgreSQL's row locks): read before, a
    # request that waited for the lock would see an earlier one's attempt in its future and wait for nothing
    now = clock.now()
    wait = _wait(rows, keys, now)
    if wait > 0:
        return math.ceil(wait)
    for digest, row in rows.items():
        if row.last_at < now - FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_at = now
    session.flush()
    session.execute(delete(SignInThrottle).where(SignInThrottle.last_at < now - FORGET_AFTER)
                    .execution_options(synchronize_session=False))
    return 0


def refund(session: Session, keys: list[Key]) -> None:
    """An attempt charged on ``keys`` succeeded: forgive or take the charge back."""
    forgive = [k.digest for k in keys if k.rule.forgive_on_success]
    back = [k.digest for k in keys if not k.rule.forgive_on_success]
    if forgive:
        session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(forgive))
                        .execution_options(synchronize_session=False))
    if back:
        session.execute(update(SignInThrottle).where(SignInThrottle.key.in_(back), SignInThrottle.failures > 0)
                        .values(failures=SignInThrottle.failures - 1).execution_options(synchronize_session=False))


def prune(session: Session) -> int:
    """Delete the rows whose last attempt is :data:`FORGET_AFTER` old; returns how many."""
    cutoff = clock.now() - FORGET_AFTER
    return session.execute(delete(SignInThrottle).where(SignInThrottle.last_at < cutoff)
                           .execution_options(synchronize_session=False)).rowcount or 0
