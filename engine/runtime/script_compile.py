"""Compiling what a process designer writes under regflow's restrictions (:mod:`engine.runtime.scripting`).

Code is compiled with RestrictedPython's ``compile_restricted_eval``/``compile_restricted_exec`` under
:class:`RegflowPolicy` — RestrictedPython's policy, plus: no ``import``, no ``class``, no call of a builtin
the sandbox refuses, a deadline check injected at the top of every loop body, ``except`` and ``finally`` body
and function body, into every comprehension (per element) and every ``lambda`` (per call), and the operators
that can make a value much larger than their operands or cost far more (``+ * ** << % //``, an f-string field
with a format spec) routed to the size checks of :mod:`engine.runtime.script_budget` — and cached per source
text, together with what the time budget needs to know about it (:class:`Compiled`: does it loop, which names
does it call or pass on).
"""
from __future__ import annotations

import ast
import functools
import textwrap
import types
import warnings
from dataclasses import dataclass
from typing import Literal

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

from engine.errors import ScriptError

from .script_budget import printf_padding, spec_padding

__all__ = [
    "DEADLINE_GUARD",
    "FORBIDDEN_BUILTINS",
    "FORMAT_GUARD",
    "OPERATOR_GUARDS",
    "SCRIPT_FILENAME",
    "Compiled",
    "RegflowPolicy",
    "ScriptCompileError",
    "compile_check",
    "compile_source",
    "compiled_or_raise",
]

#: file name given to compiled code; SpiffWorkflow looks for it in tracebacks to report line numbers
SCRIPT_FILENAME = "<string>"

#: name of the deadline check injected into loops, comprehensions, functions, lambdas and ``except``/``finally``
DEADLINE_GUARD = "_deadline_check_"

#: the functions the compiled code calls for these operators (``a * b`` becomes ``_mul_(a, b)``)
OPERATOR_GUARDS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Mod: "_mod_",
                   ast.FloorDiv: "_floordiv_"}
#: the function an f-string field with a format spec is formatted by (``f"{x:>{n}}"``)
FORMAT_GUARD = "_format_"

#: names a designer might try; each raises ForbiddenOperation with a clear message
#: (:mod:`engine.runtime.script_builtins`), and a direct call of one is refused when it compiles
FORBIDDEN_BUILTINS = (
    "type", "eval", "exec", "compile", "globals", "locals", "vars", "dir", "open", "input",
    "breakpoint", "help", "memoryview", "object", "super", "iter", "id", "hash", "setattr",
    "delattr", "exit", "quit", "classmethod", "staticmethod", "property", "bytearray",
)


class ScriptCompileError(SyntaxError, ScriptError):
    """The source does not compile under regflow's restrictions.

    A ``SyntaxError`` subclass so that SpiffWorkflow's error reporting picks up ``lineno``.
    """

    def __init__(self, message: str, source: str, lineno: int | None = None):
        super().__init__(message)  # (SyntaxError's initializer: EngineError's attributes are set here)
        self.message = message
        self.details, self.template, self.params = {}, None, {}
        self.source = source
        self.lineno = lineno or 0
        lines = source.splitlines() if source else []
        self.text = lines[self.lineno - 1] if 0 < self.lineno <= len(lines) else None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.lineno))


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
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_BUILTINS:
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

    # Comprehensions, lambdas and functions check the deadline too (each element, each call), so that code of
    # the script itself never needs the tracer: C code may call them as often as it likes (``sorted(key=…)``).

    def visit_comprehension(self, node):  # noqa: N802
        node = super().visit_comprehension(node)
        node.ifs.insert(0, _deadline_test(node.target))  # ``… for x in it if check() is None``
        return node

    def visit_Lambda(self, node):  # noqa: N802
        node = super().visit_Lambda(node)
        body = ast.IfExp(test=_deadline_test(node.body), body=node.body, orelse=ast.Constant(None))
        node.body = ast.fix_missing_locations(ast.copy_location(body, node.body))  # ``body if check() is None …``
        return node

    def visit_FunctionDef(self, node):  # noqa: N802
        node = super().visit_FunctionDef(node)
        node.body.insert(0, _deadline_stmt(node.body[0]))
        return node

    def visit_BinOp(self, node):  # noqa: N802
        # C code cannot be interrupted: ``"x" * 10**10`` is refused by the size check before it allocates
        node = super().visit_BinOp(node)
        guard = OPERATOR_GUARDS.get(type(node.op))
        if guard is None or _cannot_grow(node):
            return node
        return _guard_call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node):  # noqa: N802
        # ``f"{x:>{10**9}}"``: the format spec's width is checked before formatting
        node = super().visit_FormattedValue(node)
        if node.format_spec is None or _small_spec(node.format_spec):
            return node
        call = _guard_call(FORMAT_GUARD, [node.value, ast.Constant(node.conversion), node.format_spec], node)
        new = ast.FormattedValue(value=call, conversion=-1, format_spec=None)
        return ast.copy_location(new, node)


#: what a constant operand may add to a result (widths of a constant format, a constant repeated) and still
#: go unchecked: the check would cost a call on every run for nothing
STATIC_SIZE = 10_000
_NONE = object()


def _constant(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else _NONE


def _cannot_grow(node: ast.BinOp) -> bool:
    """Whether an operation with these constant operands cannot make a large value whatever the other holds
    (``total + 1``, ``price * 1.2``, ``'%.2f' % x``, ``n << 3``, ``'-' * 40``, ``2 ** 16``)."""
    op, a, b = type(node.op), _constant(node.left), _constant(node.right)
    if op is ast.Add:  # grows by the constant's own size at most
        return a is not _NONE or b is not _NONE
    if op is ast.Mod or op is ast.FloorDiv:  # a constant format; a division by a constant int is cheap
        if type(b) is int and type(a) not in (str, bytes):
            return True
        return type(a) in (str, bytes) and "*" not in str(a) and printf_padding(a) <= STATIC_SIZE
    if op is ast.LShift:
        return type(b) is int and 0 <= b <= 64
    numbers = (int, float, bool)
    if op is ast.Mult:
        if type(a) is float or type(b) is float or any(type(c) is int and -1 <= c <= 1 for c in (a, b)):
            return True
        if type(a) in numbers and type(b) in numbers:
            return int(a).bit_length() + int(b).bit_length() <= 64
        sized, count = (a, b) if type(b) is int else (b, a)
        return type(sized) in (str, bytes, tuple) and type(count) is int and len(sized) * count <= STATIC_SIZE
    if op is ast.Pow:
        return type(a) in numbers and type(b) in numbers and abs(a) <= 2 ** 32 and b <= 64
    return False


def _small_spec(spec: ast.JoinedStr) -> bool:
    """A constant format spec whose widths stay small (``f"{x:.2f}"``, ``f"{d:%Y-%m-%d}"``)."""
    parts = [_constant(v) for v in spec.values]
    return all(type(p) is str for p in parts) and spec_padding("".join(parts)) <= STATIC_SIZE


def _guard_call(name: str, args: list[ast.expr], anchor: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    for n in (call, call.func, *args):
        if getattr(n, "lineno", None) is None:
            ast.copy_location(n, anchor)
    return call


def _deadline_test(anchor: ast.AST) -> ast.expr:
    """``_deadline_check_() is None``: true, once the deadline was checked."""
    test = ast.Compare(left=_guard_call(DEADLINE_GUARD, [], anchor), ops=[ast.Is()], comparators=[ast.Constant(None)])
    return ast.fix_missing_locations(ast.copy_location(test, anchor))


def _deadline_stmt(anchor: ast.AST) -> ast.stmt:
    return ast.copy_location(ast.Expr(value=_guard_call(DEADLINE_GUARD, [], anchor)), anchor)


#: loops, comprehensions and Python-level callables: code that can run for long in Python bytecode
_LOOPING_NODES = (
    ast.While, ast.For, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef,
)


@dataclass(frozen=True)
class Compiled:
    """Compiled code (or why it does not compile) and what the time budget needs to know about it."""

    code: types.CodeType | None
    errors: tuple[str, ...]
    lineno: int | None
    #: the code contains a loop, comprehension, lambda or def (it calls the deadline check)
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
def compile_source(source: str, mode: str) -> Compiled:
    """``source`` compiled in ``mode`` (``"eval"`` or ``"exec"``) under :class:`RegflowPolicy`; cached."""
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    text = _normalise(source, mode)
    compile_fn = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    if mode == "eval" and not text:
        return Compiled(None, ("Line 1: empty expression",), 1, False, frozenset(), frozenset(), False, source)
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
        return Compiled(None, errors, _lineno_of(errors[0]), False, frozenset(), frozenset(), False, source)
    return Compiled(result.code, (), None, loops, frozenset(called), frozenset(names), other, source, values)


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
    return list(compile_source(source, mode).errors)


def compiled_or_raise(source: str, mode: str) -> Compiled:
    """:func:`compile_source`, raising :class:`ScriptCompileError` for code that does not compile."""
    if not isinstance(source, str):
        raise TypeError(f"expected a string to {'evaluate' if mode == 'eval' else 'execute'}, "
                        f"got {type(source).__name__}")
    compiled = compile_source(source, mode)
    if compiled.code is None:
        raise ScriptCompileError("; ".join(compiled.errors), source, compiled.lineno)
    return compiled
