"""What a process script can reach (:mod:`engine.runtime.scripting`): the whitelisted builtins, the domain
helpers, and the guards RestrictedPython's compiled code calls for attribute, item and iteration access.

Builtins: a whitelist of Python's (:data:`ALLOWED_BUILTINS`, :data:`ALLOWED_EXCEPTIONS`), each refused name
(:data:`~engine.runtime.script_compile.FORBIDDEN_BUILTINS`) bound to a function raising
:class:`ForbiddenOperation`, ``getattr``/``hasattr`` that refuse ``_`` names and ``str.format``, and the
classes and modules a designer needs (``datetime``, ``date``, ``timedelta``, ``timezone``, ``math``).

Helpers: ``now()`` (added by each environment, from its clock) and whatever is registered with
:func:`register_helper` (e.g. ``workdays(n)``), kept in :data:`HELPERS`. They live in the restricted
``__builtins__``, so task data may use the same names (a form field called ``date`` simply shadows the
class) and nothing of the environment is ever left behind in task data.
"""
from __future__ import annotations

import builtins as py_builtins
import keyword
import math
import operator
import threading
import types
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector

from engine.errors import ScriptError

from .script_compile import DEADLINE_GUARD, FORBIDDEN_BUILTINS

__all__ = [
    "ALLOWED_BUILTINS",
    "ALLOWED_EXCEPTIONS",
    "BASE_BUILTINS",
    "C_CALLS",
    "GUARDS",
    "GUARD_NAMES",
    "HELPERS",
    "PLAIN_TYPES",
    "ForbiddenOperation",
    "HelperRegistry",
    "check_helper_name",
    "is_environment_value",
    "register_helper",
    "registered_helpers",
    "unregister_helper",
]


class ForbiddenOperation(ScriptError):
    """A script called something the sandbox does not offer (``type``, ``open``, ``globals`` …)."""


# --------------------------------------------------------------------------------------------------
# Helper registry


def check_helper_name(name: str) -> None:
    """A helper's name must be an identifier scripts can reach and not a refused builtin's."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"helper name {name!r} is not a Python identifier")
    if name.startswith("_"):
        raise ValueError(f"helper name {name!r} may not start with '_' (scripts cannot reach it)")
    if name in FORBIDDEN_BUILTINS:
        raise ValueError(f"helper name {name!r} is reserved")


class HelperRegistry:
    """The helpers offered to every script; :attr:`version` changes with every change, so that an
    environment notices (it compares the version on each call and takes a :meth:`snapshot` when it moved)."""

    def __init__(self) -> None:
        self._helpers: dict[str, Callable[..., Any]] = {}
        #: helpers registered with ``bounded=True``
        self._bounded: set[str] = set()
        self._lock = threading.Lock()
        self.version = 0

    def register(self, name: str, fn: Callable[..., Any], *, replace: bool, bounded: bool) -> None:
        check_helper_name(name)
        if not callable(fn):
            raise TypeError(f"helper {name!r} must be callable")
        with self._lock:
            if name in self._helpers and self._helpers[name] is not fn and not replace:
                raise ValueError(f"helper {name!r} is already registered (pass replace=True)")
            self._helpers[name] = fn
            if bounded:
                self._bounded.add(name)
            else:
                self._bounded.discard(name)
            self.version += 1

    def unregister(self, name: str) -> None:
        with self._lock:
            self._bounded.discard(name)
            if self._helpers.pop(name, None) is not None:
                self.version += 1

    def helpers(self) -> dict[str, Callable[..., Any]]:
        with self._lock:
            return dict(self._helpers)

    def snapshot(self) -> tuple[int, dict[str, Callable[..., Any]], frozenset[str]]:
        """``(version, helpers, bounded helper names)``, taken together."""
        with self._lock:
            return self.version, dict(self._helpers), frozenset(self._bounded)


#: the helpers :func:`register_helper` registers (one registry per process)
HELPERS = HelperRegistry()


def register_helper(name: str, fn: Callable[..., Any], *, replace: bool = False, bounded: bool = False) -> None:
    """Offer ``fn`` to every script and expression as ``name`` (e.g. ``workdays``).

    Helpers run unrestricted Python with whatever arguments a script passes: keep them small,
    side-effect free and returning plain data.  Environments pick up new helpers on their next call.

    A script that calls a helper runs under the time budget's line tracer, which costs tens of
    microseconds per call. ``bounded``: the helper bounds its own work whatever the arguments (it refuses
    those that would make it run long, as the calendar's refuse counts above ``MAX_COUNT`` days), so an
    expression without loops that calls only C builtins and bounded helpers, and passes no helper on as a
    value, runs without the tracer, like one that calls only C builtins."""
    HELPERS.register(name, fn, replace=replace, bounded=bounded)


def unregister_helper(name: str) -> None:
    HELPERS.unregister(name)


def registered_helpers() -> dict[str, Callable[..., Any]]:
    return HELPERS.helpers()


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


ALLOWED_EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "UnicodeError", "ValueError", "ZeroDivisionError",
)

ALLOWED_BUILTINS = (
    "abs", "all", "any", "bin", "bool", "bytes", "callable", "chr", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "frozenset", "hex", "int", "isinstance", "issubclass", "len",
    "list", "map", "max", "min", "next", "oct", "ord", "pow", "range", "repr", "reversed", "round",
    "set", "slice", "sorted", "str", "sum", "tuple", "zip",
)

#: builtins implemented in C: calling them cannot run Python code for long by itself (arguments
#: such as ``key=lambda …`` or generator expressions are detected separately)
C_CALLS = frozenset(ALLOWED_BUILTINS) | frozenset(ALLOWED_EXCEPTIONS) | frozenset(
    {"datetime", "date", "timedelta", "timezone", "getattr", "hasattr", "print"} | set(FORBIDDEN_BUILTINS))


def _base_builtins() -> dict[str, Any]:
    result: dict[str, Any] = {"None": None, "True": True, "False": False}
    for name in ALLOWED_BUILTINS + ALLOWED_EXCEPTIONS:
        result[name] = getattr(py_builtins, name)
    for name in FORBIDDEN_BUILTINS:
        result[name] = _forbidden(name)
    result["getattr"] = _guarded_getattr  # refuses "_" names and str.format
    result["hasattr"] = _guarded_hasattr
    result["math"] = math
    result["datetime"] = datetime
    result["date"] = date
    result["timedelta"] = timedelta
    result["timezone"] = timezone
    return result


#: the restricted ``__builtins__`` before helpers are added (an environment copies it)
BASE_BUILTINS = _base_builtins()

#: names put in every globals dict (and never left in task data)
GUARD_NAMES = frozenset({
    "__builtins__", "_getattr_", "_getitem_", "_getiter_", "_iter_unpack_sequence_",
    "_unpack_sequence_", "_write_", "_inplacevar_", "_apply_", "_print_", "_print", DEADLINE_GUARD,
})

#: the guards RestrictedPython's compiled code calls, by the names it calls them
GUARDS: dict[str, Any] = {
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
PLAIN_TYPES = frozenset({str, int, float, bool, type(None), list, dict, tuple, datetime, date, timedelta})


def is_environment_value(value: Any) -> bool:
    """Values a script may leave behind that are not data: functions, modules, iterators, views."""
    if callable(value) or isinstance(value, _LAZY_TYPES):
        return True
    return hasattr(type(value), "__next__")
