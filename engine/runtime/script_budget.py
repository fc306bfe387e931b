"""The budget of one script or expression (:mod:`engine.runtime.scripting`): its time, its memory and the size
of the values it makes (:class:`ScriptLimits`). Going past any of them raises a :class:`ScriptResourceError`,
which a step turns into an incident.

Time. A call whose code can loop runs with a watch
(:func:`engine.runtime.script_watch.make_watch`): a deadline check the compiler injects
into every loop body, comprehension, function, ``lambda`` and ``except``/``finally`` body
(:data:`~engine.runtime.script_compile.DEADLINE_GUARD`) raises :class:`ScriptTimeout` once the deadline has
passed. Code that calls Python code the compiler did not see (a helper) also runs under the watch's
``sys.settrace`` tracer, chained to any tracer already installed (coverage, a debugger); CPython switches
tracing off once a trace function raises, which the injected checks make up for.

Memory. The watch also samples the process's resident memory (every :data:`POLL_S` while the code runs, the
first time :data:`FIRST_POLL_S` after it started); growth past ``max_memory_mb`` since that first sample raises
:class:`ScriptLimitExceeded`.

Size. A tracer cannot interrupt C code, so every operation that can make a value much larger than its operands
is checked before it runs, by the functions :func:`operator_guards` makes: the compiler routes ``+ * ** << % //``
and f-string fields with a format spec to them, and they replace the builtins ``range``, ``bytes``, ``pow``,
``round``, ``sum``, ``zip``, ``map`` and ``divmod`` (string and ``math`` methods are checked where scripts read them,
:mod:`engine.runtime.script_builtins`). A value a script makes may hold at most ``max_items`` items (elements,
characters or bytes; a repeated list counts what its elements hold) and an int at most ``max_int_bits`` bits.
With every such value bounded, each single C operation is bounded too, including ``sum``, ``max`` or
``sorted`` over anything a script can make without a loop.
"""
from __future__ import annotations

import math
import operator
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from engine.errors import ScriptError

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_MEMORY_MB",
    "DEFAULT_TIME_BUDGET_S",
    "INTS",
    "MAX_INT_BITS",
    "ScriptLimitExceeded",
    "ScriptLimits",
    "ScriptResourceError",
    "ScriptTimeout",
    "limits_for",
    "nested_size",
    "operator_guards",
    "printf_padding",
    "spec_padding",
]

DEFAULT_TIME_BUDGET_S = 2.0
#: the most items (elements, characters, bytes) a value made by a script may hold
DEFAULT_MAX_ITEMS = 1_000_000
#: the most a script may grow the process's resident memory, in MB
DEFAULT_MAX_MEMORY_MB = 128.0
#: the most bits an int made by a script may have: about 2466 digits, below the 4300 digits Python still prints
MAX_INT_BITS = 8192
#: ``pow(base, exp, mod)`` may cost at most this many units of bits(exp) * bits(mod)**2 (about 0.1 s)
MAX_MODPOW_COST = 2 ** 33
#: seconds between two samples of resident memory while a watched script runs; the first comes after
#: :data:`FIRST_POLL_S`, so that short scripts never pay for one
POLL_S = 0.01
FIRST_POLL_S = 0.001

INTS = frozenset({int, bool})
SIZED = frozenset({str, bytes, list, tuple})
NESTED = frozenset({str, bytes, list, tuple, dict, set, frozenset})


class ScriptResourceError(ScriptError):
    """A script or expression went past one of its limits (time, memory, size); retrying cannot help."""


class ScriptTimeout(ScriptResourceError):
    """A script or expression ran past its wall-clock budget."""

    def __init__(self, budget_s: float, source: str | None = None):
        self.budget_s = budget_s
        self.source = source
        where = f" in {_first_line(source)!r}" if source else ""
        super().__init__(f"script exceeded its time budget of {budget_s:g}s{where}")

    def __reduce__(self):
        return (type(self), (self.budget_s, self.source))


class ScriptLimitExceeded(ScriptResourceError):
    """An operation would have made a value larger than a script may make, or the script grew the process's
    memory past its limit; ``operation`` names it (``'*'``, ``range()``, ``str.ljust()``, ``memory`` …)."""

    def __init__(self, operation: str, detail: str):
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: {detail}")

    def __reduce__(self):
        return (type(self), (self.operation, self.detail))


def _first_line(source: str) -> str:
    for line in source.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 80 else line[:77] + "..."
    return ""


@dataclass(frozen=True)
class ScriptLimits:
    """What one script or expression may use besides its time: 0 (or less) switches a limit off."""

    max_items: int = DEFAULT_MAX_ITEMS
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB
    max_int_bits: int = MAX_INT_BITS

    @property
    def items(self) -> int:
        return self.max_items if self.max_items > 0 else sys.maxsize

    @property
    def int_bits(self) -> int:
        return self.max_int_bits if self.max_int_bits > 0 else sys.maxsize

    @property
    def memory_bytes(self) -> int | None:
        return int(self.max_memory_mb * 1024 * 1024) if self.max_memory_mb > 0 else None


@lru_cache(maxsize=64)
def limits_for(max_items: int, max_memory_mb: float) -> ScriptLimits:
    """One shared :class:`ScriptLimits` per pair of settings (an engine is built for every step)."""
    return ScriptLimits(int(max_items), float(max_memory_mb))


# --------------------------------------------------------------------------------------------------
# Sizes


def nested_size(value: Any, budget: int) -> int:
    """How many items ``value`` holds, counting what its elements hold (lists, tuples, dicts, sets, strings and
    bytes inside, each time they appear); stops counting once past ``budget``."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        total += len(v)
        if total > budget:
            return total
        kind = type(v)
        if kind is str or kind is bytes:
            continue
        if kind is dict:
            v = v.values()
        if not NESTED.isdisjoint(map(type, v)):
            stack.extend(x for x in v if type(x) in NESTED)
    return total


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "&=": operator.iand, "^=": operator.ixor,
    "@=": operator.imatmul,
}

#: a printf-style conversion: its width and precision (digits or ``*``)
_PRINTF = re.compile(r"%(?:%|(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?)")
_WIDTH = re.compile(r"%(?:\([^)]*\))?[^a-zA-Z%]*[\d*]")
_DIGITS = re.compile(r"\d+")


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 12 else 10 ** 12


def printf_padding(fmt: str | bytes, args: Any = ()) -> int:
    """How many characters the widths and precisions of ``fmt % args`` may add at most (``*`` takes the ints of
    ``args``): with the format's own length and the arguments', a bound of the result's length."""
    if type(fmt) is bytes:
        fmt = fmt.decode("latin-1")
    if _WIDTH.search(fmt) is None:
        return 0
    size, star = 0, False
    for spec in _PRINTF.finditer(fmt):
        for g in spec.groups():
            if g == "*":
                star = True
            elif g:
                size += _number(g)
    if star:
        size += sum(abs(v) for v in (args if type(args) is tuple else (args,)) if type(v) in INTS)
    return size


def spec_padding(spec: str) -> int:
    """The same for a format spec (``f"{x:>{n}}"``, ``format(x, spec)``): the sum of its numbers."""
    return sum(_number(d) for d in _DIGITS.findall(spec))


def operator_guards(limits: ScriptLimits) -> dict[str, Callable[..., Any]]:
    """The size-checked operations for ``limits``, by the names the compiled code calls (``_add_`` …) and the
    builtins they replace (``range`` …); ``_inplacevar_`` applies the same checks to ``x += y`` and friends."""
    max_items, max_bits = limits.items, limits.int_bits
    division_cost = (4 * max_bits) ** 2

    def refuse(operation: str, size: int, what: str = "items") -> ScriptLimitExceeded:
        limit = max_bits if what == "bits" else max_items
        return ScriptLimitExceeded(operation, f"the result would have {size:,} {what}, more than the limit of "
                                              f"{limit:,} {what} a script may make")

    def check_repeat(op: str, seq: Any, n: int) -> None:
        if n <= 1:
            return
        size = len(seq) * n
        if size > max_items:
            raise refuse(op, size)
        if type(seq) is not str and type(seq) is not bytes and size:
            weight = nested_size(seq, max_items // n) * n
            if weight > max_items:
                raise refuse(op, weight)

    def check_add(a: Any, b: Any) -> None:
        if type(a) in SIZED and type(b) is type(a) and len(a) + len(b) > max_items:
            raise refuse("'+'", len(a) + len(b))

    def check_mul(a: Any, b: Any) -> None:
        ta, tb = type(a), type(b)
        if ta in INTS:
            if tb in INTS:
                if a.bit_length() + b.bit_length() > max_bits:
                    raise refuse("'*'", a.bit_length() + b.bit_length(), "bits")
            elif tb in SIZED:
                check_repeat("'*'", b, a)
        elif ta in SIZED and tb in INTS:
            check_repeat("'*'", a, b)

    def check_pow(a: Any, b: Any, op: str = "'**'") -> None:
        if type(b) in INTS and type(a) in INTS and b > 1 and not -1 <= a <= 1:
            log2 = b * math.log2(abs(a))  # the result has floor(log2) + 1 bits
            if log2 >= max_bits:
                raise refuse(op, math.floor(log2) + 1, "bits")

    def check_lshift(a: Any, b: Any) -> None:
        if type(a) in INTS and type(b) in INTS and a and b > 0 and a.bit_length() + b > max_bits:
            raise refuse("'<<'", a.bit_length() + b, "bits")

    def check_divide(a: Any, b: Any, op: str) -> None:
        # dividing an n-bit int by an m-bit one costs about m * (n - m) bit operations; ints a script makes have
        # at most ``max_bits``, but ``int(text, 16)`` may read a far larger one from data
        if type(a) in INTS and type(b) in INTS:
            na, nb = a.bit_length(), b.bit_length()
            if nb * max(na - nb, 1) > division_cost:
                raise ScriptLimitExceeded(op, f"dividing an int of {na:,} bits by one of {nb:,} bits costs too much")

    def check_mod(a: Any, b: Any) -> None:
        if type(a) is str or type(a) is bytes:
            size = printf_padding(a, b)
            if size and len(a) + size > max_items:
                raise refuse("'%' formatting", len(a) + size)
        else:
            check_divide(a, b, "'%'")

    def add(a, b):
        t = type(a)
        if t is not int and t is not float and t in SIZED:
            check_add(a, b)
        return a + b

    def mul(a, b):
        ta = type(a)
        if ta is float:
            return a * b
        if ta is int and type(b) is int:
            if a.bit_length() + b.bit_length() > max_bits:
                raise refuse("'*'", a.bit_length() + b.bit_length(), "bits")
            return a * b
        check_mul(a, b)
        return a * b

    def power(a, b):
        check_pow(a, b)
        return a ** b

    def builtin_pow(base, exp, mod=None):
        if mod is None:
            check_pow(base, exp, "pow()")
            return base ** exp
        if type(exp) in INTS and type(mod) in INTS:
            cost = max(abs(exp).bit_length(), 1) * max(abs(mod).bit_length(), 1) ** 2
            if cost > MAX_MODPOW_COST:
                raise ScriptLimitExceeded("pow()", "the exponent and modulus are too large to compute in time")
        return pow(base, exp, mod)

    def lshift(a, b):
        check_lshift(a, b)
        return a << b

    def modulo(a, b):
        check_mod(a, b)
        return a % b

    def floordiv(a, b):
        check_divide(a, b, "'//'")
        return a // b

    def bounded_divmod(a, b):
        check_divide(a, b, "divmod()")
        return divmod(a, b)

    def format_field(value, conversion, spec):
        if conversion == 114:
            value = repr(value)
        elif conversion == 115:
            value = str(value)
        elif conversion == 97:
            value = ascii(value)
        size = spec_padding(spec)
        if size > max_items:
            raise refuse("format spec " + repr(spec[:20]), size)
        return format(value, spec)

    def bounded_range(*args):
        r = range(*args)
        try:
            n = len(r)
        except OverflowError:
            n = sys.maxsize
        if n > max_items:
            raise refuse("range()", n)
        return r

    def bounded_bytes(*args, **kwargs):
        if args and type(args[0]) in INTS and args[0] > max_items:
            raise refuse("bytes()", args[0])
        return bytes(*args, **kwargs)

    def bounded_round(number, ndigits=None):
        if type(number) in INTS and type(ndigits) in INTS and ndigits < 0:
            check_pow(10, -ndigits, "round()")
        return round(number, ndigits)

    def bounded_sum(iterable, /, start=0):
        kind = type(start)
        if kind is not list and kind is not tuple:
            return sum(iterable, start)
        # sum(lists, []) would copy the growing list once per element: concatenate once, bounded
        parts = list(iterable)
        for p in parts:
            if type(p) is not kind:
                raise TypeError(f'can only concatenate {kind.__name__} (not "{type(p).__name__}") to '
                                f"{kind.__name__}")
        size = len(start) + sum(map(len, parts))
        if size > max_items:
            raise refuse("sum()", size)
        out = list(start)
        for p in parts:
            out.extend(p)
        return out if kind is list else tuple(out)

    def check_fan(op: str, iterables: tuple) -> None:
        if len(iterables) > 2:
            shortest = min(operator.length_hint(it, max_items) for it in iterables)
            if len(iterables) * shortest > max_items:
                raise refuse(op, len(iterables) * shortest)

    def bounded_zip(*iterables, strict=False):
        check_fan("zip()", iterables)
        return zip(*iterables, strict=strict)

    def bounded_map(function, *iterables):
        check_fan("map()", iterables)
        return map(function, *iterables)

    checks = {"+=": check_add, "*=": check_mul, "**=": check_pow, "<<=": check_lshift, "%=": check_mod,
              "//=": lambda a, b: check_divide(a, b, "'//'")}
    #: what an int can grow by (``n += 1`` in a loop is the common case: no check to call)
    int_checks = {op: checks[op] for op in ("*=", "**=", "<<=", "%=", "//=")}

    def inplacevar(op: str, x: Any, y: Any) -> Any:
        # ``x += y`` (RestrictedPython compiles it to ``x = _inplacevar_("+=", x, y)``): in place, as Python does
        fn = _INPLACE_OPS.get(op)
        if fn is None:
            raise ScriptError(f"augmented assignment {op!r} is not supported")
        kind = type(x)
        check = (int_checks if kind is int else checks).get(op) if kind is not float else None
        if check is not None:
            check(x, y)
        return fn(x, y)

    return {
        "_add_": add, "_mul_": mul, "_pow_": power, "_lshift_": lshift, "_mod_": modulo, "_floordiv_": floordiv,
        "_format_": format_field, "_inplacevar_": inplacevar,
        "range": bounded_range, "bytes": bounded_bytes, "pow": builtin_pow, "round": bounded_round,
        "sum": bounded_sum, "zip": bounded_zip, "map": bounded_map, "divmod": bounded_divmod,
    }
