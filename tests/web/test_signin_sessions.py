"""Issue 17, finding 3 over real HTTP: sessions end when they should — sign-out ends the user's sessions (a
cookie copied before it no longer works), so do a password change (but the browser that changed it), a
deactivation (also after reactivation) and a change of roles; a session ends after the idle time and after the
longest lifetime; the cookie holds nothing of the password hash."""
from __future__ import annotations

import time
from datetime import timedelta

import requests
from sqlalchemy import select

from engine.runtime import users
from engine.runtime.models import AuditEvent
from tests.web.conftest import HttpUser
from web import create_app

COOKIE = "regflow_session"


def _works(live: str, cookie: str) -> bool:
    """The copied session cookie still opens the officer's inbox."""
    r = requests.get(live + "/inbox/", cookies={COOKIE: cookie}, allow_redirects=False)
    return r.status_code == 200


def test_sign_out_ends_a_copied_cookie(http, live):
    """The finding: a cookie copied before POST /auth/logout still worked for 31 days."""
    officer = http("officer")
    copied = officer.http.cookies.get(COOKIE)
    assert _works(live, copied)
    assert officer.post("/auth/logout").status_code == 302
    assert not _works(live, copied)
    assert officer.get("/inbox/").status_code == 302


def test_sign_out_ends_the_other_browsers_too(http, live):
    first, second = http("officer"), http("officer")
    first.post("/auth/logout")
    assert second.get("/inbox/").status_code == 302


def test_the_cookie_holds_nothing_of_the_password_hash(app, http, web_env):
    officer = http("officer")
    doc = app.session_interface.get_signing_serializer(app).loads(officer.http.cookies.get(COOKIE))
    with web_env.tx() as s:
        row = users.get_user(s, "officer")
        digest, version = row.password_hash, row.session_version
    assert "pwd" not in doc and set(doc) >= {"uid", "sv", "iat", "seen"}
    assert doc["sv"] == version
    assert not any(isinstance(v, str) and len(v) >= 6 and v in digest for v in doc.values())


def test_deactivation_ends_sessions_for_good_and_a_role_change_ends_them(http, live):
    officer2 = http("officer", username="officer2")
    copied = officer2.http.cookies.get(COOKIE)
    admin = http("admin")
    assert admin.post("/admin/users/officer2/active", {"active": "0"}).status_code == 302
    assert admin.post("/admin/users/officer2/active", {"active": "1"}).status_code == 302
    assert not _works(live, copied)  # before: valid again once the account was reactivated
    officer2 = HttpUser(live).login("officer2")
    assert officer2.get("/inbox/").status_code == 200
    assert admin.post("/admin/users/officer2/roles", {"roles": ["officer", "auditor"],
                                                      "groups": "officers, market_dept"}).status_code == 302
    assert officer2.get("/inbox/").status_code == 302
    # saving the same roles and groups again ends nothing
    officer2 = HttpUser(live).login("officer2")
    assert admin.post("/admin/users/officer2/roles", {"roles": ["officer", "auditor"],
                                                      "groups": "officers, market_dept"}).status_code == 302
    assert officer2.get("/inbox/").status_code == 200


def _forged(app, doc: dict) -> str:
    return app.session_interface.get_signing_serializer(app).dumps(doc)


def test_idle_and_lifetime_limits(app, http, live):
    officer = http("officer")
    doc = app.session_interface.get_signing_serializer(app).loads(officer.http.cookies.get(COOKIE))
    now = int(time.time())
    assert _works(live, _forged(app, {**doc, "seen": now - 11 * 3600}))
    assert not _works(live, _forged(app, {**doc, "seen": now - 13 * 3600}))  # 12 h without a request
    assert not _works(live, _forged(app, {**doc, "iat": now - 25 * 3600, "seen": now}))  # 24 h after sign-in
    assert not _works(live, _forged(app, {**doc, "sv": doc["sv"] - 1}))  # an older session version
    assert app.permanent_session_lifetime == timedelta(hours=12)  # Flask's own limit on the cookie's signature


def test_the_limits_are_settings(web_env):
    app = create_app({"TESTING": True}, settings=web_env.settings.with_overrides(session_idle_hours=0.5))
    assert app.permanent_session_lifetime == timedelta(minutes=30)


def test_a_used_session_is_renewed(app, http, live):
    officer = http("officer")
    doc = app.session_interface.get_signing_serializer(app).loads(officer.http.cookies.get(COOKIE))
    old = int(time.time()) - 2 * 3600
    for cookie in officer.http.cookies:
        if cookie.name == COOKIE:
            cookie.value = _forged(app, {**doc, "seen": old})
    assert officer.get("/inbox/").status_code == 200
    renewed = app.session_interface.get_signing_serializer(app).loads(officer.http.cookies.get(COOKIE))
    assert renewed["seen"] > old + 3600


def test_an_administrator_resets_a_password_and_the_sessions_end(http, live, web_env):
    officer2 = http("officer", username="officer2")
    copied = officer2.http.cookies.get(COOKIE)
    admin = http("admin")
    r = admin.post("/admin/users/officer2/password", {"password": "12345678", "password2": "12345678"})
    assert r.status_code == 400 and "密码" in r.text  # the policy refuses a common password
    assert _works(live, copied)  # nothing changed
    r = admin.post("/admin/users/officer2/password", {"password": "Harbour-lamp-47", "password2": "Harbour-lamp-4"})
    assert r.status_code == 400 and _works(live, copied)
    r = admin.post("/admin/users/officer2/password", {"password": "Harbour-lamp-47", "password2": "Harbour-lamp-47"})
    assert r.status_code == 302
    assert not _works(live, copied)
    assert HttpUser(live).login("officer2", password="Harbour-lamp-47").get("/inbox/").status_code == 200
    with web_env.tx() as s:
        resets = [(e.actor, e.detail.get("username")) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.kind == "password_reset"))]
    assert resets == [("admin", "officer2")]
