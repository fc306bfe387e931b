"""The web fixtures (a demo database copied per test, the app, a live server on loopback), a designer signed in
on the app's test client, an officer's API token, an open task of a deployed test process, and each test's
:class:`~tests.fuzz.support.Tally` — written, with the test's outcome, to the JSON file that
``REGFLOW_FUZZ_REPORT`` names at the end of the run (``bench/security.py`` reads it)."""
from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.runtime import clock, users
from scoring.models import Entity
from tests.fuzz.support import REPORT_ENV, Tally
from tests.supervision.test_inbox_service import deploy_task_processes, start_task
from tests.web import conftest as web_fixtures
from tests.web.conftest import PASSWORD

# the web fixtures, registered for this package too (a conftest's fixtures reach only its own directory, and
# ``pytest_plugins`` is allowed only in the top-level conftest): bound by assignment, so the fixtures below can
# take them as arguments
web_template, web_env, app, client, live = (web_fixtures.web_template, web_fixtures.web_env, web_fixtures.app,
                                            web_fixtures.client, web_fixtures.live)

TASK_PROCESS = "fuzz_extension"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
#: node id -> {"outcome", "cases", "answers", …}
_REPORT: dict[str, dict] = {}


@pytest.fixture
def tally(request):
    t = Tally()
    yield t
    _REPORT.setdefault(request.node.nodeid, {}).update(t.to_dict())


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.failed and report.when == "setup"):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        _REPORT.setdefault(report.nodeid, {})["outcome"] = outcome
        _REPORT[report.nodeid]["seconds"] = round(report.duration, 2)


def pytest_sessionfinish(session):
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps({"tests": _REPORT}, indent=1, ensure_ascii=False), encoding="utf-8")


def sign_in(client, username: str) -> dict:
    """Sign ``client`` in through the login form; returns the headers a later POST needs (the CSRF token)."""
    token = _CSRF.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    r = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.status_code
    return {"X-CSRF-Token": _CSRF.search(client.get("/auth/login").get_data(as_text=True)).group(1)}


@pytest.fixture
def designer(client):
    """``(client, headers)``: the test client signed in as the demo designer."""
    return client, sign_in(client, "designer")


@pytest.fixture
def officer_headers(web_env) -> dict:
    with web_env.tx() as s:
        return {"Authorization": f"Bearer {users.issue_token(s, 'officer', 'fuzz', actor='admin')}"}


@pytest.fixture
def new_task(web_env):
    """``new_task()`` → the id of a fresh open extension-request task for the officers (process deployed once);
    ``new_task.uscc``: the entity its instances are for (in the demo officer's jurisdiction)."""
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, (TASK_PROCESS, {"form_id": "extension_request"}))
        uscc = s.scalars(select(Entity.uscc).order_by(Entity.id).limit(1)).one()

    def make() -> int:
        with web_env.tx() as s:
            return start_task(web_env.runtime, s, TASK_PROCESS, key=uscc, due=clock.now() + timedelta(days=3)).id
    make.uscc = uscc
    return make
