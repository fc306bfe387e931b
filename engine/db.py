"""Database plumbing shared by every package: the declarative base, engines and sessions.

Services take a ``Session`` and never commit; the caller (CLI command, request, worker job) owns the
transaction.

The rest of the plumbing lives beside this module and is importable from here too: rows written through the
driver and pre-encoded JSON (:mod:`engine.db_rows`), writes held back and the database guard of a forked
process (:mod:`engine.db_deferred`), and ids handed out before rows are written (:mod:`engine.db_ids`).
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from engine.db_deferred import (
    DEFERRED_KEY,
    DatabaseForbidden,
    DeferredWriteError,
    DeferredWrites,
    database_forbidden_hits,
    deferred_writes,
    deferring,
    forbid_database,
    held_back,
    held_back_groups,
    hold_back,
    listen_for_deferred,
)
from engine.db_ids import SHARED_IDS, IdAllocator, ids
from engine.db_rows import COPY_FROM_ROWS, JsonText, RowInserter, RowUpdater, json_dumps, stores_json_text

__all__ = [
    # this module
    "IN_LIST_CHUNK", "NAMING_CONVENTION", "Base", "UTCDateTime", "chunks", "dispose_engines", "get_engine",
    "read_session_factory", "session_factory", "transaction", "utcnow",
    # engine.db_rows
    "COPY_FROM_ROWS", "JsonText", "RowInserter", "RowUpdater", "json_dumps", "stores_json_text",
    # engine.db_deferred
    "DEFERRED_KEY", "DatabaseForbidden", "DeferredWriteError", "DeferredWrites", "database_forbidden_hits",
    "deferred_writes", "deferring", "forbid_database", "hold_back", "held_back", "held_back_groups",
    # engine.db_ids
    "SHARED_IDS", "IdAllocator", "ids",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: regflow stores timezone-aware UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_engines: dict[str, Engine] = {}


def get_engine(url: str) -> Engine:
    """One engine per URL per process."""
    eng = _engines.get(url)
    if eng is None:
        if url.startswith("sqlite"):
            eng = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_dumps)
            event.listen(eng, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that
            # BEGIN IMMEDIATE can take the write lock at the start of a step.
            @event.listens_for(eng, "connect")
            def _no_autobegin(dbapi_conn, _rec):
                dbapi_conn.isolation_level = None

            @event.listens_for(eng, "begin")
            def _begin(conn):
                # reads (web pages, reports) must not queue behind writers for the write lock
                read_only = conn.get_execution_options().get("regflow_read_only", False)
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
        else:
            # no pre-ping (a round trip per transaction); recycle connections instead
            eng = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20, json_serializer=json_dumps)
        _plain_savepoints(eng.dialect)
        listen_for_deferred(eng)
        _engines[url] = eng
    return eng


def _plain_savepoints(dialect) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO as plain SQL text on this engine's dialect. SQLAlchemy compiles a
    fresh clause object for each (its compiled cache does not hold them), which costs more than SQLite's
    work; every service task of a step opens and releases one. Same statements, same connection events."""
    quote = dialect.identifier_preparer.quote

    def do_savepoint(connection, name):
        connection.exec_driver_sql(f"SAVEPOINT {quote(name)}")

    def do_rollback_to_savepoint(connection, name):
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {quote(name)}")

    def do_release_savepoint(connection, name):
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {quote(name)}")

    dialect.do_savepoint = do_savepoint
    dialect.do_rollback_to_savepoint = do_rollback_to_savepoint
    dialect.do_release_savepoint = do_release_savepoint


def dispose_engines() -> None:
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def read_session_factory(url: str) -> sessionmaker[Session]:
    """Sessions for read-only work: on SQLite a deferred ``BEGIN`` (a snapshot, no write lock)."""
    return sessionmaker(get_engine(url).execution_options(regflow_read_only=True), expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """``with transaction(Session) as s:`` — commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


#: values per ``IN (…)`` list in batched reads
IN_LIST_CHUNK = 500


def chunks(values: list, size: int = IN_LIST_CHUNK) -> list[list]:
    """``values`` in slices short enough for one ``IN (…)`` list."""
    return [values[lo:lo + size] for lo in range(0, len(values), size)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
