"""The app shell: factory, sign-in/out, CSRF, language switch, security headers, error pages."""
from __future__ import annotations

from sqlalchemy import select

from engine.runtime.models import AuditEvent


def test_sign_in_sets_session_and_is_audited(http, web_env):
    officer = http("officer")
    r = officer.get("/", allow_redirects=True)
    assert r.status_code == 200 and 'id="sign-out"' in r.text
    with web_env.tx() as s:
        kinds = [(e.kind, e.actor) for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == "system"))]
    assert ("sign_in", "officer") in kinds


def test_wrong_password_is_refused_and_audited(http, web_env):
    anon = http()
    r = anon.post("/auth/login", {"username": "officer", "password": "nope-nope"})
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text
    with web_env.tx() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "officer"))]
    assert "sign_in_failed" in kinds


def test_forged_csrf_is_rejected_and_nothing_happens(http):
    anon = http()
    r = anon.post("/auth/login", {"username": "officer", "password": "regflow-demo", "csrf_token": "forged"})
    assert r.status_code == 400
    assert "CSRF" in r.text
    assert anon.get("/").status_code in (200, 302)
    assert "regflow_session" not in anon.http.cookies or "uid" not in r.text


def test_security_headers(http):
    r = http().get("/auth/login")
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_language_switch_to_english_and_back(http):
    anon = http()
    assert "登录" in anon.get("/auth/login").text
    anon.post("/auth/lang/en", {"next": "/auth/login"})
    page = anon.get("/auth/login").text
    assert "Sign in" in page and "登录" not in page.replace("中文", "")
    anon.post("/auth/lang/zh", {"next": "/auth/login"})
    assert "登录" in anon.get("/auth/login").text


def test_sign_out_needs_post_and_ends_session(http):
    officer = http("officer")
    assert officer.get("/auth/logout").status_code == 405
    officer.post("/auth/logout")
    r = officer.get("/")
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"] or "/public" in r.headers["Location"]


def test_open_redirect_is_refused(http):
    anon = http()
    anon.refresh_csrf()
    r = anon.post("/auth/login?next=https://evil.example/", {"username": "officer", "password": "regflow-demo"})
    assert r.status_code == 302 and not r.headers["Location"].startswith("https://evil")
