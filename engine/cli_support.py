"""What every ``regflow`` command group shares: the transaction, JSON output, the exit-code contract."""
from __future__ import annotations

import functools
import json
import sys
from datetime import date, datetime
from typing import Any, Callable

import click

from engine.errors import EngineError


def tx():
    """A transaction on the configured database (commit on success, roll back on error)."""
    from engine.config import load_settings
    from engine.db import session_factory, transaction

    return transaction(session_factory(load_settings().database_url))


def json_default(o: Any):
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def emit(doc: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """``--json``: exactly one JSON document on stdout; otherwise the human rendering."""
    if as_json or human is None:
        click.echo(json.dumps(doc, default=json_default, ensure_ascii=False, indent=2))
    else:
        text = human(doc)
        if text:
            click.echo(text)


def handle_errors(fn):
    """Map engine errors to the exit-code contract (2 invalid, 3 not found, 4 conflict, 5 not allowed).
    The message goes to stderr; with ``--json`` the error and its details are also printed as data."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": exc.message, **exc.details}, default=json_default,
                                      ensure_ascii=False, indent=2))
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)
