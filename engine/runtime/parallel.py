"""A long batch of starts on the machine's second core: half of it computed in a forked process.

A campaign launch starts thousands of ``entity_inspection`` instances in the approval step's one
transaction, and every instance runs SpiffWorkflow, its service tasks and the state's serialization
before it reaches its first wait — pure Python, so one core. The transaction cannot be shared with
another process (SQLite has one writer, and a second connection would not see the step's uncommitted
draw), but by the time the batch starts, every row its instances read is already held in memory
(``txcache``, prefetched by the launch), and every row they write is held back (``deferred_writes``
and the runtime's batch) until the batch ends. So :func:`run_split` forks: the child computes the
second part of the batch **without touching the database** — any statement, commit, rollback or
savepoint it attempts raises :class:`DatabaseForbidden` before it reaches the driver — and sends back
the rows it would have written; the parent computes the first part meanwhile, then writes both parts
in its transaction. One transaction, the same rows; twice the cores.

What the two halves share while they run is shared explicitly, in memory created before the fork:
ids handed out by :data:`engine.db.ids` (``IdAllocator.share``) and whatever a registered
:class:`ForkHook` shares (team formation: the officers' workload, so that no cap is exceeded). Anything
else the child would need from the database, or would change in the session (an ORM object marked
changed), makes the child's part fail; the parent then runs that part itself, the usual way. A child
that does not answer in time is killed and its part, likewise, run by the parent.

Only on platforms with ``fork`` and only for SQLite (PostgreSQL hands out ids from sequences, a
database call). ``REGFLOW_PARALLEL_START_FROM`` sets the batch length from which it is used (0: never).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from sqlalchemy.orm import Session

from engine import db

log = logging.getLogger(__name__)


class ForkHook(Protocol):
    """Something a module shares between the two processes of a split batch."""

    #: tables whose ids both processes take from :data:`engine.db.ids` while the batch runs
    id_tables: tuple[str, ...]

    def before_fork(self, session: Session) -> Any:
        """Set up what is shared (in the parent, before the fork); returns a token for the other calls."""

    def in_child(self, session: Session, token: Any) -> None:
        """Right after the fork, in the child."""

    def child_result(self, session: Session, token: Any) -> Any:
        """In the child once its work is done: what the parent's :meth:`after_join` gets (picklable)."""

    def after_join(self, session: Session, token: Any, child_result: Any) -> None:
        """In the parent once the child is done, with the child's :meth:`child_result`; ``None`` if the
        child's part failed (it is discarded and will be run again here)."""


_HOOKS: list[ForkHook] = []

#: while a batch is split: this process's role and the other process's pid
_PEER: dict = {"role": None, "pid": None, "reaped": False}
#: how often a process waiting for a :class:`SharedLock` checks that the other one is still alive
_POLL_S = 0.5


def peer_alive() -> bool:
    """Is the other process of the split this process is part of still running? (True outside a split)"""
    pid = _PEER["pid"]
    if pid is None:
        return True
    if _PEER["role"] == "child":
        return os.getppid() == pid
    if _PEER["reaped"]:
        return False
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)  # reaps it if it ended
    except ChildProcessError:
        done = pid
    if done:
        _PEER["reaped"] = True  # its pid may be reused: never signalled or waited for again
    return not done


class SharedLock:
    """A lock the two processes of a split batch share, which neither can leave held by dying: a process
    waiting for it checks every ``_POLL_S`` that the other is alive. A parent whose child died holding it
    goes on without it (nobody else takes it; the child's part will be run again in the parent); a child
    whose parent died exits."""

    def __init__(self) -> None:
        self._lock = multiprocessing.Lock()
        self._broken = False  # this process's view: the other one died holding the lock

    def __enter__(self) -> "SharedLock":
        while not self._broken:
            if self._lock.acquire(timeout=_POLL_S):
                return self
            if not peer_alive():
                if _PEER["role"] == "child":
                    os._exit(75)
                self._broken = True
        return self

    def __exit__(self, *_exc) -> None:
        if not self._broken:
            self._lock.release()


def register(hook: ForkHook) -> None:
    if hook not in _HOOKS:
        _HOOKS.append(hook)


def available(session: Session) -> bool:
    """Can this session's batch be split? (fork exists, SQLite, engine made by :mod:`engine.db`)"""
    return (hasattr(os, "fork") and session.get_bind().dialect.name == "sqlite"
            and db.deferring(session))


@dataclass
class SplitResult:
    #: what the child's work returned (``None`` when it failed)
    value: Any
    #: why the child's part failed, or ``None``
    failure: str | None
    #: seconds the child computed, the parent computed its own part, the parent then waited and read
    child_s: float = 0.0
    parent_s: float = 0.0
    wait_s: float = 0.0
    #: the hooks' ``child_result``s, in their order
    hooks: list | None = None


#: the child may run this many times longer than the parent's own part (then at least ``_MIN_WAIT_S``)
#: before it is given up
_WAIT_FACTOR = 4.0
_MIN_WAIT_S = 60.0


def run_split(session: Session, parent_work: Callable[[], None], child_work: Callable[[], Any]) -> SplitResult:
    """Run ``child_work`` in a forked child with the database forbidden and ``parent_work`` here, at the
    same time; the hooks' ``id_tables`` are counted in shared memory meanwhile. The child's value is
    pickled back. Every failure of the child is reported in ``SplitResult.failure`` (nothing of its
    work is kept: the hooks were told); a failure of ``parent_work`` propagates once the child is gone."""
    session.flush()  # nothing of the parent's pending unit of work may be copied into the child
    pending = session.connection().info.get(db.DEFERRED_KEY)
    if pending is not None and pending.groups:  # held back before the split: the parent's own rows
        pending.run(session.connection().connection.dbapi_connection)
    tables = tuple(dict.fromkeys(t for hook in _HOOKS for t in hook.id_tables))
    shared_ids = db.ids.share(session, tables, SharedLock)
    tokens: list = []
    try:
        for hook in _HOOKS:
            tokens.append((hook, hook.before_fork(session)))
        read_fd, write_fd = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() in a threaded process (a web server's): the child takes no lock
            # another thread may hold (no database, no pool), and one that hangs anyway is killed (_WAIT_FACTOR)
            warnings.simplefilter("ignore", DeprecationWarning)
            parent_pid = os.getpid()
            pid = os.fork()
    except BaseException:
        for hook, token in tokens:
            hook.after_join(session, token, None)
        db.ids.unshare(session, shared_ids)
        raise
    if pid == 0:  # ---------------------------------------------------------------- the child
        code = 0
        try:
            os.close(read_fd)
            _PEER.update(role="child", pid=parent_pid, reaped=False)
            db.forbid_database("a forked part of a batch of starts")
            for hook, token in tokens:
                hook.in_child(session, token)
            t0 = time.perf_counter()
            dirty_before = _unit_of_work(session)
            try:
                value = child_work()
                if db.database_forbidden_hits():
                    raise db.DatabaseForbidden(db.database_forbidden_hits()[0])
                changed = _unit_of_work(session) - dirty_before
                if changed:
                    raise db.DatabaseForbidden(f"the child changed {len(changed)} ORM object(s) in the session")
                payload = {"ok": True, "value": value, "child_s": time.perf_counter() - t0,
                           "hooks": [hook.child_result(session, token) for hook, token in tokens]}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which runs the part itself
                payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                # streamed: the parent unpickles while this one pickles, and neither holds the whole answer
                pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - nothing may unwind into the parent's code in the child
            code = 70
        finally:
            os._exit(code)  # no atexit, no finalizer: the parent's connection stays untouched
    # ----------------------------------------------------------------------------------- the parent
    os.close(write_fd)
    _PEER.update(role="parent", pid=pid, reaped=False)
    received: list = []
    reader = threading.Thread(target=_read_all, args=(read_fd, received), name="regflow-split-reader", daemon=True)
    reader.start()
    t0 = time.perf_counter()
    result: SplitResult | None = None
    answered = False
    try:
        parent_work()
        parent_s = time.perf_counter() - t0
        waited = max(_MIN_WAIT_S, _WAIT_FACTOR * parent_s)
        reader.join(waited)
        if reader.is_alive():
            result = SplitResult(None, f"no answer from the child within {waited:.0f} s")
        else:
            answered = True
            result = _decode(received)
        result.parent_s, result.wait_s = parent_s, time.perf_counter() - t0 - parent_s
        return result
    finally:
        if not _PEER["reaped"]:
            if not answered:  # the parent's part failed, or the child hangs: its work is not wanted
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
        reader.join()
        _PEER.update(role=None, pid=None, reaped=False)
        ok = result is not None and result.failure is None
        for i, (hook, token) in enumerate(tokens):
            hook.after_join(session, token, result.hooks[i] if ok else None)
        db.ids.unshare(session, shared_ids)


def _read_all(fd: int, out: list) -> None:
    """The child's answer, unpickled as it arrives (``out``: [payload], or [None, why] if it is cut short)."""
    with os.fdopen(fd, "rb", buffering=1 << 20) as src:
        try:
            out.append(pickle.load(src))
        except Exception as exc:  # noqa: BLE001 - a child that died mid-answer: its part is run again
            out.extend((None, f"{type(exc).__name__}: {exc}"))
        src.read()  # to the end, so that the child's last write returns


def _decode(received: list) -> SplitResult:
    if not received:
        return SplitResult(None, "the child ended without an answer")
    payload = received[0]
    if payload is None:
        return SplitResult(None, f"the child's answer is cut short ({received[1]})")
    if not payload["ok"]:
        return SplitResult(None, payload["error"])
    return SplitResult(payload["value"], None, payload["child_s"], hooks=payload["hooks"])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _unit_of_work(session: Session) -> set[int]:
    return {id(o) for o in session.new} | {id(o) for o in session.dirty} | {id(o) for o in session.deleted}
