"""Two-factor sign-in (TOTP) over real HTTP: administrators and supervisors enrol at their next sign-in, then give
a code after the password; a code is accepted once; codes are throttled like passwords; an administrator removes a
user's second factor. The rest of the suite runs with ``REGFLOW_TWO_FACTOR_ROLES`` empty (tests/conftest.py);
here it is the default, ``admin,supervisor``."""
from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import select

from engine.runtime.models import AppUser, AuditEvent
from tests.web.conftest import PASSWORD, HttpUser
from web import create_app

SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


@pytest.fixture
def app(web_env):
    return create_app({"TESTING": True}, settings=web_env.settings.with_overrides(two_factor_roles="admin,supervisor"))


def password_step(live: str, username: str) -> tuple[HttpUser, object]:
    u = HttpUser(live)
    u.refresh_csrf()
    r = u.http.post(live + "/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": u.csrf},
                    allow_redirects=False)
    return u, r


def enrol(live: str, username: str) -> tuple[HttpUser, str]:
    """Sign ``username`` in through the enrolment; returns the browser and the secret."""
    u, r = password_step(live, username)
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/two-factor")
    page = u.get("/auth/two-factor")
    u.refresh_csrf(page.text)
    secret = SECRET.search(page.text).group(1)
    r = u.post("/auth/two-factor", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 302, r.text
    u.refresh_csrf(u.get("/auth/login").text)
    return u, secret


def later_code(secret: str, steps: int = 1) -> str:
    """A code of a coming time step (accepted: one step of drift either way), never used before."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def test_the_password_alone_signs_an_administrator_in_nowhere(live):
    u, r = password_step(live, "admin")
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/two-factor")
    assert u.get("/admin/").status_code == 302  # to the sign-in page: nobody is signed in yet
    page = u.get("/auth/two-factor")
    assert page.status_code == 200 and 'id="totp-secret"' in page.text and "otpauth://totp/regflow:admin" in page.text
    assert u.get("/auth/two-factor").text.count(SECRET.search(page.text).group(1)) >= 1  # a reload: the same key
    u.refresh_csrf(page.text)
    r = u.post("/auth/two-factor", {"code": "000000"})
    assert r.status_code == 400 and "动态码错误" in r.text
    assert u.get("/admin/").status_code == 302


def test_enrolment_then_a_code_at_every_sign_in_each_code_once(live, web_env):
    u, secret = enrol(live, "admin")
    assert u.get("/admin/").status_code == 200
    with web_env.tx() as s:
        row = s.scalars(select(AppUser).where(AppUser.username == "admin")).one()
        assert row.totp_enabled_at is not None and row.totp_secret == secret
        kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.actor == "admin")
                               .order_by(AuditEvent.id.desc()).limit(2)))
        assert kinds == ["sign_in", "two_factor_enrolled"]
    # a second browser: the code form (no key shown); the code used at enrolment is refused (replay)
    v, r = password_step(live, "admin")
    page = v.get("/auth/two-factor")
    assert 'id="totp-secret"' not in page.text and 'name="code"' in page.text
    v.refresh_csrf(page.text)
    used = pyotp.TOTP(secret).now()
    r = v.post("/auth/two-factor", {"code": used})
    assert r.status_code == 400
    fresh = later_code(secret)
    assert v.post("/auth/two-factor", {"code": fresh}).status_code == 302
    assert v.get("/admin/").status_code == 200
    # the same fresh code from a third browser: refused
    w, _r = password_step(live, "admin")
    w.refresh_csrf(w.get("/auth/two-factor").text)
    assert w.post("/auth/two-factor", {"code": fresh}).status_code == 400
    # a signed-in user sees the state, not a new key
    state = u.get("/auth/two-factor")
    assert 'id="two-factor-state"' in state.text and secret not in state.text


def test_roles_outside_the_setting_sign_in_with_the_password_and_may_enrol(live, http):
    officer = http("officer")
    assert officer.get("/inbox/").status_code == 200
    page = officer.get("/auth/two-factor")
    secret = SECRET.search(page.text).group(1)
    r = officer.post("/auth/two-factor", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 302
    # enrolled of their own will: asked for a code from now on
    _u, r = password_step(live, "officer")
    assert r.headers["Location"].endswith("/auth/two-factor")


def test_codes_are_throttled_like_passwords(live, web_env):
    u, _secret = enrol(live, "supervisor")
    v, _r = password_step(live, "supervisor")
    v.refresh_csrf(v.get("/auth/two-factor").text)
    statuses = [v.post("/auth/two-factor", {"code": "123456"}).status_code
                for _ in range(web_env.settings.signin_free_attempts + 1)]
    assert statuses[:-1] == [400] * web_env.settings.signin_free_attempts
    r = v.post("/auth/two-factor", {"code": "123456"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_an_administrator_removes_a_second_factor(live, web_env):
    sup, first = enrol(live, "supervisor")
    admin, _secret = enrol(live, "admin")
    r = admin.post("/auth/two-factor/reset/supervisor")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users/supervisor")
    assert sup.get("/supervise/").status_code == 302  # the supervisor's session ended
    with web_env.tx() as s:
        row = s.scalars(select(AppUser).where(AppUser.username == "supervisor")).one()
        assert row.totp_secret is None and row.totp_enabled_at is None
        assert s.scalars(select(AuditEvent.kind).where(AuditEvent.actor == "admin")
                         .order_by(AuditEvent.id.desc()).limit(1)).one() == "two_factor_reset"
    # they enrol again at the next sign-in
    _again, secret2 = enrol(live, "supervisor")
    assert secret2 != first
    officer = HttpUser(live).login("officer")
    assert officer.post("/auth/two-factor/reset/supervisor").status_code == 403
