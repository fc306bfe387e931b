"""The administration area over real HTTP: users (create, roles and groups, jurisdiction, activation), API
tokens (shown once, revoked → refused), groups with members, the system audit chain (filters, verify,
tampering detected) — every change audited on the system chain, every page for admins only."""
from __future__ import annotations

import re

import requests
from sqlalchemy import select, update

from engine.runtime import users
from engine.runtime.models import ApiToken, AuditEvent
from tests.web.conftest import HttpUser

NEW_PASSWORD = "long-enough-9"


def _system_events(web_env, kind: str) -> list[AuditEvent]:
    with web_env.tx() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.kind == kind)
                              .order_by(AuditEvent.seq)))
        for r in rows:
            s.expunge(r)
        return rows


def _create(admin: HttpUser, username: str, password: str = NEW_PASSWORD, **extra):
    data = {"username": username, "display_name": "新同事", "password": password, "password2": password,
            "roles": ["officer"], "groups": "officers, team_x", "jurisdiction": "410102"} | extra
    return admin.post("/admin/users", data)


def test_admin_pages_are_for_admins_only(http, live):
    admin = http("admin")
    r = admin.get("/admin/")
    assert r.status_code == 200
    assert 'id="user-officer2"' in r.text and 'id="create-user"' in r.text
    groups = admin.get("/admin/groups")
    assert groups.status_code == 200
    row = re.search(r'<tr id="group-officers">.*?</tr>', groups.text, re.S).group(0)
    assert ">officer<" in row and ">officer2<" in row and ">admin<" not in row
    for role in ("officer", "supervisor", "auditor", "designer"):
        u = http(role)
        for path in ("/admin/", "/admin/groups", "/admin/audit", "/admin/users/officer"):
            assert u.get(path).status_code == 403, (role, path)
        assert u.post("/admin/users/officer/active", {"active": "0"}).status_code == 403
    anon = http()
    r = anon.get("/admin/")
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    # a forged form (no CSRF token) changes nothing
    r = requests.post(live + "/admin/users", data={"username": "x", "password": NEW_PASSWORD},
                      cookies=admin.http.cookies, allow_redirects=False)
    assert r.status_code == 400


def test_create_user_and_change_roles_are_audited(http, live, web_env):
    admin = http("admin")
    r = _create(admin, "inspector9")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users/inspector9")
    with web_env.tx() as s:
        u = users.get_user(s, "inspector9")
        assert (u.roles, u.jurisdiction, u.display_name) == (["officer"], ["410102"], "新同事")
        assert users.groups_of(s, "inspector9") == {"officers", "team_x"}
    added = _system_events(web_env, "user_added")
    assert [(e.actor, e.detail["username"]) for e in added][-1] == ("admin", "inspector9")
    assert _system_events(web_env, "user_jurisdiction_changed")[-1].detail["after"] == ["410102"]
    # the new account signs in with its password
    HttpUser(live).login("inspector9", NEW_PASSWORD)

    r = admin.post("/admin/users/inspector9/roles", {"roles": ["officer", "team_leader"], "groups": "officers"})
    assert r.status_code == 302
    page = admin.get("/admin/users/inspector9").text
    assert 'value="team_leader" checked' in page and 'value="officers"' in page
    changed = _system_events(web_env, "user_roles_changed")[-1]
    assert changed.actor == "admin" and changed.detail["username"] == "inspector9"
    assert changed.detail["before"] == {"roles": ["officer"], "groups": ["officers", "team_x"]}
    assert changed.detail["after"] == {"roles": ["officer", "team_leader"], "groups": ["officers"]}

    r = admin.post("/admin/users/inspector9/jurisdiction", {"jurisdiction": "4101"})
    assert r.status_code == 400 and "4101" in r.text
    with web_env.tx() as s:
        assert users.get_user(s, "inspector9").jurisdiction == ["410102"]


def test_weak_password_duplicate_and_bad_role_are_refused(http, web_env):
    admin = http("admin")
    before = len(_system_events(web_env, "user_added"))
    r = _create(admin, "weakling", password="short7!")
    assert r.status_code == 400 and "密码至少需要 10 个字符" in r.text
    r = _create(admin, "officer")
    assert r.status_code == 409 and "用户名“officer”已存在" in r.text
    r = _create(admin, "badrole", roles=["officer", "superuser"])
    assert r.status_code == 400 and "superuser" in r.text
    r = _create(admin, "mismatch", password2="different-9")
    assert r.status_code == 400 and "两次输入的密码不一致" in r.text
    r = _create(admin, "baddistrict", jurisdiction="41010X")
    assert r.status_code == 400 and "41010X" in r.text
    with web_env.tx() as s:
        for name in ("weakling", "badrole", "mismatch", "baddistrict"):
            assert name not in {u.username for u, _g in users.list_users(s)}, name
    assert len(_system_events(web_env, "user_added")) == before


def test_tokens_are_shown_once_and_revocable(http, live, web_env):
    admin = http("admin")
    r = admin.post("/admin/users/officer/tokens", {"name": "sync script"})
    assert r.status_code == 201
    token = re.search(r'id="token-value">(rf_[^<]+)<', r.text).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(live + "/api/v1/tasks", headers=auth).status_code == 200
    page = admin.get("/admin/users/officer").text
    assert "sync script" in page and token not in page  # never shown again
    with web_env.tx() as s:
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == "sync script"))
    assert _system_events(web_env, "api_token_issued")[-1].detail == {"username": "officer", "name": "sync script"}
    assert admin.post("/admin/users/officer/tokens", {"name": ""}).status_code == 400

    r = admin.post(f"/admin/tokens/{token_id}/revoke")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users/officer")
    assert requests.get(live + "/api/v1/tasks", headers=auth).status_code == 401
    assert admin.post(f"/admin/tokens/{token_id}/revoke").status_code == 404
    assert _system_events(web_env, "api_token_revoked")[-1].detail == {"token_id": token_id}


def test_deactivate_and_activate(http, live, web_env):
    admin = http("admin")
    assert admin.post("/admin/users/officer2/active", {"active": "0"}).status_code == 302
    anon = HttpUser(live)
    anon.refresh_csrf()
    r = anon.post("/auth/login", {"username": "officer2", "password": "regflow-demo"})
    assert r.status_code == 401
    assert _system_events(web_env, "user_deactivated")[-1].detail == {"username": "officer2"}
    assert admin.post("/admin/users/officer2/active", {"active": "1"}).status_code == 302
    HttpUser(live).login("officer2")
    # no lock-out: an admin can neither deactivate themselves nor drop their own admin role
    r = admin.post("/admin/users/admin/active", {"active": "0"})
    assert r.status_code == 403 and "admin 不能停用自己的账号" in r.text
    r = admin.post("/admin/users/admin/roles", {"roles": ["auditor"], "groups": "admins"})
    assert r.status_code == 403 and "admin 不能移除自己的管理员角色" in r.text
    with web_env.tx() as s:
        admin_row = users.get_user(s, "admin")
        assert admin_row.active and admin_row.roles == ["admin"]
    assert admin.get("/admin/users/nobody").status_code == 404


def test_system_audit_chain_filters_and_verification(http, web_env):
    http("officer")  # a sign-in event by officer
    admin = http("admin")
    r = admin.get("/admin/audit?kind=sign_in&actor=officer")
    assert r.status_code == 200
    kinds = re.findall(r'<td class="mono">([a-z_]+)</td><td>officer</td>', r.text)
    assert kinds and set(kinds) == {"sign_in"}
    r = admin.get("/admin/audit?actor=demo")
    assert "user_added" in r.text and "<td>officer</td>" not in r.text
    assert admin.get("/admin/audit?page=0").status_code == 400

    r = admin.post("/admin/audit/verify", {"scope": "system"})
    assert r.status_code == 200 and 'id="verdict" class="ok"' in r.text and "完整" in r.text
    r = admin.post("/admin/audit/verify", {"scope": "all"})
    assert 'id="verdict" class="ok"' in r.text
    # someone edits a sign-in row behind the application's back: the check names it
    with web_env.tx() as s:
        target = s.scalar(select(AuditEvent.seq).where(AuditEvent.chain == "system", AuditEvent.kind == "sign_in")
                          .order_by(AuditEvent.seq).limit(1))
        s.execute(update(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.seq == target)
                  .values(actor="someone-else"))
    r = admin.post("/admin/audit/verify", {"scope": "system"})
    assert 'id="verdict" class="bad"' in r.text and "已损坏" in r.text
    problems = re.search(r'<table class="data" id="problems">.*?</table>', r.text, re.S).group(0)
    assert f'<td class="mono">{target}</td>' in problems and "edited" in problems
    assert admin.post("/admin/audit/verify", {"scope": "everything"}).status_code == 400
