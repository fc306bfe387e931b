"""Compiling what a process designer writes under regflow's restrictions (:mod:`engine.runtime.scripting`).

Code is compiled with RestrictedPython's ``compile_restricted_eval``/``compile_restricted_exec`` under
:class:`RegflowPolicy` — RestrictedPython's policy, plus: no ``import``, no ``class``, no call of a builtin
the sandbox refuses, and a deadline check injected at the top of every loop body and every ``except`` and
``finally`` body — and cached per source text, together with what the time budget needs to know about it
(:class:`Compiled`: does it loop, which names does it call or pass on).
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

__all__ = [
    "DEADLINE_GUARD",
    "FORBIDDEN_BUILTINS",
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

#: name of the deadline check injected at the top of every ``except``/``finally`` body
DEADLINE_GUARD = "_deadline_check_"

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
class Compiled:
    """Compiled code (or why it does not compile) and what the time budget needs to know about it."""

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
