"""Configuration read from environment variables with the ``REGFLOW_`` prefix.

Every setting is documented here and in the README. Nothing reads ``os.environ`` elsewhere.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from engine.errors import InvalidInput

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"REGFLOW_{name}", default)


class SettingError(InvalidInput):
    """A ``REGFLOW_`` variable whose value the setting cannot take (named, with the value)."""


def _password_memory() -> int:
    value = _number("PASSWORD_HASH_MEMORY_KIB", "65536")
    if value < 64:
        raise SettingError(f"REGFLOW_PASSWORD_HASH_MEMORY_KIB={value}: at least 64 (KiB) is needed")
    return value


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


def _above_zero(name: str, default: str) -> float:
    """A number setting above 0 (a duration that cannot be nothing)."""
    value = _number(name, default, float)
    if value == 0:
        raise SettingError(f"REGFLOW_{name}={_env(name, default)!r}: a number above 0 is needed")
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
    #: The most items (elements, characters, bytes) one value made by a script or expression may hold: a longer
    #: ``range``, a larger ``'x' * n``, ``s.ljust(n)``, ``'%0*d'`` … is refused before it runs (an incident).
    #: 0: no limit.
    script_max_items: int = field(default_factory=lambda: _number("SCRIPT_MAX_ITEMS", "1000000"))
    #: The most, in MB, a running script or expression may grow the process's resident memory (sampled while it
    #: loops); past it the step becomes an incident. 0: not checked.
    script_max_memory_mb: float = field(default_factory=lambda: _number("SCRIPT_MAX_MEMORY_MB", "128", float))
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
    #: Set to 1 to show risk classes on the public pages (an inspection result's class, a plan's count drawn
    #: per class); by default they are never public. The control stratum is never public.
    publish_risk_class: bool = field(default_factory=lambda: _env("PUBLISH_RISK_CLASS", "0") == "1")
    #: The "lower amount" of a fine (较低数额, set by each province), in yuan: a published penalty of a warning and a
    #: fine of at most this much stops being public after three months, any other after three years
    #: (``engine/supervision/publication_deadlines.py``).
    publicity_low_fine_yuan: float = field(default_factory=lambda: _number("PUBLICITY_LOW_FINE_YUAN", "10000", float))

    #: Secret key signing web sessions and CSRF tokens. Empty: a random key kept in ``var/secret_key``.
    secret_key: str = field(default_factory=lambda: _env("SECRET_KEY", ""))
    #: Folder where evidence uploads are stored (content-addressed by SHA-256).
    upload_dir: str = field(default_factory=lambda: _env("UPLOAD_DIR", str(PROJECT_ROOT / "var" / "uploads")))
    #: Folder of the signing keys of official documents: the demo root CA and one key and certificate per agency
    #: (``regflow documents keys --demo``, run by ``regflow demo``). Private keys: keep it readable by the app only.
    keys_dir: str = field(default_factory=lambda: _env("KEYS_DIR", str(PROJECT_ROOT / "var" / "keys")))
    #: Largest accepted upload, in megabytes.
    max_upload_mb: float = field(default_factory=lambda: _number("MAX_UPLOAD_MB", "10", float))
    #: Send the session cookie only over HTTPS (set to 1 behind TLS).
    secure_cookies: bool = field(default_factory=lambda: _env("SECURE_COOKIES", "0") == "1")
    #: How many reverse proxies in front of the web app append to ``X-Forwarded-For`` / ``-Proto``; the client
    #: address (sign-in throttling, the audit chain) is read that many hops from the right. 0: the headers are
    #: ignored and the address is the TCP peer.
    trusted_proxies: int = field(default_factory=lambda: _number("TRUSTED_PROXIES", "0"))
    #: A web session ends after this many hours without a request.
    session_idle_hours: float = field(default_factory=lambda: _above_zero("SESSION_IDLE_HOURS", "12"))
    #: A web session ends this many hours after its sign-in, however active.
    session_max_hours: float = field(default_factory=lambda: _above_zero("SESSION_MAX_HOURS", "24"))
    #: The shortest password accepted when a password is set (other rules: not a common password, not the user
    #: name; ``engine/runtime/passwords.py``).
    password_min_length: int = field(default_factory=lambda: _number("PASSWORD_MIN_LENGTH", "10"))
    #: The argon2id cost of a new password hash: passes over memory and KiB of memory (argon2-cffi's defaults, the
    #: RFC 9106 low-memory profile: 3 and 65536 — about a quarter of a second here). A stored hash carries its own
    #: parameters, so changing them never locks anyone out: a sign-in re-hashes a password stored with others. The
    #: test suite lowers them (tests/conftest.py) — never do so in production.
    password_hash_time_cost: int = field(default_factory=lambda: int(_above_zero("PASSWORD_HASH_TIME_COST", "3")))
    password_hash_memory_kib: int = field(default_factory=lambda: _password_memory())
    #: Failed sign-ins to one account from one address (or one known browser) before each further attempt
    #: waits (1 s, doubling); per account from anywhere and per address the allowance is larger
    #: (``engine/runtime/signin.py``).
    signin_free_attempts: int = field(default_factory=lambda: _number("SIGNIN_FREE_ATTEMPTS", "5"))
    #: The longest wait, in seconds, between two sign-in attempts to one account from one address; the wait
    #: for an account tried from many addresses is at most a minute, so strangers cannot lock an officer out.
    signin_max_delay_s: float = field(default_factory=lambda: _number("SIGNIN_MAX_DELAY_S", "900", float))
    #: Days an entity portal access code stays valid after it is issued (``regflow portal code --days`` overrides).
    portal_code_days: int = field(default_factory=lambda: int(_above_zero("PORTAL_CODE_DAYS", "60")))
    #: A business's portal session ends this many hours after it signed in with its access code.
    portal_session_hours: float = field(default_factory=lambda: _above_zero("PORTAL_SESSION_HOURS", "2"))
    #: Comma-separated roles whose users must sign in with a second factor (a TOTP code, ``/auth/two-factor``);
    #: they enrol at their next sign-in. Empty: nobody must (users who enrolled are still asked for a code).
    two_factor_roles: str = field(default_factory=lambda: _env("TWO_FACTOR_ROLES", "admin,supervisor"))
    #: Days the read log (who opened which dossier, evidence file or record) is kept; older rows are pruned by
    #: the worker. 0: kept for ever. The audit chains are never pruned.
    log_retention_days: int = field(default_factory=lambda: _number("LOG_RETENTION_DAYS", "183"))

    #: How many simulations one user may have queued or running at once (the designer's Simulate page); one more
    #: is refused (429) until one of them ends.
    simulation_jobs_per_user: int = field(default_factory=lambda: _number("SIMULATION_JOBS_PER_USER", "2"))
    #: Wall-clock limit of one simulation job run by the worker, in seconds; past it the job fails.
    simulation_timeout_s: float = field(default_factory=lambda: _above_zero("SIMULATION_TIMEOUT_S", "600"))
    #: A running background job (a simulation) whose worker has given no sign of life for this many seconds
    #: (its heartbeat comes every couple of seconds) is marked failed by the next worker poll: its worker died.
    background_job_stale_s: float = field(default_factory=lambda: _above_zero("BACKGROUND_JOB_STALE_S", "120"))

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


def app_secret(settings: Settings) -> str:
    """The installation's secret: ``REGFLOW_SECRET_KEY``, else a random key created once in ``var/secret_key``
    (shared by every process on the machine: web sessions, CSRF tokens, the portal's code hashes)."""
    if settings.secret_key:
        return settings.secret_key
    path = PROJECT_ROOT / "var" / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()
