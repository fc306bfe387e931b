"""Web fixtures: a demo database built once per test session and copied for each test, the app on
that copy, a real HTTP server (waitress in a thread), signed-in ``requests`` sessions per role, and
Debian's chromium driven by Playwright.

Roles and their demo accounts (password ``regflow-demo``) are those of ``engine/demo.py``.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from engine.bootstrap import build_runtime
from engine.config import load_settings
from engine.db import dispose_engines, session_factory, transaction
from engine.demo import load_demo
from engine.schema import upgrade
from engine.supervision.calendar import seed_from_chinese_calendar
from tests.conftest import IN_CI, ROOT
from web import create_app

CHROMIUM = os.environ.get("REGFLOW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "regflow-demo"
#: one demo account per role
ROLE_USERS = {"designer": "designer", "officer": "officer", "team_leader": "leader", "supervisor": "supervisor",
              "auditor": "auditor", "admin": "admin"}
WEB_ENTITIES = 300
WEB_TRAINING = 4000


@pytest.fixture(scope="session")
def web_template(tmp_path_factory) -> Path:
    """A migrated SQLite database holding the demo data set (small registry), built once."""

    path = tmp_path_factory.mktemp("web-template") / "regflow.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    settings = load_settings(database_url=url, keys_dir=str(path.parent / "keys"))  # the demo's signing keys
    with transaction(session_factory(url)) as s:
        seed_from_chinese_calendar(s)
    with transaction(session_factory(url)) as s:
        load_demo(build_runtime(settings), s, settings, entities=WEB_ENTITIES, training_entities=WEB_TRAINING)
    dispose_engines()
    return path


@dataclass
class WebEnv:
    url: str
    settings: object
    tmp: Path

    @property
    def factory(self):
        return session_factory(self.url)

    def tx(self):
        return transaction(self.factory)

    @property
    def runtime(self):
        return build_runtime(self.settings)


@pytest.fixture
def web_env(web_template, tmp_path) -> WebEnv:
    db = tmp_path / "regflow.db"
    shutil.copyfile(web_template, db)
    url = f"sqlite:///{db}"
    settings = load_settings(database_url=url, upload_dir=str(tmp_path / "uploads"), secret_key="test-secret-key",
                             max_upload_mb=1.0, keys_dir=str(web_template.parent / "keys"))
    yield WebEnv(url, settings, tmp_path)
    dispose_engines()


@pytest.fixture
def app(web_env):
    return create_app({"TESTING": True}, settings=web_env.settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live(app):
    """The app behind a real HTTP server on a free port (werkzeug's threaded server, which stops
    cleanly; ``regflow serve`` uses waitress, covered by test_serve.py): yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class HttpUser:
    """A ``requests`` session that signs in through the login form and sends the CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        # no keep-alive: a connection still open when the test server stops makes waitress's loop
        # thread fail at teardown
        self.http.headers["Connection"] = "close"
        self.csrf = ""

    def refresh_csrf(self, html: str | None = None) -> str:
        html = html if html is not None else self.http.get(self.base + "/auth/login").text
        m = _CSRF.search(html)
        assert m, "page carries no csrf-token meta tag"
        self.csrf = m.group(1)
        return self.csrf

    def login(self, username: str, password: str = PASSWORD):
        self.refresh_csrf()
        r = self.http.post(self.base + "/auth/login", data={"username": username, "password": password,
                                                            "csrf_token": self.csrf}, allow_redirects=False)
        assert r.status_code == 302, f"sign-in of {username} failed: {r.status_code}"
        self.refresh_csrf(self.http.get(self.base + "/auth/login").text)
        return self

    def get(self, path: str, **kw):
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, **kw)

    def post(self, path: str, data=None, **kw):
        kw.setdefault("allow_redirects", False)
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.http.post(self.base + path, data=data, **kw)


@pytest.fixture
def http(live):
    """``http("officer")`` → a signed-in HttpUser for that role's demo account; ``http(None)`` anonymous."""
    def make(role: str | None = None, username: str | None = None) -> HttpUser:
        u = HttpUser(live)
        if role or username:
            u.login(username or ROLE_USERS[role])
        else:
            u.refresh_csrf()
        return u
    return make


# ------------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        msg = f"browser tests need Debian's chromium at {CHROMIUM} (./test installs it with apt)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (playwright: only the browser tests)

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser, live, request):
    """A fresh browser context on the live server; a screenshot is saved under test-artifacts/ at the end."""
    ctx = browser.new_context(base_url=live, viewport={"width": 1400, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    pg.set_default_timeout(15000)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        ctx.close()


def sign_in(page, role: str | None = None, username: str | None = None) -> None:
    page.goto("/auth/login")
    page.fill("input[name=username]", username or ROLE_USERS[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")
