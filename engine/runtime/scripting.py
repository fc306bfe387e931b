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
  (classes), ``math``, ``now()`` (regflow's injectable clock) and whatever is registered on the environment's
  :class:`HelperRegistry` (a runtime owns one, ``runtime.helpers``: e.g. the calendar's ``workdays(n)``);
* the budget (:mod:`engine.runtime.script_budget`): every call runs under a wall-clock budget
  (``time_budget_s``, default 2 s). The compiler injects a deadline check into every loop body, comprehension
  (per element), function and ``lambda`` (per call), and every ``except``/``finally`` body (so that ``try: …
  except Exception: pass`` cannot swallow the :class:`ScriptTimeout`); the check also samples the process's
  memory (:class:`ScriptLimitExceeded` past ``ScriptLimits.max_memory_mb`` of growth).  Code that calls
  Python code the compiler did not see (a helper not registered as bounded, something that is neither a name
  nor a method) also runs under a ``sys.settrace`` tracer doing the same checks (chained to any tracer already
  installed, e.g. coverage or a debugger, and restored afterwards).  A plain condition such as
  ``amount > 1000 and region == 'east'`` runs without either.  Neither can interrupt C code, so what could make
  a huge value in one C call (``'a' * 10**11``, ``10 ** 10 ** 8``, ``range(10**9)`` handed to ``sum``,
  ``'x'.ljust(10**10)``, ``f'{1:>{10**9}}'`` …) is size-checked before it runs: :class:`ScriptLimitExceeded`
  names the operation.

This module puts them together: the environment and the script engine. The names of all three parts that
callers use are importable from here.

Not covered in-process: one C operation over a structure a loop built with many references to one large
value (``for i in range(10**6): rows.append(big)`` then ``sorted(rows)``) still runs to its end; run engine
steps in workers with a memory limit (``resource.setrlimit``) for that.
"""
from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, Callable, Literal, Mapping

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import clock
from .script_budget import (
    DEFAULT_TIME_BUDGET_S,
    ScriptLimitExceeded,
    ScriptLimits,
    ScriptResourceError,
    ScriptTimeout,
)
from .script_builtins import (
    C_CALLS,
    GUARD_NAMES,
    PLAIN_TYPES,
    ForbiddenOperation,
    HelperRegistry,
    is_environment_value,
    sandbox,
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
from .script_watch import make_watch

__all__ = [
    "DEADLINE_GUARD",
    "DEFAULT_TIME_BUDGET_S",
    "GUARD_NAMES",
    "SCRIPT_FILENAME",
    "ForbiddenOperation",
    "HelperRegistry",
    "Helpers",
    "RegflowPolicy",
    "RestrictedEnvironment",
    "RestrictedScriptEngine",
    "ScriptCompileError",
    "ScriptLimitExceeded",
    "ScriptLimits",
    "ScriptResourceError",
    "ScriptTimeout",
    "ServiceNotConfigured",
    "compile_check",
    "helper_registry",
]

#: a registry, a mapping of name -> helper (unbounded), or None (no helpers)
Helpers = HelperRegistry | Mapping[str, Callable[..., Any]] | None


class ServiceNotConfigured(NotImplementedError):
    """A service task was reached but no service registry is wired into the script engine."""


def _default_clock() -> datetime:
    return clock.now()


def helper_registry(helpers: Helpers) -> HelperRegistry:
    """``helpers`` itself if it is a registry, else a new registry holding the mapping's helpers."""
    return helpers if isinstance(helpers, HelperRegistry) else HelperRegistry(helpers)


class _View:
    """What an environment derives from its registry's helpers, its clock and its limits (shared by every
    environment with the same three: built once per registry version)."""

    __slots__ = ("version", "builtins", "helper_names", "untraced_calls", "reserved")

    def __init__(self, version: int, helpers: dict[str, Callable[..., Any]], bounded: frozenset[str],
                 now: Callable[[], datetime], base: Mapping[str, Any], guard_names: frozenset[str]):
        helpers = {"now": now, **helpers}
        self.version = version
        self.builtins = {**base, **helpers}
        self.helper_names = frozenset(helpers)
        # what a call may reach without the tracer: C builtins no helper shadows, ``now`` and bounded helpers
        self.untraced_calls = (C_CALLS - self.helper_names) | {"now"} | (bounded & self.helper_names)
        self.reserved = self.helper_names | guard_names | {"__builtins__"}


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow script environment running RestrictedPython-compiled code under a time budget.

    Semantics follow ``TaskDataEnvironment``: ``evaluate`` sees task data (and the external
    context) as globals and returns the value; ``execute`` runs with the task-data dict itself as
    globals, refuses task data that would hide a helper, and afterwards removes from it everything
    that is not data (guards, ``__builtins__``, functions, modules, iterators).

    ``helpers``: the :class:`HelperRegistry` to read (shared: a change shows on the next call), or a mapping
    of helpers for this environment alone. ``limits``: sizes and memory (:class:`ScriptLimits`).
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        helpers: Helpers = None,
        limits: ScriptLimits | None = None,
    ):
        if time_budget_s is None or time_budget_s <= 0:
            raise ValueError("time_budget_s must be positive")
        self.clock: Callable[[], datetime] = clock or _default_clock
        self.time_budget_s = float(time_budget_s)
        self.registry = helper_registry(helpers)
        self.limits = limits or ScriptLimits()
        box = sandbox(self.limits)
        super().__init__(dict(box.globals))
        self._box = box
        self._memory = self.limits.memory_bytes
        self._strip_names = tuple(GUARD_NAMES | set(self.globals))
        self._view = self._current_view()

    # -- helpers ------------------------------------------------------------------------------

    def _current_view(self) -> _View:
        box, guard_names = self._box, frozenset(self.globals)
        return self.registry.derived(
            (self.clock, self.limits),
            lambda version, helpers, bounded: _View(version, helpers, bounded, self.clock, box.builtins,
                                                    guard_names))

    def _sync(self) -> _View:
        view = self._view
        if view.version != self.registry.version:
            view = self._view = self._current_view()
        return view

    @property
    def helpers(self) -> dict[str, Callable[..., Any]]:
        """Helper functions visible to scripts (``now`` plus the registry's)."""
        view = self._sync()
        return {name: view.builtins[name] for name in view.helper_names}

    # -- SpiffWorkflow interface --------------------------------------------------------------

    def evaluate(self, expression, context, external_context=None):
        compiled = compiled_or_raise(expression, "eval")
        view = self._sync()
        my_globals: dict[str, Any] = {}
        if external_context:
            my_globals.update(external_context)
        my_globals.update(context)
        # Guards last: task data (e.g. a submitted form) must never replace them.
        my_globals.update(self.globals)
        my_globals["__builtins__"] = view.builtins
        return self._run(compiled, my_globals, eval, view)

    def execute(self, script, context, external_context=None):
        """Run ``script`` in ``context`` (the task's data). A script that fails leaves the names of ``context``
        bound as they were before it ran (a half-built value — the list a runaway loop filled up to the memory
        limit — never reaches the saved state or the incident); changes made in place to values that were
        already there are not undone."""
        external_context = external_context or {}
        self.check_for_overwrite(context, external_context)
        compiled = compiled_or_raise(script, "exec")
        view = self._sync()
        before = dict(context)
        context.update(external_context)
        context.update(self.globals)
        context["__builtins__"] = view.builtins
        try:
            self._run(compiled, context, exec, view)
        except BaseException:
            context.clear()
            context.update(before)
            raise
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
        clashes = set(self._sync().reserved.intersection(context))
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
        """Whether running ``source`` installs the time budget's tracer (for tests and measurements)."""
        return self._needs_tracer(compiled_or_raise(source, mode), self._sync())

    @staticmethod
    def _needs_tracer(compiled: Compiled, view: _View) -> bool:
        # Python code the compiler did not see: a helper that is not bounded (called, or handed on as a value)
        # or a call of something that is neither a name nor a method
        return (compiled.other_calls or not compiled.called <= view.untraced_calls
                or not compiled.values.isdisjoint(view.helper_names))

    def _run(self, compiled: Compiled, my_globals: dict[str, Any], runner: Callable[..., Any], view: _View) -> Any:
        traced = self._needs_tracer(compiled, view)
        if not traced and not compiled.loops and DEADLINE_GUARD not in compiled.code.co_names:
            # Loop-free code calling only C builtins, size-checked ones and bounded helpers: nothing to watch
            return runner(compiled.code, my_globals)
        prev = sys.gettrace()
        check, tracer = make_watch(self.time_budget_s, compiled.source, self._memory, prev, self._box.quiet)
        my_globals[DEADLINE_GUARD] = check
        if not traced:
            return runner(compiled.code, my_globals)
        sys.settrace(tracer)
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
    (``ScriptTimeout``, ``ScriptLimitExceeded``, ``ScriptCompileError``, ``ForbiddenOperation``, ``NameError`` …), which
    SpiffWorkflow only keeps as ``__context__`` and ``error_type``.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        helpers: Helpers = None,
        limits: ScriptLimits | None = None,
    ):
        super().__init__(environment=RestrictedEnvironment(clock=clock, time_budget_s=time_budget_s,
                                                           helpers=helpers, limits=limits))

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
