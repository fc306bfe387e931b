"""The watch of a running script or expression (:mod:`engine.runtime.script_budget` says what it enforces): a
deadline and a memory baseline shared by the compiler's injected checks and a ``sys.settrace`` tracer."""
from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any, Callable

from .script_budget import FIRST_POLL_S, POLL_S, ScriptLimitExceeded, ScriptTimeout

try:  # (absent on Windows: no memory sampling there without /proc either)
    import resource
except ImportError:  # pragma: no cover - POSIX everywhere regflow runs
    resource = None


def resident_bytes() -> int | None:
    """The process's resident memory in bytes (Linux), else its peak so far (other POSIX systems), else None."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        if resource is None:  # pragma: no cover
            return None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    try:
        fields = os.read(fd, 128).split()
    finally:
        os.close(fd)
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


#: whether the garbage collector is running (gc.callbacks): its weakref callbacks and finalizers run on the
#: script's thread, under its tracer, where an exception cannot reach the script ("Exception ignored in …");
#: the checks wait until the collection is over
_collecting = False


def _gc_phase(phase: str, _info: dict) -> None:
    global _collecting
    _collecting = phase == "start"


def follow_gc() -> None:
    """Register the collector callback that keeps :data:`_collecting` (idempotent). Installed by
    :func:`engine.runtime.patches.install`; :func:`make_watch` calls it too, for a process that never did."""
    if _gc_phase not in gc.callbacks:
        gc.callbacks.append(_gc_phase)


def following_gc() -> bool:
    return _gc_phase in gc.callbacks


def make_watch(budget_s: float, source: str, max_memory: int | None, prev: Any,
               quiet: frozenset = frozenset()) -> tuple[Callable[[], None], Callable]:
    """``(check, tracer)`` sharing one deadline ``budget_s`` from now and one memory baseline.

    ``check()`` (bound to the compiler's deadline guard) and the global trace function ``tracer`` raise
    :class:`ScriptTimeout` past the deadline and :class:`ScriptLimitExceeded` once resident memory grew more than
    ``max_memory`` bytes (None: not sampled). ``prev``, the trace function installed before, still sees every
    event; frames running code whose ``id`` is in ``quiet`` (the size checks: bounded) are not traced line by
    line."""
    follow_gc()
    mono = time.monotonic
    start = mono()
    deadline = start + budget_s
    next_check = min(deadline, start + FIRST_POLL_S) if max_memory is not None else deadline
    baseline: int | None = None

    def slow_check() -> None:
        nonlocal next_check, baseline
        if _collecting:  # inside a collection's callbacks: checked again at the script's next event
            return
        now = mono()
        if now > deadline:
            raise ScriptTimeout(budget_s, source)
        if max_memory is not None:
            rss = resident_bytes()
            if rss is not None:
                if baseline is None:
                    baseline = rss
                elif rss - baseline > max_memory:
                    raise ScriptLimitExceeded("memory", f"the script grew the process's memory by "
                                              f"{(rss - baseline) >> 20} MB, more than the limit of "
                                              f"{max_memory >> 20} MB")
            next_check = min(deadline, now + POLL_S)

    def check() -> None:
        if mono() > next_check:
            slow_check()

    if prev is None:
        def local(frame, event, arg):
            if event == "line" and mono() > next_check:
                slow_check()
            return local

        def tracer(frame, event, arg):
            if id(frame.f_code) in quiet:
                return None
            if mono() > next_check:
                slow_check()
            return local

        return check, tracer

    def chained_local(prev_local):
        def local(frame, event, arg):
            nonlocal prev_local
            if prev_local is not None:
                prev_local = prev_local(frame, event, arg)
            if event == "line" and mono() > next_check:
                slow_check()
            return local
        return local

    def chained(frame, event, arg):
        prev_local = prev(frame, event, arg)
        if mono() > next_check:
            slow_check()
        return chained_local(prev_local)

    return check, chained
