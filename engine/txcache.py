"""A read cache that lives inside one database transaction.

A campaign launch starts thousands of instances in one transaction, and every one of them reads the same
registry rows (the inspector pool, the skills, the check items). :func:`get` keeps such a read in
``session.info`` under a key, together with the tables it depends on, so that the second reader in the
same transaction pays nothing. An entry is dropped

- when the session flushes a new, changed or deleted ORM object of one of its tables;
- when an ORM-enabled ``insert``/``update``/``delete`` statement on one of its tables runs through the
  session;
- when the transaction ends (commit or any rollback, savepoints included): nothing outlives it, so no
  other transaction's writes can be missed and a rolled-back write is never seen.

Writes made with Core on ``session.connection()`` bypass the session and are *not* seen: callers that do
that to a cached table must call :func:`invalidate`. Values must be plain data (tuples, dicts, frozen
dataclasses), never ORM instances, which expire on rollback.

The drops are SQLAlchemy event listeners on every :class:`~sqlalchemy.orm.Session`. Importing this module
does not register them: :func:`install_session_hooks` does (idempotent), called by
:func:`engine.runtime.patches.install` and, in case nothing called that, before this module stores its
first entry — a cache without them would serve rows its own transaction has changed.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Iterable, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")
_KEY = "regflow.txcache"
_HOLD = "regflow.txhold"


_hooks_installed = False


def install_session_hooks() -> None:
    """Register the listeners that drop entries (on the ``Session`` class: every session); idempotent."""
    global _hooks_installed
    if _hooks_installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "after_transaction_end", _on_end)
    event.listen(Session, "after_soft_rollback", _on_rollback)
    _hooks_installed = True


def session_hooks_installed() -> bool:
    return _hooks_installed


def _store(session: Session) -> dict[Any, tuple[frozenset[str], Any]]:
    store = session.info.get(_KEY)
    if store is None:
        if not _hooks_installed:
            install_session_hooks()
        store = session.info[_KEY] = {}
    return store


def get(session: Session, key: Any, tables: Iterable[str], loader: Callable[[], T]) -> T:
    """The cached value of ``key``, loading it with ``loader()`` on a miss."""
    store = _store(session)
    hit = store.get(key)
    if hit is not None:
        return hit[1]
    value = loader()
    store[key] = (frozenset(tables), value)
    return value


def put(session: Session, key: Any, tables: Iterable[str], value: Any) -> None:
    """Store ``value`` (e.g. a value the caller kept up to date with its own writes)."""
    _store(session)[key] = (frozenset(tables), value)


def peek(session: Session, key: Any, default: Any = None) -> Any:
    hit = session.info.get(_KEY, {}).get(key)
    return default if hit is None else hit[1]


def invalidate(session: Session, tables: Iterable[str] | None = None) -> None:
    """Drop every entry (``tables`` None) or the entries that depend on any of ``tables``."""
    store = session.info.get(_KEY)
    if not store:
        return
    if tables is None:
        store.clear()
        return
    touched = set(tables)
    for key in [k for k, (deps, _v) in store.items() if deps & touched]:
        del store[key]


def hold(session: Session, objects: Iterable[Any]) -> None:
    """Keep ORM objects referenced until the transaction ends, so that ``session.get`` finds them in the
    identity map (which holds objects weakly) instead of loading them again. For batch work that prefetched
    the rows its steps will read; the objects stay subject to the session's usual expiry rules."""
    if not _hooks_installed:
        install_session_hooks()
    session.info.setdefault(_HOLD, []).extend(objects)


def _table_of(obj) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return getattr(table, "name", None)


def _after_flush(session: Session, _ctx) -> None:
    if not session.info.get(_KEY):
        return
    invalidate(session, {t for t in map(_table_of, chain(session.new, session.dirty, session.deleted)) if t})


def _on_execute(state) -> None:
    if not state.session.info.get(_KEY) or not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    invalidate(state.session, None if name is None else {name})


def _on_end(session: Session, transaction) -> None:
    # a savepoint's commit keeps the entries (its writes were flushed, and seen, already); the root's end drops all
    if transaction.parent is None:
        invalidate(session)
        session.info.pop(_HOLD, None)


def _on_rollback(session: Session, _transaction) -> None:
    # any rollback, a savepoint's included: entries may hold rows the rollback took back
    invalidate(session)
