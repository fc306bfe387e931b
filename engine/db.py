"""Database plumbing shared by every package: the declarative base, engines and sessions.

Services take a ``Session`` and never commit; the caller (CLI command, request, worker job) owns the
transaction.
"""
from __future__ import annotations

import json
import threading
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from typing import Callable, Iterator

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

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


class JsonText(str):
    """A value of a JSON column that is already encoded: :func:`json_dumps` stores it as it is (the audit log
    hashes the exact text it stores, so it encodes each value once, not once to hash and again to store)."""

    __slots__ = ()


def json_dumps(value) -> str:
    """The engines' JSON serializer: ``json.dumps``, except for :class:`JsonText`, passed through."""
    if type(value) is JsonText:
        return value
    return json.dumps(value)


def stores_json_text(session) -> bool:
    """Whether the session's engine stores a :class:`JsonText` as it is (an engine made here); any other
    engine would encode the text again, and must be handed the value instead."""
    return session.get_bind().dialect._json_serializer is json_dumps


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
        _listen_for_deferred(eng)
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


#: batches of at least this many rows go to PostgreSQL with COPY instead of a pipelined executemany
COPY_FROM_ROWS = 20
#: :class:`RowInserter`'s mark for a JSON column whose pre-encoded values need no bind processor
_JSON_TEXT_AS_IS = object()


class DeferredWriteError(Exception):
    """A write held back by :func:`deferred_writes` failed when it was finally executed (before a later
    statement, or at the end of the block): the statement that set it off did not run. The caller rolls
    back to a savepoint taken before the block (:meth:`Runtime.start_many` then runs its batch again without
    deferring, so that the failure is met where it happens)."""


#: ``Connection.info`` key of the writes :func:`deferred_writes` holds back
_DEFERRED = DEFERRED_KEY = "regflow.deferred_writes"
#: dialects of the engines made here, whose connections carry the listeners that make deferring safe
_DEFERRING_DIALECTS: "weakref.WeakSet" = weakref.WeakSet()


class _DeferredWrites:
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
    pending = conn.info.get(_DEFERRED)
    if pending is not None and pending.groups:
        pending.run(cursor.connection)


def _run_deferred_at_commit(conn) -> None:
    pending = conn.info.get(_DEFERRED)
    if pending is not None and pending.groups:
        pending.run(conn.connection.dbapi_connection)


def _drop_deferred(conn) -> None:
    pending = conn.info.get(_DEFERRED)
    if pending is not None:
        pending.groups.clear()


def _listen_for_deferred(eng: Engine) -> None:
    event.listen(eng, "before_cursor_execute", _run_deferred)
    event.listen(eng, "commit", _run_deferred_at_commit)
    event.listen(eng, "rollback", _drop_deferred)
    # a process that may not use the database stops here (statements: in _run_deferred), before anything is sent
    for name in ("begin", "commit", "rollback", "savepoint", "rollback_savepoint", "release_savepoint"):
        event.listen(eng, name, _guard_transaction, insert=True)
    _DEFERRING_DIALECTS.add(eng.dialect)


class DatabaseForbidden(RuntimeError):
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
    Nested blocks and engines not made by :func:`get_engine` write at once."""
    conn = session.connection()
    if conn.dialect not in _DEFERRING_DIALECTS or conn.info.get(_DEFERRED) is not None:
        yield
        return
    pending = conn.info[_DEFERRED] = _DeferredWrites()
    try:
        yield
        pending.run(conn.connection.dbapi_connection)
    finally:
        pending.groups.clear()
        conn.info.pop(_DEFERRED, None)


def held_back_groups(session: Session) -> list[list]:
    """The rows the open :func:`deferred_writes` block holds back, as ``[sql, table, params]`` groups in the
    order they will run (plain data: they may be sent to another process); nothing is written."""
    pending = session.connection().info.get(_DEFERRED)
    return [] if pending is None else pending.groups


def hold_back(session: Session, groups: list[list]) -> None:
    """Add ``groups`` (from :func:`held_back_groups`, maybe another process's) to the open block's rows."""
    pending = session.connection().info[_DEFERRED]
    for sql, table, params in groups:
        pending.add(sql, table, params)


def deferring(session: Session) -> bool:
    """Is a :func:`deferred_writes` block open on this session's connection?"""
    return session.connection().info.get(_DEFERRED) is not None


def held_back(session: Session, *, since_start: bool = False) -> int:
    """How many rows the open :func:`deferred_writes` block holds back right now, or (``since_start``) has
    held back since it began, written since or not; 0 outside a block."""
    pending = session.connection().info.get(_DEFERRED)
    if pending is None:
        return 0
    return pending.added if since_start else sum(len(group[2]) for group in pending.groups)


class RowInserter:
    """``INSERT`` of many rows of one table straight through the DB-API cursor's ``executemany``.

    For the engine's hot path, which writes the same few tables at every step: a Core ``insert`` spends
    more time in SQLAlchemy (compiled-parameter construction, per-row dictionaries) than SQLite spends
    writing. Here the statement is rendered once per dialect and each column's bind processor (the same
    function Core would call: time zones, JSON, booleans) is looked up once; rows are converted to tuples
    and handed to the driver (on PostgreSQL, batches of ``COPY_FROM_ROWS`` or more as one ``COPY``). What is
    stored is what Core stores (``tests/runtime/test_row_inserter.py`` compares the two on both backends, both
    ways of writing).

    Every row must give every column of ``columns``; columns left out of ``columns`` get the database's
    default (NULL). The write goes through ``session.connection()``, so the session's ORM events do not
    see it: only for tables no :mod:`engine.txcache` entry depends on. ``deferrable``: inside a
    :func:`deferred_writes` block the rows are held back and written with the block's other held-back rows
    (only for tables with no trigger that reads another table)."""

    _copy = True

    def __init__(self, table, columns: list[str], *, deferrable: bool = False):
        self.table = table
        self.columns = tuple(columns)
        self.deferrable = deferrable
        for name in self.columns:
            table.c[name]  # noqa: B018 - a KeyError here names the unknown column at import time
        self._plans: dict[str, tuple[str, str, Callable, tuple]] = {}

    def _sql(self, prep, mark: str) -> str:
        return (f"INSERT INTO {prep.format_table(self.table)} "
                f"({', '.join(prep.quote(c) for c in self.columns)}) "
                f"VALUES ({', '.join(mark for _ in self.columns)})")

    def _plan(self, dialect) -> tuple[str, str, Callable, tuple]:
        plan = self._plans.get(dialect.name)
        if plan is None:
            prep = dialect.identifier_preparer
            mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
            sql = self._sql(prep, mark)
            convert = []
            for i, name in enumerate(self.columns):
                col_type = self.table.c[name].type
                proc = col_type.dialect_impl(dialect).bind_processor(dialect)
                if proc is not None:
                    # a step's rows share their timestamps: each distinct one is converted once, for every
                    # column of the same type (same repr: same configuration, so the same conversion)
                    group = repr(col_type) if _python_type(col_type) is datetime else None
                    if group is None and dialect.name == "sqlite" and isinstance(col_type, JSON):
                        # SQLite's JSON processor is the engine's serializer, which stores JsonText as it is
                        group = _JSON_TEXT_AS_IS
                    convert.append((i, proc, group))
            values_of = itemgetter(*self.columns) if len(self.columns) > 1 else (lambda r, c=self.columns[0]: (r[c],))
            copy_sql = (f"COPY {prep.format_table(self.table)} ({', '.join(prep.quote(c) for c in self.columns)}) "
                        "FROM STDIN")
            plan = self._plans[dialect.name] = (sql, copy_sql, values_of, tuple(convert))
        return plan

    def insert(self, session: Session, rows: list[dict]) -> None:
        if not rows:
            return
        conn = session.connection()
        sql, copy_sql, values_of, convert = self._plan(conn.dialect)
        if not convert:
            params = [values_of(r) for r in rows]
        else:
            params = []
            memo: dict = {}
            for r in rows:
                vals = list(values_of(r))
                for i, proc, group in convert:
                    v = vals[i]
                    if group is _JSON_TEXT_AS_IS:
                        if type(v) is not JsonText:
                            vals[i] = proc(v)
                    elif group is not None:
                        key = (group, v)
                        if key in memo:
                            vals[i] = memo[key]
                        else:
                            vals[i] = memo[key] = proc(v)
                    else:
                        vals[i] = proc(v)
                params.append(tuple(vals))
        pending = conn.info.get(_DEFERRED)
        if pending is not None and self.deferrable:
            pending.add(sql, self.table.name, params)
        elif self._copy and conn.dialect.name == "postgresql" and len(params) >= COPY_FROM_ROWS:
            dbapi_conn = conn.connection.dbapi_connection
            if pending is not None:  # COPY goes past the connection's events: what is held back goes first
                pending.run(dbapi_conn)
            # one COPY stream for the batch: the server parses no INSERT per row
            with dbapi_conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in params:
                    copy.write_row(row)
        else:
            conn.exec_driver_sql(sql, params)


class RowUpdater(RowInserter):
    """``UPDATE table SET columns… WHERE key = …`` of many rows, the way :class:`RowInserter` inserts: rows
    are dictionaries with the key and every column of ``columns``; :meth:`update` writes them (held back
    inside a :func:`deferred_writes` block when ``deferrable``)."""

    _copy = False

    def __init__(self, table, key: str, columns: list[str], *, deferrable: bool = False):
        super().__init__(table, [*columns, key], deferrable=deferrable)
        self.key = key

    def _sql(self, prep, mark: str) -> str:
        sets = ", ".join(f"{prep.quote(c)} = {mark}" for c in self.columns[:-1])
        return f"UPDATE {prep.format_table(self.table)} SET {sets} WHERE {prep.quote(self.key)} = {mark}"

    update = RowInserter.insert


def _python_type(col_type):
    try:
        return col_type.python_type
    except NotImplementedError:
        return None


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

    def __init__(self) -> None:
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
        shared = session.info.get(_SHARED_IDS)
        if shared is not None and table in shared:
            value, lock = shared[table]
            with lock:
                nxt = value.value
                value.value = nxt + n
            return list(range(nxt, nxt + n))
        if session.get_bind().dialect.name == "postgresql":
            if table not in self._POOLED:
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
        import multiprocessing

        if session.get_bind().dialect.name != "sqlite":
            raise ValueError("shared id counters are for SQLite")
        shared = {}
        for table in tables:
            nxt = self._counted(session, table)
            if nxt is None:
                nxt = (session.execute(text(f"select coalesce(max(id), 0) from {table}")).scalar_one() or 0) + 1
            shared[table] = (multiprocessing.RawValue("q", nxt), lock_factory())
        session.info[_SHARED_IDS] = shared
        return shared

    def unshare(self, session: Session, shared: dict) -> None:
        """Back to counting in the session, after the highest id either process took."""
        session.info.pop(_SHARED_IDS, None)
        for table, (value, _lock) in shared.items():
            self._count(session, table, value.value)


#: ``session.info`` key of the counters :meth:`IdAllocator.share` put in shared memory
_SHARED_IDS = "regflow.shared_ids"
#: for tables whose every insert takes its id from here (none pooled)
ids = IdAllocator()
