"""Sandboxed evaluation of everything a process designer writes in Python.

Script tasks, pre/post scripts, gateway conditions, timer expressions, service-task parameters,
multi-instance expressions, message payloads/correlations and DMN cells all reach SpiffWorkflow's
script engine.  SpiffWorkflow 3.2.0 runs them with plain ``eval``/``exec`` and the full
``__builtins__`` (SPIFF.md §3); :class:`RestrictedEnvironment` replaces that with RestrictedPython:

* code is compiled with ``compile_restricted_eval``/``compile_restricted_exec`` under
  :class:`RegflowPolicy` (RestrictedPython's policy, plus: no ``import``, no ``class``), and cached
  per source text;
* it runs with guarded globals (``_getattr_`` built on ``safer_getattr``, guarded item/iter/unpack access,
  a write guard that only lets plain ``dict``/``list`` be mutated) and a whitelist of builtins;
  ``type``, ``getattr`` on ``_`` names, ``open``, ``globals``, ``str.format`` … are refused;
* every call runs under a wall-clock budget (``time_budget_s``, default 2 s) enforced with a
  ``sys.settrace`` tracer that raises :class:`ScriptTimeout` (chained to any tracer already
  installed, e.g. coverage or a debugger, and restored afterwards).  Because CPython switches
  tracing off once a trace function raises, every ``except``/``finally`` body in a script starts
  with an injected deadline check, so ``try: … except Exception: pass`` inside ``while True`` cannot
  swallow the timeout.  Loop bodies check the deadline too: CPython 3.11 emits no trace event for
  ``while True: pass`` (a jump to itself).  The tracer is only installed when the code can loop or call Python code
  (loops, comprehensions, ``lambda``/``def``, calls to helpers); a plain condition such as
  ``amount > 1000 and region == 'east'`` runs without it.

Domain helpers: ``datetime``, ``date``, ``timedelta``, ``timezone`` (classes), ``math``, ``now()``
(regflow's injectable clock) and whatever is added with :func:`register_helper` (e.g.
``workdays(n)``).  They live in the restricted ``__builtins__``, so task data may use the same names
(a form field called ``date`` simply shadows the class) and nothing of the environment is ever left
behind in task data.

Not covered in-process: a single huge C-level operation (``'a' * 10**11``, ``10 ** 10 ** 8``)
cannot be interrupted by a tracer; run engine steps in workers with a memory limit.
"""
from __future__ import annotations

import ast
import functools
import keyword
import math
import operator
import sys
import textwrap
import threading
import time
import types
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Literal, Mapping

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

__all__ = [
    "DEFAULT_TIME_BUDGET_S",
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

DEFAULT_TIME_BUDGET_S = 2.0

#: file name given to compiled code; SpiffWorkflow looks for it in tracebacks to report line numbers
SCRIPT_FILENAME = "<string>"

#: name of the deadline check injected at the top of every ``except``/``finally`` body
DEADLINE_GUARD = "_deadline_check_"


# --------------------------------------------------------------------------------------------------
# Errors


class ScriptTimeout(Exception):
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


class ScriptCompileError(SyntaxError):
    """The source does not compile under regflow's restrictions.

    A ``SyntaxError`` subclass so that SpiffWorkflow's error reporting picks up ``lineno``.
    """

    def __init__(self, message: str, source: str, lineno: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.lineno = lineno or 0
        lines = source.splitlines() if source else []
        self.text = lines[self.lineno - 1] if 0 < self.lineno <= len(lines) else None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.lineno))


class ForbiddenOperation(Exception):
    """A script called something the sandbox does not offer (``type``, ``open``, ``globals`` …)."""


class ServiceNotConfigured(NotImplementedError):
    """A service task was reached but no service registry is wired into the script engine."""


def _first_line(source: str) -> str:
    for line in source.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 80 else line[:77] + "..."
    return ""


# --------------------------------------------------------------------------------------------------
# Compilation


class RegflowPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, tightened for process scripts."""

    def visit_Import(self, node):  # noqa: N802 (ast visitor naming)
        self.error(node, "import statements are not allowed; use the provided helpers.")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):  # noqa: N802
        self.error(node, "class definitions are not allowed.")
        return node

    def visit_Call(self, node):  # noqa: N802
        # Task data is never callable, so calling one of these names is always an error: report it
        # at compile (deploy) time.  Other references still hit the runtime blocker.
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_BUILTINS:
            self.error(node, f"{node.func.id}() is not available in process scripts and expressions.")
        return super().visit_Call(node)

    def visit_Try(self, node):  # noqa: N802
        node = super().visit_Try(node)
        # CPython disables a trace function that raised; a script catching ScriptTimeout would then
        # run on untraced.  Re-check the deadline first thing in every handler and finally block.
        for handler in node.handlers:
            handler.body.insert(0, _deadline_stmt(handler.body[0] if handler.body else handler))
        if node.finalbody:
            node.finalbody.insert(0, _deadline_stmt(node.finalbody[0]))
        return node

    def visit_While(self, node):  # noqa: N802
        # CPython 3.11 emits no trace event for a loop that jumps to itself (``while True: pass``),
        # so every loop body checks the deadline itself as well.
        node = super().visit_While(node)
        node.body.insert(0, _deadline_stmt(node.body[0]))
        return node

    def visit_For(self, node):  # noqa: N802
        node = super().visit_For(node)
        node.body.insert(0, _deadline_stmt(node.body[0]))
        return node


def _deadline_stmt(anchor: ast.AST) -> ast.stmt:
    call = ast.Call(func=ast.Name(DEADLINE_GUARD, ast.Load()), args=[], keywords=[])
    stmt = ast.Expr(value=call)
    for n in (stmt, call, call.func):
        ast.copy_location(n, anchor)
    return stmt


#: loops, comprehensions and Python-level callables: code that can run for long in Python bytecode
_LOOPING_NODES = (
    ast.While, ast.For, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef,
)


@dataclass(frozen=True)
class _Compiled:
    code: types.CodeType | None
    errors: tuple[str, ...]
    lineno: int | None
    #: the code contains a loop, comprehension, lambda or def
    loops: bool
    #: names called directly (``f(...)``); calls to C builtins need no tracer
    called: frozenset[str]
    #: every name the code reads (a helper passed as ``key=`` still runs Python code)
    names: frozenset[str]
    #: the code calls something that is neither a name nor a method (``f()()``, ``fns[0]()``)
    other_calls: bool
    source: str
    #: names read other than as the callee of a direct call (``map(workdays, …)`` passes ``workdays`` on)
    values: frozenset[str] = frozenset()


def _normalise(source: str, mode: str) -> str:
    if mode == "eval":
        # Python's eval() strips leading blanks; XML text often carries newlines and indentation.
        return source.strip()
    return textwrap.dedent(source)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> _Compiled:
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    text = _normalise(source, mode)
    compile_fn = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    if mode == "eval" and not text:
        return _Compiled(None, ("Line 1: empty expression",), 1, False, frozenset(), frozenset(), False, source)
    with warnings.catch_warnings():
        # e.g. SyntaxWarning for ``x is 1``: not an error for the designer, and the test suite turns
        # warnings into errors.
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text, SCRIPT_FILENAME, mode)
        except SyntaxError:
            tree = None
        if tree is None:
            # Let RestrictedPython format the syntax error the way it formats everything else.
            result = compile_fn(text, SCRIPT_FILENAME, policy=RegflowPolicy)
        else:
            loops = False
            called: set[str] = set()
            names: set[str] = set()
            other = False
            callees: set[int] = set()  # the Name nodes that are the callee of a direct call
            name_nodes: list[ast.Name] = []
            for node in ast.walk(tree):
                if isinstance(node, _LOOPING_NODES):
                    loops = True
                elif isinstance(node, ast.Name):
                    names.add(node.id)
                    name_nodes.append(node)
                elif isinstance(node, ast.Call):
                    if isinstance(node.func, ast.Name):
                        called.add(node.func.id)
                        callees.add(id(node.func))
                    elif not isinstance(node.func, ast.Attribute):
                        # Methods (``x.get()``, ``datetime.now()``) belong to plain data and C classes.
                        other = True
            values = frozenset(n.id for n in name_nodes if id(n) not in callees)
            result = compile_fn(tree, SCRIPT_FILENAME, policy=RegflowPolicy)
    errors = tuple(result.errors)
    if errors or result.code is None:
        errors = errors or ("Line 1: could not compile",)
        return _Compiled(None, errors, _lineno_of(errors[0]), False, frozenset(), frozenset(), False, source)
    return _Compiled(result.code, (), None, loops, frozenset(called), frozenset(names), other, source, values)


def _lineno_of(message: str) -> int | None:
    # RestrictedPython formats errors as "Line <n>: ..."
    if message.startswith("Line "):
        head = message[5:].split(":", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def compile_check(source: str, mode: Literal["eval", "exec"]) -> list[str]:
    """Error messages for ``source`` compiled in ``mode`` (empty if it would run); for deploy checks."""
    if source is None:
        return ["no source given"]
    return list(_compile(source, mode).errors)


def _compiled_or_raise(source: str, mode: str) -> _Compiled:
    if not isinstance(source, str):
        raise TypeError(f"expected a string to {'evaluate' if mode == 'eval' else 'execute'}, "
                        f"got {type(source).__name__}")
    compiled = _compile(source, mode)
    if compiled.code is None:
        raise ScriptCompileError("; ".join(compiled.errors), source, compiled.lineno)
    return compiled


# --------------------------------------------------------------------------------------------------
# Helper registry


_HELPERS: dict[str, Callable[..., Any]] = {}
#: helpers registered with ``bounded=True``
_BOUNDED: set[str] = set()
_HELPERS_LOCK = threading.Lock()
_HELPERS_VERSION = 0


def _check_helper_name(name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"helper name {name!r} is not a Python identifier")
    if name.startswith("_"):
        raise ValueError(f"helper name {name!r} may not start with '_' (scripts cannot reach it)")
    if name in _FORBIDDEN_BUILTINS:
        raise ValueError(f"helper name {name!r} is reserved")


def register_helper(name: str, fn: Callable[..., Any], *, replace: bool = False, bounded: bool = False) -> None:
    """Offer ``fn`` to every script and expression as ``name`` (e.g. ``workdays``).

    Helpers run unrestricted Python with whatever arguments a script passes: keep them small,
    side-effect free and returning plain data.  Environments pick up new helpers on their next call.

    A script that calls a helper runs under the time budget's line tracer, which costs tens of
    microseconds per call. ``bounded``: the helper bounds its own work whatever the arguments (it refuses
    those that would make it run long, as the calendar's refuse counts above ``MAX_COUNT`` days), so an
    expression without loops that calls only C builtins and bounded helpers, and passes no helper on as a
    value, runs without the tracer, like one that calls only C builtins."""
    global _HELPERS_VERSION
    _check_helper_name(name)
    if not callable(fn):
        raise TypeError(f"helper {name!r} must be callable")
    with _HELPERS_LOCK:
        if name in _HELPERS and _HELPERS[name] is not fn and not replace:
            raise ValueError(f"helper {name!r} is already registered (pass replace=True)")
        _HELPERS[name] = fn
        if bounded:
            _BOUNDED.add(name)
        else:
            _BOUNDED.discard(name)
        _HELPERS_VERSION += 1


def unregister_helper(name: str) -> None:
    global _HELPERS_VERSION
    with _HELPERS_LOCK:
        _BOUNDED.discard(name)
        if _HELPERS.pop(name, None) is not None:
            _HELPERS_VERSION += 1


def registered_helpers() -> dict[str, Callable[..., Any]]:
    with _HELPERS_LOCK:
        return dict(_HELPERS)


# --------------------------------------------------------------------------------------------------
# Builtins and guards


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "&=": operator.iand, "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    try:
        fn = _INPLACE_OPS[op]
    except KeyError:
        raise ForbiddenOperation(f"augmented assignment {op!r} is not supported") from None
    return fn(x, y)


def _getitem(ob: Any, index: Any) -> Any:
    return ob[index]


_RAISE = object()

#: the only attribute a script may read on an exception: ``AttributeError.obj`` and friends could
#: hand it objects from inside helpers or the engine
_EXCEPTION_ATTRIBUTES = frozenset({"args"})


def _guarded_getattr(obj: Any, name: str, default: Any = _RAISE) -> Any:
    """``safer_getattr`` (no ``_`` names, no ``str.format``, no frame/code attributes), raising
    ``AttributeError`` for a missing attribute as Python does, and closed on exception objects."""
    if isinstance(obj, BaseException) and name not in _EXCEPTION_ATTRIBUTES:
        raise AttributeError(f"{name!r} of an exception is not available in process scripts")
    if default is _RAISE:
        value = safer_getattr(obj, name, _RAISE)
        if value is _RAISE:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
        return value
    return safer_getattr(obj, name, default)


def _guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        _guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def _apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _forbidden(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenOperation(f"{name}() is not available in process scripts and expressions")
    refuse.__name__ = name
    return refuse


#: names a designer might try; each raises ForbiddenOperation with a clear message
_FORBIDDEN_BUILTINS = (
    "type", "eval", "exec", "compile", "globals", "locals", "vars", "dir", "open", "input",
    "breakpoint", "help", "memoryview", "object", "super", "iter", "id", "hash", "setattr",
    "delattr", "exit", "quit", "classmethod", "staticmethod", "property", "bytearray",
)

_ALLOWED_EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "UnicodeError", "ValueError", "ZeroDivisionError",
)

_ALLOWED_BUILTINS = (
    "abs", "all", "any", "bin", "bool", "bytes", "callable", "chr", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "frozenset", "hex", "int", "isinstance", "issubclass", "len",
    "list", "map", "max", "min", "next", "oct", "ord", "pow", "range", "repr", "reversed", "round",
    "set", "slice", "sorted", "str", "sum", "tuple", "zip",
)

#: builtins implemented in C: calling them cannot run Python code for long by itself (arguments
#: such as ``key=lambda …`` or generator expressions are detected separately)
_C_CALLS = frozenset(_ALLOWED_BUILTINS) | frozenset(_ALLOWED_EXCEPTIONS) | frozenset(
    {"datetime", "date", "timedelta", "timezone", "getattr", "hasattr", "print"} | set(_FORBIDDEN_BUILTINS))


def _base_builtins() -> dict[str, Any]:
    import builtins as py_builtins

    result: dict[str, Any] = {"None": None, "True": True, "False": False}
    for name in _ALLOWED_BUILTINS + _ALLOWED_EXCEPTIONS:
        result[name] = getattr(py_builtins, name)
    for name in _FORBIDDEN_BUILTINS:
        result[name] = _forbidden(name)
    result["getattr"] = _guarded_getattr  # refuses "_" names and str.format
    result["hasattr"] = _guarded_hasattr
    result["math"] = math
    result["datetime"] = datetime
    result["date"] = date
    result["timedelta"] = timedelta
    result["timezone"] = timezone
    return result


_BASE_BUILTINS = _base_builtins()

#: names put in every globals dict (and never left in task data)
GUARD_NAMES = frozenset({
    "__builtins__", "_getattr_", "_getitem_", "_getiter_", "_iter_unpack_sequence_",
    "_unpack_sequence_", "_write_", "_inplacevar_", "_apply_", "_print_", "_print", DEADLINE_GUARD,
})

_GUARDS: dict[str, Any] = {
    "_getattr_": _guarded_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,  # dict and list may be mutated; anything else is wrapped read-only
    "_inplacevar_": _inplacevar,
    "_apply_": _apply,
    "_print_": PrintCollector,
}

_LAZY_TYPES = (
    types.ModuleType, types.GeneratorType, range, PrintCollector,
    type({}.keys()), type({}.values()), type({}.items()),
)


#: types of plain task data, skipped quickly when cleaning up after a script
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), list, dict, tuple, datetime, date, timedelta})


def _is_environment_value(value: Any) -> bool:
    """Values a script may leave behind that are not data: functions, modules, iterators, views."""
    if callable(value) or isinstance(value, _LAZY_TYPES):
        return True
    return hasattr(type(value), "__next__")


# --------------------------------------------------------------------------------------------------
# Time budget


def _make_tracer(deadline: float, prev: Any, timeout: Callable[[], ScriptTimeout]) -> Any:
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


# --------------------------------------------------------------------------------------------------
# Environment


def _default_clock() -> datetime:
    from . import clock

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
            _check_helper_name(name)
            if not callable(fn):
                raise TypeError(f"helper {name!r} must be callable")
        super().__init__(dict(_GUARDS))
        self._helpers_version = -1
        self._builtins: dict[str, Any] = {}
        self._helper_names: frozenset[str] = frozenset()
        self._refresh_helpers()

    # -- helpers ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock()

    def _refresh_helpers(self) -> None:
        with _HELPERS_LOCK:
            version = _HELPERS_VERSION
            registry = dict(_HELPERS)
            bounded = set(_BOUNDED)
        helpers: dict[str, Callable[..., Any]] = {"now": self._now}
        helpers.update(registry)
        helpers.update(self._own_helpers)
        builtins = dict(_BASE_BUILTINS)
        builtins.update(helpers)
        self._builtins = builtins
        self._helper_names = frozenset(helpers)
        # what a call may reach without the tracer: C builtins no helper shadows, ``now`` and bounded helpers
        # (a constructor helper of the same name replaces a registered one, bounded or not)
        self._untraced_calls = (_C_CALLS - self._helper_names) | {"now"} | frozenset(
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
        if self._helpers_version != _HELPERS_VERSION:
            self._refresh_helpers()

    # -- SpiffWorkflow interface --------------------------------------------------------------

    def evaluate(self, expression, context, external_context=None):
        compiled = _compiled_or_raise(expression, "eval")
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
        compiled = _compiled_or_raise(script, "exec")
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
        plain = _PLAIN_TYPES
        for key in [k for k, v in context.items() if type(v) not in plain and _is_environment_value(v)]:
            del context[key]

    # -- running ------------------------------------------------------------------------------

    def needs_tracer(self, source: str, mode: Literal["eval", "exec"] = "eval") -> bool:
        """Whether running ``source`` installs the time-budget tracer (for tests and measurements)."""
        return self._needs_tracer(_compiled_or_raise(source, mode))

    def _needs_tracer(self, compiled: _Compiled) -> bool:
        return (compiled.loops or compiled.other_calls or not compiled.called <= self._untraced_calls
                or not compiled.values.isdisjoint(self._helper_names))

    def _run(self, compiled: _Compiled, my_globals: dict[str, Any], runner: Callable[..., Any]) -> Any:
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
        sys.settrace(_make_tracer(deadline, prev, timeout))
        try:
            return runner(compiled.code, my_globals)
        finally:
            sys.settrace(prev)


# --------------------------------------------------------------------------------------------------
# Script engine


class RestrictedScriptEngine(PythonScriptEngine):
    """``PythonScriptEngine`` wired to :class:`RestrictedEnvironment`.

    The engine's own subclass overrides :meth:`call_service` (on the engine, not the environment:
    SPIFF.md §7).  Errors keep SpiffWorkflow's shape: a failing ``evaluate``/``execute`` raises
    ``WorkflowTaskException``; this engine also sets its ``.exception`` to the original error
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
