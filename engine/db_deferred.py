"""Writes held back and sent together (:func:`deferred_writes`), and the guard that keeps a process off the
database (:func:`forbid_database`).

Both work through listeners that :func:`engine.db.get_engine` puts on every engine it makes
(:func:`listen_for_deferred`): held-back rows run before the connection's next statement of any kind, at
commit, or are dropped at rollback; once the database is forbidden, every statement and transaction command
is stopped before it reaches the driver. Writers that hold rows back are
:class:`~engine.db_rows.RowInserter` and :class:`~engine.db_rows.RowUpdater` made with ``deferrable=True``.
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.errors import EngineError

__all__ = [
    "DEFERRED_KEY",
    "DatabaseForbidden",
    "DeferredWriteError",
    "DeferredWrites",
    "database_forbidden_hits",
    "deferred_writes",
    "deferring",
    "forbid_database",
    "hold_back",
    "held_back",
    "held_back_groups",
    "listen_for_deferred",
]


class DeferredWriteError(Exception):
    """A write held back by :func:`deferred_writes` failed when it was finally executed (before a later
    statement, or at the end of the block): the statement that set it off did not run. The caller rolls
    back to a savepoint taken before the block (:meth:`Runtime.start_many` then runs its batch again without
    deferring, so that the failure is met where it happens)."""


#: ``Connection.info`` key of the writes :func:`deferred_writes` holds back (a :class:`DeferredWrites`)
DEFERRED_KEY = "regflow.deferred_writes"
#: dialects of the engines made by :func:`engine.db.get_engine`, whose connections carry the listeners
#: that make deferring safe (:func:`listen_for_deferred`)
_DEFERRING_DIALECTS: "weakref.WeakSet" = weakref.WeakSet()


class DeferredWrites:
    """Statements held back for one connection, as ``[sql, table, params]`` groups in the order they must
    run. A statement joins the last group of the same SQL unless a later group writes the same table: rows
    of one table keep their order, rows of different tables may run in another order than they came. So only
    statements that fire no trigger reading another table are held back, and a table whose rows refer to
    another held-back table's must first appear after it (team assignments after their draws); otherwise a
    foreign key fails and the batch runs again without holding back (:class:`DeferredWriteError`)."""

    __slots__ = ("groups", "added")

    def __init__(self) -> None:
        self.groups: list[list] = []
        self.added = 0  # rows held back since the block began, written or not

    def add(self, sql: str, table: str, params: list[tuple]) -> None:
        self.added += len(params)
        for group in reversed(self.groups):
            if group[0] == sql:
                group[2].extend(params)
                return
            if group[1] == table:
                break
        self.groups.append([sql, table, list(params)])

    def run(self, dbapi_conn) -> None:
        if not self.groups:
            return
        if _FORBIDDEN[0] is not None:
            _refuse(f"{sum(len(g[2]) for g in self.groups)} held-back rows")
        groups, self.groups = self.groups, []
        cur = dbapi_conn.cursor()
        try:
            for sql, table, params in groups:
                try:
                    cur.executemany(sql, params)
                except Exception as exc:
                    raise DeferredWriteError(f"deferred write to {table} failed: {type(exc).__name__}: {exc}") \
                        from exc
        finally:
            cur.close()


def _run_deferred(conn, cursor, statement, _parameters, _context, _executemany):
    """``before_cursor_execute``: whatever was held back runs before any other statement (a read sees it, a
    savepoint's rollback takes it back, an ORM flush comes after it)."""
    if _FORBIDDEN[0] is not None:  # (forbid_database): before anything held back or this statement is sent
        _refuse(" ".join(statement.split())[:120])
    pending = conn.info.get(DEFERRED_KEY)
    if pending is not None and pending.groups:
        pending.run(cursor.connection)


def _run_deferred_at_commit(conn) -> None:
    pending = conn.info.get(DEFERRED_KEY)
    if pending is not None and pending.groups:
        pending.run(conn.connection.dbapi_connection)


def _drop_deferred(conn) -> None:
    pending = conn.info.get(DEFERRED_KEY)
    if pending is not None:
        pending.groups.clear()


def listen_for_deferred(eng: Engine) -> None:
    """Make ``eng`` run held-back rows before each statement and at commit, drop them at rollback, and stop
    every statement and transaction command once :func:`forbid_database` was called (for every engine
    :func:`engine.db.get_engine` makes)."""
    event.listen(eng, "before_cursor_execute", _run_deferred)
    event.listen(eng, "commit", _run_deferred_at_commit)
    event.listen(eng, "rollback", _drop_deferred)
    # a process that may not use the database stops here (statements: in _run_deferred), before anything is sent
    for name in ("begin", "commit", "rollback", "savepoint", "rollback_savepoint", "release_savepoint"):
        event.listen(eng, name, _guard_transaction, insert=True)
    _DEFERRING_DIALECTS.add(eng.dialect)


class DatabaseForbidden(EngineError):
    """This process may not use the database (the forked part of a batch, :mod:`engine.runtime.parallel`):
    the statement, commit, rollback or savepoint was stopped before it reached the driver."""


#: why this process may not use the database (set in a forked child only), and what it tried
_FORBIDDEN: list = [None, []]


def forbid_database(reason: str) -> None:
    """From now on, in this process, every statement and transaction command on an engine made here
    raises :class:`DatabaseForbidden` (for a forked child: its copy of the parent's connection is the
    parent's, mid-transaction)."""
    _FORBIDDEN[0], _FORBIDDEN[1] = reason, []


def database_forbidden_hits() -> list[str]:
    """What was stopped since :func:`forbid_database` (a caller might have caught the exception)."""
    return list(_FORBIDDEN[1])


def _refuse(what: str) -> None:
    message = f"{_FORBIDDEN[0]} may not use the database: {what}"
    _FORBIDDEN[1].append(message)
    raise DatabaseForbidden(message)


def _guard_transaction(conn, *args):
    if _FORBIDDEN[0] is not None:
        _refuse("a transaction command")


@contextmanager
def deferred_writes(session: Session) -> Iterator[None]:
    """Inside the block, writers made with ``deferrable=True`` hold their rows back and the rows go to the
    database together, as one ``executemany`` per statement, right before the next statement of any kind
    on the connection (so every read, ORM flush, savepoint release or rollback, and the commit, comes after
    them) or at the end of the block. A batch of thousands of starts writes an entity score and a team draw
    per instance: one row at a time, a statement's own cost is several times the row's.

    A failing held-back write raises :class:`DeferredWriteError` from the statement that set it off, which
    may belong to other work: use it only where a failure takes the whole block back to a savepoint taken
    before it. Leaving the block with an exception drops what is still held back (the caller rolls back).
    Nested blocks and engines not made by :func:`engine.db.get_engine` write at once."""
    conn = session.connection()
    if conn.dialect not in _DEFERRING_DIALECTS or conn.info.get(DEFERRED_KEY) is not None:
        yield
        return
    pending = conn.info[DEFERRED_KEY] = DeferredWrites()
    try:
        yield
        pending.run(conn.connection.dbapi_connection)
    finally:
        pending.groups.clear()
        conn.info.pop(DEFERRED_KEY, None)


def held_back_groups(session: Session) -> list[list]:
    """The rows the open :func:`deferred_writes` block holds back, as ``[sql, table, params]`` groups in the
    order they will run (plain data: they may be sent to another process); nothing is written."""
    pending = session.connection().info.get(DEFERRED_KEY)
    return [] if pending is None else pending.groups


def hold_back(session: Session, groups: list[list]) -> None:
    """Add ``groups`` (from :func:`held_back_groups`, maybe another process's) to the open block's rows."""
    pending = session.connection().info[DEFERRED_KEY]
    for sql, table, params in groups:
        pending.add(sql, table, params)


def deferring(session: Session) -> bool:
    """Is a :func:`deferred_writes` block open on this session's connection?"""
    return session.connection().info.get(DEFERRED_KEY) is not None


def held_back(session: Session, *, since_start: bool = False) -> int:
    """How many rows the open :func:`deferred_writes` block holds back right now, or (``since_start``) has
    held back since it began, written since or not; 0 outside a block."""
    pending = session.connection().info.get(DEFERRED_KEY)
    if pending is None:
        return 0
    return pending.added if since_start else sum(len(group[2]) for group in pending.groups)
