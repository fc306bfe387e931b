"""Sandboxed evaluation of everything a process designer writes in Python.

Script tasks, pre/post scripts, gateway conditions, timer expressions, service-task parameters,
multi-instance expressions, message payloads/correlations and DMN cells all reach SpiffWorkflow's
script engine.  SpiffWorkflow 3.2.0 runs them with plain ``eval``/``exec`` and the full
``__builtins__``, so any of them could import modules, open files or reach the engine's objects;
:class:`RestrictedEnvironment` replaces that with RestrictedPython, in three parts:

* compilation (:mod:`engine.runtime.script_compile`): code is compiled with
  ``compile_restricted_eval``/``compile_restricted_exec`` under :class:`RegflowPolicy` (RestrictedPython's
  policy, plus: no ``import``, no ``class``), and cached per source text;
* what scripts reach (:mod:`engine.runtime.script_builtins`): guarded globals (``_getattr_`` built on
  ``safer_getattr``, guarded item/iter/unpack access, a write guard that only lets plain ``dict``/``list``
  be mutated) and a whitelist of builtins; ``type``, ``getattr`` on ``_`` names, ``open``, ``globals``,
  ``str.format`` … are refused. Domain helpers: ``datetime``, ``date``, ``timedelta``, ``timezone``
  (classes), ``math``, ``now()`` (regflow's injectable clock) and whatever is added with
  :func:`register_helper` (e.g. ``workdays(n)``);
* the time budget (:mod:`engine.runtime.script_budget`): every call runs under a wall-clock budget
  (``time_budget_s``, default 2 s) enforced with a ``sys.settrace`` tracer that raises
  :class:`ScriptTimeout` (chained to any tracer already installed, e.g. coverage or a debugger, and
  restored afterwards).  Because CPython switches tracing off once a trace function raises, every
  ``except``/``finally`` body in a script starts with an injected deadline check, so ``try: … except
  Exception: pass`` inside ``while True`` cannot swallow the timeout.  Loop bodies check the deadline too:
  CPython 3.11 emits no trace event for ``while True: pass`` (a jump to itself).  The tracer is only
  installed when the code can loop or call Python code (loops, comprehensions, ``lambda``/``def``, calls
  to helpers); a plain condition such as ``amount > 1000 and region == 'east'`` runs without it.

This module puts them together: the environment and the script engine. The names of all three parts that
callers use are importable from here.

Not covered in-process: a single huge C-level operation (``'a' * 10**11``, ``10 ** 10 ** 8``)
cannot be interrupted by a tracer; run engine steps in workers with a memory limit.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, Callable, Literal, Mapping

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import clock
from .script_budget import DEFAULT_TIME_BUDGET_S, ScriptTimeout, make_tracer
from .script_builtins import (
    BASE_BUILTINS,
    C_CALLS,
    GUARD_NAMES,
    GUARDS,
    HELPERS,
    PLAIN_TYPES,
    ForbiddenOperation,
    check_helper_name,
    is_environment_value,
    register_helper,
    registered_helpers,
    unregister_helper,
)
from .script_compile import (
    DEADLINE_GUARD,
    SCRIPT_FILENAME,
    Compiled,
    RegflowPolicy,
    ScriptCompileError,
    compile_check,
    compiled_or_raise,
)

__all__ = [
    "DEADLINE_GUARD",
    "DEFAULT_TIME_BUDGET_S",
    "GUARD_NAMES",
    "SCRIPT_FILENAME",
    "ForbiddenOperation",
    "RegflowPolicy",
    "RestrictedEnvironment",
    "RestrictedScriptEngine",
    "ScriptCompileError",
    "ScriptTimeout",
    "ServiceNotConfigured",
    "compile_check",
    "register_helper",
    "registered_helpers",
    "unregister_helper",
]


class ServiceNotConfigured(NotImplementedError):
    """A service task was reached but no service registry is wired into the script engine."""


def _default_clock() -> datetime:
    return clock.now()


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment running RestrictedPython-compiled code under a time budget.

    Semantics follow ``TaskDataEnvironment``: ``evaluate`` sees task data (and the external
    context) as globals and returns the value; ``execute`` runs with the task-data dict itself as
    globals, refuses task data that would hide a helper, and afterwards removes from it everything
    that is not data (guards, ``__builtins__``, functions, modules, iterators).
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
    ):
        if time_budget_s is None or time_budget_s <= 0:
            raise ValueError("time_budget_s must be positive")
        self.clock: Callable[[], datetime] = clock or _default_clock
        self.time_budget_s = float(time_budget_s)
        self._own_helpers = dict(helpers or {})
        for name, fn in self._own_helpers.items():
            check_helper_name(name)
            if not callable(fn):
                raise TypeError(f"helper {name!r} must be callable")
        super().__init__(dict(GUARDS))
        self._helpers_version = -1
        self._builtins: dict[str, Any] = {}
        self._helper_names: frozenset[str] = frozenset()
        self._refresh_helpers()

    # -- helpers ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock()

    def _refresh_helpers(self) -> None:
        version, registry, bounded = HELPERS.snapshot()
        helpers: dict[str, Callable[..., Any]] = {"now": self._now}
        helpers.update(registry)
        helpers.update(self._own_helpers)
        builtins = dict(BASE_BUILTINS)
        builtins.update(helpers)
        self._builtins = builtins
        self._helper_names = frozenset(helpers)
        # what a call may reach without the tracer: C builtins no helper shadows, ``now`` and bounded helpers
        # (a constructor helper of the same name replaces a registered one, bounded or not)
        self._untraced_calls = (C_CALLS - self._helper_names) | {"now"} | frozenset(
            n for n in bounded if n not in self._own_helpers)
        self._reserved = frozenset(self._helper_names | set(self.globals) | {"__builtins__"})
        self._strip_names = tuple(GUARD_NAMES | set(self.globals))
        self._helpers_version = version

    @property
    def helpers(self) -> dict[str, Callable[..., Any]]:
        """Helper functions visible to scripts (``now`` plus registered and constructor helpers)."""
        self._sync()
        return {name: self._builtins[name] for name in self._helper_names}

    def _sync(self) -> None:
        if self._helpers_version != HELPERS.version:
            self._refresh_helpers()

    # -- SpiffWorkflow interface --------------------------------------------------------------

    def evaluate(self, expression, context, external_context=None):
        compiled = compiled_or_raise(expression, "eval")
        self._sync()
        my_globals: dict[str, Any] = {}
        if external_context:
            my_globals.update(external_context)
        my_globals.update(context)
        # Guards last: task data (e.g. a submitted form) must never replace them.
        my_globals.update(self.globals)
        my_globals["__builtins__"] = self._builtins
        return self._run(compiled, my_globals, eval)

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        self.check_for_overwrite(context, external_context)
        compiled = compiled_or_raise(script, "exec")
        self._sync()
        context.update(external_context)
        context.update(self.globals)
        context["__builtins__"] = self._builtins
        try:
            self._run(compiled, context, exec)
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        return True

    def call_service(self, context, **kwargs):
        raise ServiceNotConfigured(
            f"service operator {kwargs.get('operation_name')!r} was called, but this script engine has no "
            "service registry: subclass RestrictedScriptEngine and override call_service")

    def check_for_overwrite(self, context, external_context):
        """Fail fast when task data would hide a helper function (SpiffWorkflow's behaviour).

        Classes (``date``, ``datetime`` …) may be shadowed freely: ``date`` is a common field name.
        """
        self._sync()
        clashes = set(self._reserved.intersection(context))
        if external_context:
            clashes.update(k for k in external_context if k in context)
        if clashes:
            raise ValueError(
                "You have task data that overwrites a predefined function(s). Please change the following "
                f"variable or field name(s) to something else: {sorted(clashes)}")

    def _remove_globals_and_functions_from_context(self, context, external_context=None):
        pop = context.pop
        for key in self._strip_names:
            pop(key, None)
        if external_context:
            for key in external_context:
                pop(key, None)
        plain = PLAIN_TYPES
        for key in [k for k, v in context.items() if type(v) not in plain and is_environment_value(v)]:
            del context[key]

    # -- running ------------------------------------------------------------------------------

    def needs_tracer(self, source: str, mode: Literal["eval", "exec"] = "eval") -> bool:
        """Whether running ``source`` installs the time-budget tracer (for tests and measurements)."""
        return self._needs_tracer(compiled_or_raise(source, mode))

    def _needs_tracer(self, compiled: Compiled) -> bool:
        return (compiled.loops or compiled.other_calls or not compiled.called <= self._untraced_calls
                or not compiled.values.isdisjoint(self._helper_names))

    def _run(self, compiled: Compiled, my_globals: dict[str, Any], runner: Callable[..., Any]) -> Any:
        traced = self._needs_tracer(compiled)
        if not traced and runner is eval:
            # A loop-free expression calling only C builtins: nothing to budget (fast path).
            return eval(compiled.code, my_globals)
        budget = self.time_budget_s
        deadline = time.monotonic() + budget
        source = compiled.source

        def timeout() -> ScriptTimeout:
            return ScriptTimeout(budget, source)

        def deadline_check() -> None:
            if time.monotonic() > deadline:
                raise timeout()

        my_globals[DEADLINE_GUARD] = deadline_check
        if not traced:
            return runner(compiled.code, my_globals)
        prev = sys.gettrace()
        sys.settrace(make_tracer(deadline, prev, timeout))
        try:
            return runner(compiled.code, my_globals)
        finally:
            sys.settrace(prev)


# --------------------------------------------------------------------------------------------------
# Script engine


class RestrictedScriptEngine(PythonScriptEngine):
    """``PythonScriptEngine`` wired to :class:`RestrictedEnvironment`.

    The engine's own subclass overrides :meth:`call_service` (on the engine: SpiffWorkflow's service task
    calls the engine's ``call_service``, not the environment's).  Errors keep SpiffWorkflow's shape: a failing
    ``evaluate``/``execute`` raises ``WorkflowTaskException``; this engine also sets its ``.exception`` to the
    original error
    (``ScriptTimeout``, ``ScriptCompileError``, ``ForbiddenOperation``, ``NameError`` …), which
    SpiffWorkflow only keeps as ``__context__`` and ``error_type``.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        helpers: Mapping[str, Callable[..., Any]] | None = None,
    ):
        super().__init__(environment=RestrictedEnvironment(clock=clock, time_budget_s=time_budget_s,
                                                           helpers=helpers))

    def evaluate(self, task, expression, external_context=None):
        try:
            return super().evaluate(task, expression, external_context)
        except Exception as exc:
            _attach_original(exc)
            raise

    def execute(self, task, script, external_context=None):
        try:
            return super().execute(task, script, external_context)
        except Exception as exc:
            _attach_original(exc)
            raise

    def call_service(self, task, **kwargs):
        bpmn_id = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        raise ServiceNotConfigured(
            f"service task {bpmn_id!r} called operator {kwargs.get('operation_name')!r}, but this script "
            "engine has no service registry: subclass RestrictedScriptEngine and override call_service")

    def get_error_line_number_and_content(self, script, err):
        # SpiffWorkflow indexes script.splitlines() with the error's line number; never let a line
        # number that does not fit the script (e.g. from an expression) break error reporting.
        try:
            return super().get_error_line_number_and_content(script, err)
        except (IndexError, TypeError, AttributeError):
            return 0, ""


def _attach_original(exc: BaseException) -> None:
    """Give SpiffWorkflow's wrapper the error it wraps as ``.exception`` (it keeps only the name)."""
    if getattr(exc, "exception", None) is not None:
        return
    original = exc.__context__
    if original is not None and original is not exc and getattr(exc, "error_type", None) == type(original).__name__:
        try:
            exc.exception = original
        except AttributeError:  # pragma: no cover - exceptions normally take attributes
            pass
