"""What every ``regflow`` command group shares: the CLI's state (settings, database, runtime, the acting
user), the transaction, JSON output, the exit-code contract and the documents several groups print."""
from __future__ import annotations

import functools
import getpass
import json
import os
import sys
import unicodedata
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Callable

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from engine.bootstrap import build_runtime, form_hasher
from engine.commands.nesting import MAX_DEPTH, too_deep
from engine.config import SettingError, load_settings
from engine.db import session_factory, transaction
from engine.errors import EngineError, InvalidInput
from engine.policy import Actor, load_actor
from engine.runtime import audit as audit_log


def os_user() -> str:
    """The operating-system user running this command (recorded with what it does)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return f"uid:{os.getuid()}"


class CliState:
    def __init__(self) -> None:
        self.settings = load_settings()
        self._runtime = None
        self._factory = None

    @property
    def factory(self):
        if self._factory is None:
            self._factory = session_factory(self.settings.database_url)
        return self._factory

    @property
    def runtime(self):
        if self._runtime is None:
            self._runtime = build_runtime(self.settings)
        return self._runtime

    @contextmanager
    def tx(self):
        """A transaction whose audit events record that they came from the CLI, run by ``os_user()``."""
        with audit_log.origin(via="cli", os_user=os_user()), transaction(self.factory) as session:
            yield session

    def actor(self, session, username: str) -> Actor:
        """``--user`` as the policy sees them: the CLI is an operator's edge, the same rules apply; the audit
        log also records the operating-system user who ran the command."""
        return load_actor(session, username, via="cli", os_user=os_user())

    def form_hash(self):
        return form_hasher(self.settings)


pass_state = click.make_pass_decorator(CliState, ensure=True)


@contextmanager
def tx():
    """A transaction on the configured database (commit on success, roll back on error), whose audit events record
    that they came from the CLI and which operating-system user ran it (as :meth:`CliState.tx`)."""
    with audit_log.origin(via="cli", os_user=os_user()), \
            transaction(session_factory(load_settings().database_url)) as session:
        yield session


def parse_json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        value, path = None, "(whole value)"
    else:
        path = too_deep(value)
    if path is not None:
        raise InvalidInput(f"{what}: the value at {path[:120]} is nested more than {MAX_DEPTH} levels deep")
    return value


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


def schema_missing(exc: BaseException) -> str | None:
    """The database's own words when ``exc`` says a table does not exist (a database ``regflow init`` never
    set up, or set up by an older release), else None. SQLite: "no such table"; PostgreSQL: SQLSTATE 42P01."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42P01" or str(orig).startswith("no such table"):
        return str(orig).splitlines()[0]
    return None


def run(group: click.Group) -> None:
    """Run the command group; a database without regflow's tables, or a ``REGFLOW_`` setting with a value it
    cannot take, gets one line saying what to do (exit 2) instead of a stack trace."""
    try:
        group()
    except SettingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - anything else propagates unchanged
        why = schema_missing(exc)
        if why is None:
            raise
        url = make_url(load_settings().database_url).render_as_string(hide_password=True)
        click.echo(f"error: the database {url} has no regflow schema or an older one "
                   f"({why}): run `regflow init` to create or upgrade it", err=True)
        sys.exit(2)


def _width(text: str) -> int:
    """Terminal columns: a wide (CJK) character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a plain-text table aligned by terminal columns (document numbers and names are Chinese)."""
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(_width(c), *(_width(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(row) for row in cells)])


def instance_doc(inst, outcome_failure=None) -> dict:
    """An instance as the commands that start, move or list instances print it."""
    doc = {"instance_id": inst.id, "process_id": inst.process_id, "business_key": inst.business_key,
           "status": inst.status, "rev": inst.rev, "started_at": inst.started_at, "ended_at": inst.ended_at}
    if outcome_failure:
        doc["failure"] = outcome_failure
    return doc
