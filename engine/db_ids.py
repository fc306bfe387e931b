"""Ids handed out before rows are written (:class:`IdAllocator`; :data:`ids`, the allocator of the tables
whose every insert takes its id from it)."""
from __future__ import annotations

import multiprocessing
import threading
from typing import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["SHARED_IDS", "IdAllocator", "ids"]

#: ``session.info`` key of the counters :meth:`IdAllocator.share` put in shared memory
SHARED_IDS = "regflow.shared_ids"


class IdAllocator:
    """Ids handed out before rows are written, so that a step can insert each table in one statement (and
    rows can refer to each other) without reading ids back.

    PostgreSQL: the table's own sequence. SQLite: max(id) + 1, read once per transaction and counted on in
    ``session.info`` — safe because every regflow transaction on SQLite starts with BEGIN IMMEDIATE, so no
    other writer runs until this one commits, *and* because every insert into such a table takes its id
    from here (an insert that lets the database pick would take an id the count hands out again). The
    count belongs to the root transaction: a session that runs a second transaction reads max(id) again
    (another process may have written in between), and a rolled-back savepoint keeps it (ids handed out
    before it may still be written after). Allocators share the count (it lives in the session)."""

    #: PostgreSQL tables whose ids are taken from the sequence in blocks of ``_BLOCK`` and handed out by
    #: this process: no round trip per step, but ids grow only within a process (not across processes),
    #: so only for tables whose order by id means nothing. Ids of a rolled-back step are simply not used.
    _POOLED: frozenset[str] = frozenset()
    _BLOCK = 100

    def __init__(self, pooled: Iterable[str] | None = None) -> None:
        #: the tables whose PostgreSQL ids come from blocks (``pooled``, else the class's ``_POOLED``)
        self.pooled: frozenset[str] = self._POOLED if pooled is None else frozenset(pooled)
        self._seq_names: dict[tuple[str, str], str] = {}
        self._pools: dict[tuple[str, str], list[int]] = {}
        self._pool_lock = threading.Lock()

    @staticmethod
    def _counted(session: Session, table: str) -> int | None:
        held = session.info.get(f"regflow.next_id.{table}")
        return held[1] if held is not None and held[0] is session.get_transaction() else None

    @staticmethod
    def _count(session: Session, table: str, nxt: int) -> None:
        session.info[f"regflow.next_id.{table}"] = (session.get_transaction(), nxt)

    def _nextvals(self, session: Session, table: str, n: int) -> list[int]:
        return list(session.execute(text("select nextval(:s) from generate_series(1, :n)"),
                                    {"s": self._sequence(session, table), "n": n}).scalars())

    def _sequence(self, session: Session, table: str) -> str:
        key = (str(session.get_bind().url), table)  # one runtime may serve several databases (schemas)
        seq = self._seq_names.get(key)
        if seq is None:
            seq = session.execute(text("select pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar_one()
            self._seq_names[key] = seq
        return seq

    def take(self, session: Session, table: str, n: int) -> list[int]:
        if n <= 0:
            return []
        shared = session.info.get(SHARED_IDS)
        if shared is not None and table in shared:
            value, lock = shared[table]
            with lock:
                nxt = value.value
                value.value = nxt + n
            return list(range(nxt, nxt + n))
        if session.get_bind().dialect.name == "postgresql":
            if table not in self.pooled:
                return self._nextvals(session, table, n)
            key = (str(session.get_bind().url), table)
            with self._pool_lock:
                pool = self._pools.setdefault(key, [])
                if len(pool) < n:
                    pool.extend(self._nextvals(session, table, max(n - len(pool), self._BLOCK)))
                out, pool[:n] = pool[:n], []
            return out
        nxt = self._counted(session, table)
        if nxt is None:
            nxt = (session.execute(text(f"select coalesce(max(id), 0) from {table}")).scalar_one() or 0) + 1
        self._count(session, table, nxt + n)
        return list(range(nxt, nxt + n))

    def share(self, session: Session, tables, lock_factory) -> dict:
        """Hand out the ids of ``tables`` from counters in shared memory until :meth:`unshare`, so that a
        process forked from this one (:mod:`engine.runtime.parallel`) and this one never take the same id;
        ``lock_factory()`` makes the lock a count is taken under (``parallel.SharedLock``). SQLite only
        (PostgreSQL takes ids from sequences, in the database)."""
        if session.get_bind().dialect.name != "sqlite":
            raise ValueError("shared id counters are for SQLite")
        shared = {}
        for table in tables:
            nxt = self._counted(session, table)
            if nxt is None:
                nxt = (session.execute(text(f"select coalesce(max(id), 0) from {table}")).scalar_one() or 0) + 1
            shared[table] = (multiprocessing.RawValue("q", nxt), lock_factory())
        session.info[SHARED_IDS] = shared
        return shared

    def unshare(self, session: Session, shared: dict) -> None:
        """Back to counting in the session, after the highest id either process took."""
        session.info.pop(SHARED_IDS, None)
        for table, (value, _lock) in shared.items():
            self._count(session, table, value.value)


#: for tables whose every insert takes its id from here (none pooled)
ids = IdAllocator()
