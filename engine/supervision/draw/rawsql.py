"""Plain DBAPI reads and writes on the session's connection (same transaction), for the draw's bulk work:
for a million rows, SQLAlchemy's row objects and per-row parameter processing cost more than the query."""
from __future__ import annotations

import itertools
import sqlite3
from typing import Any, Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session


def fetch_raw(session: Session, q) -> list[tuple]:
    """Plain DBAPI tuples on the session's connection (same transaction): for a million rows, SQLAlchemy's
    row objects cost more than the query itself."""
    conn = session.connection()
    compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        params: Any = tuple(compiled.params[k] for k in compiled.positiontup)
    else:
        params = compiled.params
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(str(compiled), params)
        return cur.fetchall()
    finally:
        cur.close()


def insert_raw(session: Session, table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert plain tuples (in ``columns`` order) as multi-row ``INSERT … VALUES (…), (…)`` statements of a few
    hundred rows through the DBAPI: no per-row parameter processing, and on SQLite about twice as fast as
    ``executemany``. Only for values the driver takes as they are (integers, strings, None)."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:  # named or numeric placeholders: SQLAlchemy's executemany
        conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])
        return
    q = dialect.identifier_preparer
    head = f"INSERT INTO {q.format_table(table)} ({', '.join(q.quote(c) for c in columns)}) VALUES "
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per = 500
    if dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32, 0):  # 999 parameters at most
        per = max(1, 999 // len(columns))
    full = head + ", ".join([one] * per)
    chain = itertools.chain.from_iterable
    for lo in range(0, len(rows), per):
        part = rows[lo:lo + per]
        sql = full if len(part) == per else head + ", ".join([one] * len(part))
        conn.exec_driver_sql(sql, tuple(chain(part)))
