"""Configuration read from environment variables with the ``REGFLOW_`` prefix.

Every setting is documented here and in the README. Nothing reads ``os.environ`` elsewhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from engine.errors import InvalidInput

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"REGFLOW_{name}", default)


class SettingError(InvalidInput):
    """A ``REGFLOW_`` variable whose value the setting cannot take (named, with the value)."""


def _number(name: str, default: str, kind: type = int):
    """A number setting, 0 or more: ``REGFLOW_<name>`` or ``default``; anything else raises :class:`SettingError`."""
    raw = _env(name, default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value >= 0:  # (also NaN)
        what = "a whole number" if kind is int else "a number"
        raise SettingError(f"REGFLOW_{name}={raw!r}: {what} of 0 or more is needed")
    return value


@dataclass(frozen=True)
class Settings:
    #: SQLAlchemy URL. SQLite file under var/ by default; ``postgresql+psycopg://…`` for PostgreSQL.
    database_url: str = field(default_factory=lambda: _env(
        "DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'var' / 'regflow.db'}"))
    #: How many times a failing service task is retried before an incident is opened.
    service_retries: int = field(default_factory=lambda: _number("SERVICE_RETRIES", "3"))
    #: Backoff base in seconds: retry n waits base * 2**(n-1).
    retry_backoff_s: float = field(default_factory=lambda: _number("RETRY_BACKOFF_S", "30", float))
    #: A batch of at least this many starts (a campaign launch) is computed in two processes on SQLite,
    #: the second forked without database access (``engine/runtime/parallel.py``); 0: never.
    parallel_start_from: int = field(default_factory=lambda: _number("PARALLEL_START_FROM", "1000"))
    #: Wall-clock budget of one script / expression evaluation, in seconds.
    script_time_budget_s: float = field(default_factory=lambda: _number("SCRIPT_TIME_BUDGET_S", "2", float))
    #: Seconds between two polls of the worker.
    worker_interval_s: float = field(default_factory=lambda: _number("WORKER_INTERVAL_S", "2", float))
    #: Folder of form definitions.
    forms_dir: str = field(default_factory=lambda: _env("FORMS_DIR", str(PROJECT_ROOT / "forms" / "definitions")))
    #: Folder holding the BPMN/DMN library that ``regflow demo`` deploys.
    processes_dir: str = field(default_factory=lambda: _env("PROCESSES_DIR", str(PROJECT_ROOT / "processes")))
    #: Comma-separated Python modules imported at start-up that register extra service operators.
    plugins: str = field(default_factory=lambda: _env("PLUGINS", ""))
    #: Seconds between checks for a working-day calendar changed by another process.
    calendar_check_s: float = field(default_factory=lambda: _number("CALENDAR_CHECK_S", "10", float))

    #: Secret key signing web sessions and CSRF tokens. Empty: a random key kept in ``var/secret_key``.
    secret_key: str = field(default_factory=lambda: _env("SECRET_KEY", ""))
    #: Folder where evidence uploads are stored (content-addressed by SHA-256).
    upload_dir: str = field(default_factory=lambda: _env("UPLOAD_DIR", str(PROJECT_ROOT / "var" / "uploads")))
    #: Largest accepted upload, in megabytes.
    max_upload_mb: float = field(default_factory=lambda: _number("MAX_UPLOAD_MB", "10", float))
    #: Send the session cookie only over HTTPS (set to 1 behind TLS).
    secure_cookies: bool = field(default_factory=lambda: _env("SECURE_COOKIES", "0") == "1")

    #: Set to 1 (the test suite does) to check the engine's fast paths against SpiffWorkflow's own code as
    #: they run: every task-tree walk and every direct data inheritance is compared with SpiffWorkflow's, and
    #: a service operator registered as only reading fails if it writes. Slow; for tests only.
    engine_cross_check: bool = field(default_factory=lambda: _env("ENGINE_CROSS_CHECK", "0") == "1")
    #: Set to 1 (the test suite does) to build every workflow state also with SpiffWorkflow's own converter
    #: and the standard JSON encoder, and fail if regflow's faster serialization differs. Slow; for tests only.
    serializer_cross_check: bool = field(default_factory=lambda: _env("SERIALIZER_CROSS_CHECK", "0") == "1")

    def with_overrides(self, **kw) -> "Settings":
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in kw.items() if k in known})


def load_settings(**overrides) -> Settings:
    return Settings().with_overrides(**overrides)
