"""The wall-clock budget of one script or expression (:mod:`engine.runtime.scripting`).

A call that can loop or call Python code runs under a ``sys.settrace`` tracer (:func:`make_tracer`) that
raises :class:`ScriptTimeout` once the deadline has passed, chained to any tracer already installed
(coverage, a debugger). CPython switches tracing off once a trace function raises, and emits no trace event
for a loop that jumps to itself; the compiler therefore injects a deadline check
(:data:`~engine.runtime.script_compile.DEADLINE_GUARD`) at the top of every loop, ``except`` and ``finally``
body, which the environment binds to the same deadline.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from engine.errors import ScriptError

__all__ = ["DEFAULT_TIME_BUDGET_S", "ScriptTimeout", "make_tracer"]

DEFAULT_TIME_BUDGET_S = 2.0


class ScriptTimeout(ScriptError):
    """A script or expression ran past its wall-clock budget."""

    def __init__(self, budget_s: float, source: str | None = None):
        self.budget_s = budget_s
        self.source = source
        where = ""
        if source:
            first = _first_line(source)
            where = f" in {first!r}"
        super().__init__(f"script exceeded its time budget of {budget_s:g}s{where}")

    def __reduce__(self):
        return (type(self), (self.budget_s, self.source))


def _first_line(source: str) -> str:
    for line in source.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 80 else line[:77] + "..."
    return ""


def make_tracer(deadline: float, prev: Any, timeout: Callable[[], ScriptTimeout]) -> Any:
    """A global trace function raising ``timeout()`` past ``deadline`` (``time.monotonic``), calling ``prev``
    (the trace function installed before, if any) for every event as well."""
    mono = time.monotonic
    if prev is None:
        def local(frame, event, arg):
            if event == "line" and mono() > deadline:
                raise timeout()
            return local

        def global_trace(frame, event, arg):
            if mono() > deadline:
                raise timeout()
            return local

        return global_trace

    def chained_local(prev_local):
        def local(frame, event, arg):
            nonlocal prev_local
            if prev_local is not None:
                prev_local = prev_local(frame, event, arg)
            if event == "line" and mono() > deadline:
                raise timeout()
            return local
        return local

    def global_trace(frame, event, arg):
        prev_local = prev(frame, event, arg)
        if mono() > deadline:
            raise timeout()
        return chained_local(prev_local)

    return global_trace
