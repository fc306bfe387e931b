"""Rows written straight through the driver: :class:`RowInserter` and :class:`RowUpdater` for the tables the
engine writes at every step, and :class:`JsonText`, a JSON value already encoded, which the engines made
by :func:`engine.db.get_engine` store as it is (:func:`json_dumps` is their JSON serializer).
"""
from __future__ import annotations

import json
from datetime import datetime
from operator import itemgetter
from typing import Callable

from sqlalchemy import JSON
from sqlalchemy.orm import Session

from engine.db_deferred import DEFERRED_KEY

__all__ = ["COPY_FROM_ROWS", "JsonText", "RowInserter", "RowUpdater", "json_dumps", "stores_json_text"]


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
    """Whether the session's engine stores a :class:`JsonText` as it is (an engine made by
    :func:`engine.db.get_engine`); any other
    engine would encode the text again, and must be handed the value instead."""
    return session.get_bind().dialect._json_serializer is json_dumps


#: batches of at least this many rows go to PostgreSQL with COPY instead of a pipelined executemany
COPY_FROM_ROWS = 20
#: :class:`RowInserter`'s mark for a JSON column whose pre-encoded values need no bind processor
_JSON_TEXT_AS_IS = object()


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
    :func:`~engine.db_deferred.deferred_writes` block the rows are held back and written with the block's other
    held-back rows (only for tables with no trigger that reads another table)."""

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
        pending = conn.info.get(DEFERRED_KEY)
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
    inside a :func:`~engine.db_deferred.deferred_writes` block when ``deferrable``)."""

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
