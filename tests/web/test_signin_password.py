"""Issue 17, findings 4 and 5 over real HTTP: every signed-in user changes their password at /auth/password
(linked from the header: the current one, the new one twice; the policy names the rule it breaks; the other
browsers' sessions end, this one goes on); an administrator resets a password from the CLI."""
from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from engine.cli.passwords import reset_password
from engine.runtime import throttle, users
from engine.runtime.models import AuditEvent
from tests.web.conftest import PASSWORD, HttpUser
from tests.web.test_signin_throttle import anonymous, attempt

NEW = "plum-harbor-73"


@pytest.fixture(autouse=True)
def slow_first_wait(monkeypatch):
    """The first wait 30 s (not 1 s): a slow machine never sees a wait run out between two requests."""
    monkeypatch.setattr(throttle, "BASE_DELAY_S", 30.0)


def _change(user: HttpUser, current: str, new: str, again: str | None = None):
    return user.post("/auth/password", {"current_password": current, "new_password": new,
                                        "new_password2": new if again is None else again})


def test_the_header_links_the_page_for_every_role(http):
    for role in ("officer", "designer", "auditor", "admin"):
        u = http(role)
        home = u.get("/", allow_redirects=True)
        assert 'id="change-password"' in home.text and "修改密码" in home.text
        page = u.get("/auth/password")
        assert page.status_code == 200 and 'name="current_password"' in page.text


def test_change_ends_the_other_sessions_and_keeps_this_one(http, live, web_env):
    here, elsewhere = http("officer"), http("officer")
    r = _change(here, PASSWORD, NEW)
    assert r.status_code == 302
    assert here.get("/inbox/").status_code == 200
    assert elsewhere.get("/inbox/").status_code == 302
    assert attempt(anonymous(live), "officer", PASSWORD).status_code == 401
    HttpUser(live).login("officer", NEW)
    with web_env.tx() as s:
        kinds = [(e.kind, e.actor, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.chain == "system").order_by(AuditEvent.seq.desc()).limit(4))]
    assert ("password_changed", "officer", {"username": "officer"}) in kinds


@pytest.mark.parametrize("current, new, again, message", [
    ("wrong-current-9", NEW, None, "当前密码错误"),
    (PASSWORD, NEW, "plum-harbor-74", "两次输入的新密码不一致"),
    (PASSWORD, "12345678", None, "密码至少需要 10 个字符"),
    (PASSWORD, "Password2024!", None, "此密码过于常见"),
    (PASSWORD, "Officer-2024", None, "密码不能是用户名"),
    (PASSWORD, "aaaa11111aaaa", None, "至少需要包含 5 个不同的字符"),
    (PASSWORD, PASSWORD, None, "新密码不能与当前密码相同"),
])
def test_refusals_name_the_rule_and_change_nothing(http, live, current, new, again, message):
    officer = http("officer")
    r = _change(officer, current, new, again)
    assert r.status_code == 400 and message in r.text, r.text[-2000:]
    assert officer.get("/inbox/").status_code == 200
    HttpUser(live).login("officer")  # the password is what it was


def test_the_current_password_is_throttled_like_a_sign_in(http):
    officer = http("officer")
    codes = [_change(officer, f"wrong-current-{i}", NEW).status_code for i in range(7)]
    assert codes[:5] == [400] * 5 and codes[5:] == [429, 429]


def test_the_page_needs_a_browser_session(http, web_env, live):
    assert http().get("/auth/password").status_code == 302
    with web_env.tx() as s:
        token = users.issue_token(s, "officer", "script", actor="admin")
    r = requests.get(live + "/auth/password", headers={"Authorization": f"Bearer {token}"}, allow_redirects=False)
    assert r.status_code == 403


def test_an_administrator_resets_a_password_from_the_cli(http, live, web_env, monkeypatch):
    monkeypatch.setenv("REGFLOW_DATABASE_URL", web_env.url)
    signed_in = http("officer", username="officer2")
    runner = CliRunner()
    weak = runner.invoke(reset_password, ["officer2", "--user", "admin"], input="12345678\n")
    assert weak.exit_code == 2 and "10" in weak.output
    refused = runner.invoke(reset_password, ["officer2", "--user", "officer"], input=NEW + "\n")
    assert refused.exit_code == 5
    done = runner.invoke(reset_password, ["officer2", "--user", "admin", "--json"], input=NEW + "\n")
    assert done.exit_code == 0, done.output
    assert signed_in.get("/inbox/").status_code == 302
    HttpUser(live).login("officer2", NEW)
    with web_env.tx() as s:
        row = s.scalar(select(AuditEvent).where(AuditEvent.kind == "password_reset"))
        assert (row.actor, row.detail["username"], row.detail["origin"]["via"]) == ("admin", "officer2", "cli")
