"""What a process script can reach (:mod:`engine.runtime.scripting`): the whitelisted builtins, the domain
helpers, and the guards RestrictedPython's compiled code calls for attribute, item and iteration access.

Builtins: a whitelist of Python's (:data:`ALLOWED_BUILTINS`, :data:`ALLOWED_EXCEPTIONS`), each refused name
(:data:`~engine.runtime.script_compile.FORBIDDEN_BUILTINS`) bound to a function raising
:class:`ForbiddenOperation`, ``getattr``/``hasattr`` that refuse ``_`` names and ``str.format``, and the
classes and modules a designer needs (``datetime``, ``date``, ``timedelta``, ``timezone``, ``math``). What can
make a large value is size-checked (:func:`sandbox`, with :func:`~engine.runtime.script_budget.operator_guards`):
``range``, ``bytes``, ``pow``, ``round``, ``sum``, ``zip``, ``map``, ``math.factorial``/``comb``/``perm``/
``prod``/``lcm``, and the methods that grow a string (``ljust``, ``center``, ``zfill``, ``expandtabs``,
``replace``, ``join``, ``translate``), ``int.to_bytes``, ``list.extend`` and the date formats of ``strftime``/
``strptime``. ``datetime``'s C code imports ``time`` and ``_strptime`` through ``__builtins__``: the restricted
builtins carry an ``__import__`` that hands it those two modules and nothing else (scripts cannot name it).

Helpers: ``now()`` (added by each environment, from its clock) and whatever is registered on the
:class:`HelperRegistry` the environment reads (a runtime owns one: ``runtime.helpers``, e.g. the calendar's
``workdays(n)``). They live in the restricted ``__builtins__``, so task data may use the same names (a form
field called ``date`` simply shadows the class) and nothing of the environment is ever left behind in task data.
"""
from __future__ import annotations

import _strptime
import builtins as py_builtins
import keyword
import math
import threading
import time
import types
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector

from engine.errors import ScriptError

from .script_budget import INTS, SIZED, ScriptLimitExceeded, ScriptLimits, nested_size, operator_guards
from .script_compile import DEADLINE_GUARD, FORBIDDEN_BUILTINS, FORMAT_GUARD, OPERATOR_GUARDS

__all__ = [
    "ALLOWED_BUILTINS",
    "ALLOWED_EXCEPTIONS",
    "BASE_BUILTINS",
    "C_CALLS",
    "GUARD_NAMES",
    "PLAIN_TYPES",
    "ForbiddenOperation",
    "HelperRegistry",
    "Sandbox",
    "check_helper_name",
    "is_environment_value",
    "sandbox",
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
    """The helper functions offered to scripts and expressions (a runtime owns one: ``runtime.helpers``).

    Helpers run unrestricted Python with whatever arguments a script passes: keep them small, side-effect free
    and returning plain data. Environments reading a registry pick up a change on their next call: they compare
    :attr:`version`, which every change moves, and rebuild what they derived from the helpers
    (:meth:`derived`, kept here so that the environment a step builds costs nothing to set up).

    A script that calls a helper runs under the time budget's line tracer, which costs tens of microseconds
    per call. ``bounded``: the helper bounds its own work whatever the arguments (it refuses those that would
    make it run long, as the calendar's refuse counts of days above its maximum), so an expression without loops
    that calls only C builtins and bounded helpers, and passes no helper on as a value, runs without the tracer,
    like one that calls only C builtins."""

    def __init__(self, helpers: Mapping[str, Callable[..., Any]] | None = None, *, bounded: bool = False):
        self._helpers: dict[str, Callable[..., Any]] = {}
        #: helpers registered with ``bounded=True``
        self._bounded: set[str] = set()
        self._derived: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self.version = 0
        for name, fn in (helpers or {}).items():
            self.register(name, fn, bounded=bounded)

    def register(self, name: str, fn: Callable[..., Any], *, replace: bool = False, bounded: bool = False) -> None:
        """Offer ``fn`` to scripts as ``name``; a name already taken by another function needs ``replace``."""
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
            self._changed()

    def unregister(self, name: str) -> None:
        with self._lock:
            self._bounded.discard(name)
            if self._helpers.pop(name, None) is not None:
                self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._derived.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._helpers

    def helpers(self) -> dict[str, Callable[..., Any]]:
        with self._lock:
            return dict(self._helpers)

    def snapshot(self) -> tuple[int, dict[str, Callable[..., Any]], frozenset[str]]:
        """``(version, helpers, bounded helper names)``, taken together."""
        with self._lock:
            return self.version, dict(self._helpers), frozenset(self._bounded)

    def derived(self, key: Any, build: Callable[[int, dict[str, Callable[..., Any]], frozenset[str]], Any]) -> Any:
        """``build(version, helpers, bounded names)`` for the helpers as they are now, kept under ``key`` (it
        must be hashable) until they change."""
        value = self._derived.get(key)
        if value is None:
            with self._lock:
                value = build(self.version, dict(self._helpers), frozenset(self._bounded))
                if len(self._derived) >= 32:  # keys are few (an engine's clock and limits): never let them pile up
                    self._derived.clear()
                self._derived[key] = value
        return value


# --------------------------------------------------------------------------------------------------
# Builtins and guards


def _getitem(ob: Any, index: Any) -> Any:
    return ob[index]


_RAISE = object()

#: the only attribute a script may read on an exception: ``AttributeError.obj`` and friends could
#: hand it objects from inside helpers or the engine
_EXCEPTION_ATTRIBUTES = frozenset({"args"})

#: the longest date format (or date text) ``strftime``/``strptime`` take: C's strftime may fill a buffer 256
#: times the format's length, and ``_strptime`` compiles the format into a regular expression
MAX_TIME_FORMAT = 4096


def _make_getattr(methods: dict[str, tuple[tuple[type, ...], Callable]]) -> tuple[Callable, Callable]:
    """``getattr``/``hasattr`` for scripts: ``safer_getattr`` (no ``_`` names, no ``str.format``, no frame/code
    attributes), raising ``AttributeError`` for a missing attribute as Python does, closed on exception objects,
    and handing out the methods in ``methods`` (name -> (owner types, check)) wrapped in their size check."""

    def guarded_getattr(obj: Any, name: str, default: Any = _RAISE) -> Any:
        if isinstance(obj, BaseException) and name not in _EXCEPTION_ATTRIBUTES:
            raise AttributeError(f"{name!r} of an exception is not available in process scripts")
        value = safer_getattr(obj, name, _RAISE)
        if value is _RAISE:
            if default is _RAISE:
                raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
            return default
        entry = methods.get(name)
        if entry is not None and issubclass(obj if isinstance(obj, type) else type(obj), entry[0]):
            return _checked(entry[1], obj, value)
        return value

    def guarded_hasattr(obj: Any, name: str) -> bool:
        try:
            guarded_getattr(obj, name)
        except AttributeError:
            return False
        return True

    return guarded_getattr, guarded_hasattr


def _checked(check: Callable, obj: Any, method: Callable) -> Callable:
    """``method`` (read from ``obj``) calling ``check(self, args, kwargs)`` first, which returns the arguments
    to pass on (``join`` reads its iterable once, to measure it)."""
    if isinstance(obj, type) and getattr(method, "__self__", None) is not obj:
        def unbound(self, *args, **kwargs):  # str.ljust(s, n)
            return method(self, *check(self, args, kwargs), **kwargs)
        return unbound

    def bound(*args, **kwargs):
        return method(*check(obj, args, kwargs), **kwargs)
    return bound


def _method_checks(limits: ScriptLimits) -> dict[str, tuple[tuple[type, ...], Callable]]:
    max_items = limits.items
    text = (str, bytes)

    def refuse(s: Any, name: str, size: int) -> ScriptLimitExceeded:
        return ScriptLimitExceeded(f"{type(s).__name__}.{name}()", f"the result would have {size:,} items, more "
                                   f"than the limit of {max_items:,} items a script may make")

    def width(name: str) -> Callable:
        def check(s, args, kwargs):
            w = args[0] if args else kwargs.get("width", 0)
            if type(w) in INTS and w > max_items:
                raise refuse(s, name, w)
            return args
        return check

    def expandtabs(s, args, kwargs):
        size = args[0] if args else kwargs.get("tabsize", 8)
        if type(s) in text and type(size) in INTS and size > 1:
            total = len(s) + s.count("\t" if type(s) is str else b"\t") * size
            if total > max_items:
                raise refuse(s, "expandtabs", total)
        return args

    def replace(s, args, kwargs):
        if len(args) >= 2 and type(s) in text and type(args[0]) is type(s) and type(args[1]) is type(s):
            old, new = args[0], args[1]
            if len(new) > len(old):
                n = s.count(old) if old else len(s) + 1
                if len(args) > 2 and type(args[2]) in INTS and args[2] >= 0:
                    n = min(n, args[2])
                total = len(s) + n * (len(new) - len(old))
                if total > max_items:
                    raise refuse(s, "replace", total)
        return args

    def join(sep, args, kwargs):
        if len(args) != 1 or type(sep) not in text:
            return args
        items = list(args[0])
        try:
            total = sum(map(len, items)) + len(sep) * max(len(items) - 1, 0)
        except TypeError:
            return (items,)  # join itself says what is wrong
        if total > max_items:
            raise refuse(sep, "join", total)
        return (items,)

    def translate(s, args, kwargs):
        table = args[0] if args else None
        if type(s) is str and type(table) in (dict, list, tuple):
            values = table.values() if type(table) is dict else table
            longest = max((len(v) for v in values if type(v) is str), default=1)
            if len(s) * longest > max_items:
                raise refuse(s, "translate", len(s) * longest)
        return args

    def to_bytes(n, args, kwargs):
        length = args[0] if args else kwargs.get("length", 1)
        if type(length) in INTS and length > max_items:
            raise refuse(n, "to_bytes", length)
        return args

    def extend(lst, args, kwargs):
        if args and type(lst) is list and type(args[0]) in SIZED and len(lst) + len(args[0]) > max_items:
            raise refuse(lst, "extend", len(lst) + len(args[0]))
        return args

    def time_format(name: str) -> Callable:
        def check(obj, args, kwargs):
            for a in (*args, *kwargs.values()):
                if type(a) is str and len(a) > MAX_TIME_FORMAT:
                    raise ScriptLimitExceeded(f"{name}()", f"a date format or text of {len(a):,} characters is "
                                              f"longer than the {MAX_TIME_FORMAT} a script may use")
            return args
        return check

    checks: dict[str, tuple[tuple[type, ...], Callable]] = {
        name: (text, width(name)) for name in ("ljust", "rjust", "center", "zfill")}
    checks.update({
        "expandtabs": (text, expandtabs), "replace": (text, replace), "join": (text, join),
        "translate": ((str,), translate), "to_bytes": ((int,), to_bytes), "extend": ((list,), extend),
        "strftime": ((date,), time_format("strftime")), "strptime": ((datetime,), time_format("strptime")),
    })
    return checks


def _math_module(limits: ScriptLimits) -> types.ModuleType:
    """``math`` with the functions whose result can grow without bound size-checked (a module: never data)."""
    max_bits = limits.int_bits
    module = types.ModuleType("math", math.__doc__)
    for name in dir(math):
        if not name.startswith("_"):
            setattr(module, name, getattr(math, name))

    def check(name: str, log2: float) -> None:
        if log2 > max_bits:
            raise ScriptLimitExceeded(f"math.{name}()", f"the result would have about {log2:,.0f} bits, more than "
                                      f"the limit of {max_bits:,} bits a script may make")

    def lg(n: int) -> float:  # log2(n!)
        return math.lgamma(n + 1) / math.log(2)

    def factorial(n, /):
        if type(n) in INTS and n > 20:
            check("factorial", lg(n))
        return math.factorial(n)

    def comb(n, k, /):
        if type(n) in INTS and type(k) in INTS and 0 <= k <= n:
            check("comb", lg(n) - lg(k) - lg(n - k))
        return math.comb(n, k)

    def perm(n, k=None, /):
        if type(n) in INTS and n >= 0 and (k is None or type(k) in INTS and 0 <= k <= n):
            check("perm", lg(n) - lg(n - (n if k is None else k)))
        return math.perm(n, k)

    def prod(iterable, /, *, start=1):
        items = list(iterable)
        check("prod", sum(v.bit_length() for v in (start, *items) if type(v) in INTS))
        return math.prod(items, start=start)

    def lcm(*integers):
        check("lcm", sum(v.bit_length() for v in integers if type(v) in INTS))
        return math.lcm(*integers)

    def gcd(*integers):  # quadratic in the ints' sizes: as a division
        check("gcd", max((v.bit_length() for v in integers if type(v) in INTS), default=0) / 4)
        return math.gcd(*integers)

    for fn in (factorial, comb, perm, prod, lcm, gcd):
        setattr(module, fn.__name__, fn)
    return module


def _apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _forbidden(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenOperation(f"{name}() is not available in process scripts and expressions")
    refuse.__name__ = name
    return refuse


#: the modules datetime's C code imports through ``__builtins__["__import__"]`` (``strftime``, ``strptime``,
#: ``date.today``), loaded here once
_C_IMPORTS: Mapping[str, types.ModuleType] = types.MappingProxyType({"time": time, "_strptime": _strptime})


def _import_for_c_code(name, globals=None, locals=None, fromlist=(), level=0):
    """The restricted builtins' ``__import__``: scripts cannot name it (a ``_`` name, and ``import`` does not
    compile); C code that imports through it gets ``time`` and ``_strptime`` and nothing else."""
    module = _C_IMPORTS.get(name)
    if module is None or level:
        raise ForbiddenOperation(f"importing {name!r} is not available in process scripts and expressions")
    return module


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

#: the builtins :func:`~engine.runtime.script_budget.operator_guards` replaces with size-checked functions
SIZE_CHECKED_BUILTINS = ("range", "bytes", "pow", "round", "sum", "zip", "map", "divmod")

#: builtins that cannot run Python code for long by themselves: implemented in C, or size-checked and bounded
#: (arguments such as ``key=lambda …`` or generator expressions are detected separately)
C_CALLS = frozenset(ALLOWED_BUILTINS) | frozenset(ALLOWED_EXCEPTIONS) | frozenset(
    {"datetime", "date", "timedelta", "timezone", "getattr", "hasattr", "print"} | set(FORBIDDEN_BUILTINS))


def _base_builtins() -> dict[str, Any]:
    result: dict[str, Any] = {"None": None, "True": True, "False": False, "__import__": _import_for_c_code}
    for name in ALLOWED_BUILTINS + ALLOWED_EXCEPTIONS:
        result[name] = getattr(py_builtins, name)
    for name in FORBIDDEN_BUILTINS:
        result[name] = _forbidden(name)
    result["math"] = math
    result["datetime"] = datetime
    result["date"] = date
    result["timedelta"] = timedelta
    result["timezone"] = timezone
    return result


#: the restricted ``__builtins__`` before the size-checked functions and helpers are added (:func:`sandbox`)
BASE_BUILTINS: Mapping[str, Any] = types.MappingProxyType(_base_builtins())

#: names put in every globals dict (and never left in task data)
GUARD_NAMES = frozenset({
    "__builtins__", "_getattr_", "_getitem_", "_getiter_", "_iter_unpack_sequence_",
    "_unpack_sequence_", "_write_", "_inplacevar_", "_apply_", "_print_", "_print", DEADLINE_GUARD,
    FORMAT_GUARD, *OPERATOR_GUARDS.values(),
})

#: the guards RestrictedPython's compiled code calls that do not depend on the limits
_FIXED_GUARDS: Mapping[str, Any] = types.MappingProxyType({
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,  # dict and list may be mutated; anything else is wrapped read-only
    "_apply_": _apply,
    "_print_": PrintCollector,
})


class Sandbox(NamedTuple):
    """What scripts run with under one :class:`~engine.runtime.script_budget.ScriptLimits`."""

    #: the guards, by the names the compiled code calls them (an environment's globals)
    globals: Mapping[str, Any]
    #: the restricted ``__builtins__`` before helpers are added
    builtins: Mapping[str, Any]
    #: ``id``s of the size checks' code: bounded, so the time budget's tracer skips their lines
    quiet: frozenset[int]


@lru_cache(maxsize=16)
def sandbox(limits: ScriptLimits) -> Sandbox:
    """The guards and builtins for ``limits`` (one set per limits: environments share them, read-only)."""
    ops = operator_guards(limits)
    getattr_, hasattr_ = _make_getattr(_method_checks(limits))
    math_module = _math_module(limits)
    guards = dict(_FIXED_GUARDS, _getattr_=getattr_, _inplacevar_=ops["_inplacevar_"], _format_=ops[FORMAT_GUARD])
    guards.update({name: ops[name] for name in OPERATOR_GUARDS.values()})
    builtins = dict(BASE_BUILTINS, getattr=getattr_, hasattr=hasattr_, math=math_module)
    builtins.update({name: ops[name] for name in SIZE_CHECKED_BUILTINS})
    return Sandbox(types.MappingProxyType(guards), types.MappingProxyType(builtins), _QUIET)


def _code_ids(*fns: Callable) -> frozenset[int]:
    """``id``s of the code of ``fns`` and of every function defined inside them (alive as long as they are)."""
    ids, stack = set(), [fn.__code__ for fn in fns]
    while stack:
        code = stack.pop()
        ids.add(id(code))
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset(ids)


_QUIET = _code_ids(operator_guards, nested_size, _make_getattr, _checked, _method_checks, _math_module)


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
