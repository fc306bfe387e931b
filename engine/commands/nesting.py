"""How deep a person's input may nest: one rule for every edge (the web's JSON bodies and forms in
``web/params.py``, the CLI's ``--data``/``--payload`` JSON in ``engine/cli/support.py``)."""
from __future__ import annotations

from typing import Any

#: the deepest nesting accepted (levels of objects and arrays)
MAX_DEPTH = 32


def too_deep(value: Any, limit: int = MAX_DEPTH, root: str = "") -> str | None:
    """The path (``data.items[0].x``) of the first value nested more than ``limit`` levels deep, else ``None``.
    Walks without recursion, so any depth can be checked."""
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        if depth >= limit:
            return path or "(body)"
        stack.extend((child, child_path, depth + 1) for child, child_path in reversed(children))
    return None
