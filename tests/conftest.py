"""Shared fixtures: a fresh database per test (SQLite file, and PostgreSQL schema when reachable),
a runtime wired with the test service operators, and the demo users of the engine tests."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.bootstrap import build_runtime
from engine.config import load_settings
from engine.db import dispose_engines, session_factory, transaction
from engine.demo import DEMO_DATA
from engine.runtime import patches
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.users import add_user
from engine.schema import upgrade
from engine.supervision.signing import ensure_demo_keys

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PG_BASE = os.environ.get("REGFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# every workflow state the suite writes (here and in the CLI/worker processes it starts) is also built with
# SpiffWorkflow's own converter and compared with regflow's faster one (engine/runtime/serializer.py)
os.environ.setdefault("REGFLOW_SERIALIZER_CROSS_CHECK", "1")
# and every task-tree walk regflow's workflows make is compared with SpiffWorkflow's iterator
# (engine/runtime/spiff_speedups.py). Settings read these (engine/config.py); this process gets them from
# the engine_patches fixture, every process the suite starts from build_runtime.
os.environ.setdefault("REGFLOW_ENGINE_CROSS_CHECK", "1")
# the demo accounts sign in with their password alone; the second factor (admin, supervisor by default) is
# tested with the setting given explicitly (tests/web/test_two_factor.py)
os.environ.setdefault("REGFLOW_TWO_FACTOR_ROLES", "")
# passwords are hashed at the lowest argon2 cost (1 pass over 64 KiB: ~0.1 ms instead of ~0.25 s): the suite
# creates thousands of accounts (the simulated office alone has 55). The tests about what the cost protects
# (unknown accounts cost a real check) set the production cost back (PRODUCTION_HASH_COST below).
os.environ.setdefault("REGFLOW_PASSWORD_HASH_TIME_COST", "1")
os.environ.setdefault("REGFLOW_PASSWORD_HASH_MEMORY_KIB", "64")
#: the production default of the two settings above, for the tests that need it
PRODUCTION_HASH_COST = {"REGFLOW_PASSWORD_HASH_TIME_COST": "3", "REGFLOW_PASSWORD_HASH_MEMORY_KIB": "65536"}
# the processes issue official documents signed with their agency's key: the demo agencies' keys, made once for
# the session in a folder of its own (the document_keys fixture), never in the project's var/keys — and, when
# pytest-xdist runs the suite in several processes (./test does), one folder per process: each makes its keys
if "REGFLOW_KEYS_DIR" not in os.environ or os.environ.get("REGFLOW_TEST_OWN_KEYS_DIR") == "1":
    os.environ["REGFLOW_KEYS_DIR"] = tempfile.mkdtemp(prefix="regflow-test-keys-")
    os.environ["REGFLOW_TEST_OWN_KEYS_DIR"] = "1"

_pg_state: dict = {}


@pytest.fixture(scope="session", autouse=True)
def engine_patches():
    """What ``build_runtime`` installs (engine/runtime/patches.py), with the cross-checks above, before any
    test: tests also run workflows, the serializer and the transaction cache without building a runtime."""
    return patches.install(load_settings())


@pytest.fixture(scope="session", autouse=True)
def document_keys():
    """The demo root and a signing key per demo agency in ``REGFLOW_KEYS_DIR`` (see above)."""
    with (DEMO_DATA / "agencies.csv").open(encoding="utf-8-sig", newline="") as f:
        return ensure_demo_keys(load_settings().keys_dir, [(r["code"], r["name"]) for r in csv.DictReader(f)])


def pg_available() -> tuple[bool, str]:
    if "ok" not in _pg_state:
        try:
            eng = create_engine(PG_BASE)
            with eng.connect() as c:
                c.execute(text("select 1"))
            eng.dispose()
            _pg_state.update(ok=True, why="")
        except Exception as exc:  # noqa: BLE001
            _pg_state.update(ok=False, why=f"PostgreSQL at {PG_BASE} unreachable: {exc.__class__.__name__}: {exc}")
    return _pg_state["ok"], _pg_state["why"]


def pytest_report_header(config):
    ok, why = pg_available()
    return f"regflow: PostgreSQL tests {'enabled' if ok else 'SKIPPED — ' + why}"


@dataclass
class Db:
    kind: str
    url: str
    env: dict

    @property
    def factory(self):
        return session_factory(self.url)

    def tx(self):
        return transaction(self.factory)


def _effect_table(url: str) -> None:
    """The table the test service operator writes its side effects to."""
    # imported here, not at the top: importing it registers the test service operators, which only the tests
    # with a database or a runtime get (the same for the runtime fixture below)
    from tests.support.services import ensure_effect_table  # noqa: PLC0415  (registers the test operators)

    with transaction(session_factory(url)) as s:
        ensure_effect_table(s)


def _pg_url(schema: str) -> str:
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A migrated, empty database on each backend."""
    yield from _database(request.param, tmp_path)


@pytest.fixture
def pg_db(tmp_path):
    """A migrated, empty PostgreSQL database, for behaviour only PostgreSQL has (COPY, sequences)."""
    yield from _database("postgresql", tmp_path)


def _database(kind: str, tmp_path):

    with empty_database(kind, tmp_path) as url:
        upgrade(url)
        _effect_table(url)
        env = {**os.environ, "REGFLOW_DATABASE_URL": url, "REGFLOW_PLUGINS": "tests.support.services",
               "PYTHONPATH": str(ROOT), "REGFLOW_RETRY_BACKOFF_S": "60"}
        yield Db(kind, url, env)
        dispose_engines()


@contextmanager
def empty_database(kind: str, tmp_path):
    """The URL of an empty database nobody migrated: a new SQLite file, or a new PostgreSQL schema (dropped
    afterwards; skipped with the reason outside CI when PostgreSQL is not reachable, a failure in CI)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'regflow.db'}"
        return
    ok, why = pg_available()
    if not ok:
        if IN_CI:
            pytest.fail(f"CI must run the PostgreSQL tests: {why}")
        pytest.skip(why)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    try:
        yield _pg_url(schema)
    finally:
        eng = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        eng.dispose()


@pytest.fixture
def sqlite_db(tmp_path):

    url = f"sqlite:///{tmp_path / 'regflow.db'}"
    upgrade(url)
    _effect_table(url)
    env = {**os.environ, "REGFLOW_DATABASE_URL": url, "REGFLOW_PLUGINS": "tests.support.services",
           "PYTHONPATH": str(ROOT), "REGFLOW_RETRY_BACKOFF_S": "60"}
    yield Db("sqlite", url, env)
    dispose_engines()


@pytest.fixture
def runtime():
    import tests.support.services  # noqa: F401, PLC0415  (registers the test operators)

    return build_runtime(load_settings(retry_backoff_s=60.0, service_retries=2, script_time_budget_s=0.5))


@pytest.fixture
def people(db):
    """alice and bob (officers), sam (supervisors)."""
    with db.tx() as s:
        add_user(s, "alice", "alice-pass-1", "officer", "officers")
        add_user(s, "bob", "bob-pass-12", "officer", "officers")
        add_user(s, "sam", "sam-pass-123", "supervisor", "supervisors")
    return ["alice", "bob", "sam"]


def deploy_files(runtime, db, *names: str, actor: str = "designer"):
    files = read_paths([DATA / "engine" / n for n in names])
    with db.tx() as s:
        return deploy(runtime, s, files, actor)


def run_cli(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "regflow"
    return subprocess.run([str(exe), *args], env=env, input=input, capture_output=True, text=True, timeout=120)


def cli_json(env: dict, *args: str, input: str | None = None):
    proc = run_cli(env, *args, "--json", input=input)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)
