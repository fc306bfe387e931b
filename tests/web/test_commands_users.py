"""User administration through the one command layer (engine.commands.users) and its policy: administrators
only, through the web and the CLI alike; nobody removes their own administrator role or deactivates themselves;
``regflow users add`` acts as ``--user``, and without it only while no active administrator exists (the bootstrap
of a new installation) — every refusal writes nothing."""
from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from engine.commands import users as user_commands
from engine.errors import NotAllowed
from engine.policy import load_actor
from engine.runtime import users
from engine.runtime.models import AppUser, AuditEvent
from tests.conftest import ROOT, cli_json, run_cli

PASSWORD = "long-enough-9\n"


def _system(env_tx) -> list[tuple[str, str, dict]]:
    with env_tx() as s:
        return [(e.kind, e.actor, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.chain == "system").order_by(AuditEvent.seq))]


def _user_count(env_tx) -> int:
    with env_tx() as s:
        return s.scalar(select(func.count()).select_from(AppUser))


@pytest.fixture
def demo_env(web_env) -> dict:
    return {**os.environ, "REGFLOW_DATABASE_URL": web_env.url, "PYTHONPATH": str(ROOT)}


def test_cli_users_add_acts_as_an_administrator(web_env, demo_env):
    users_before, events_before = _user_count(web_env.tx), len(_system(web_env.tx))
    # the demo has administrators: the operator without --user is refused, as is a non-administrator
    proc = run_cli(demo_env, "users", "add", "newcomer", "--roles", "officer", input=PASSWORD)
    assert proc.returncode == 5 and "--user" in proc.stderr and "admin" in proc.stderr
    proc = run_cli(demo_env, "users", "add", "newcomer", "--roles", "officer", "--user", "officer", input=PASSWORD)
    assert proc.returncode == 5 and "admin" in proc.stderr
    assert (_user_count(web_env.tx), len(_system(web_env.tx))) == (users_before, events_before)

    doc = cli_json(demo_env, "users", "add", "newcomer", "--roles", "officer", "--groups", "officers",
                   "--jurisdiction", "410102", "--user", "admin", input=PASSWORD)
    assert doc == {"username": "newcomer", "roles": ["officer"], "groups": ["officers"], "jurisdiction": ["410102"]}
    kinds = [(k, a, d.get("username")) for k, a, d in _system(web_env.tx)[events_before:]]
    assert kinds == [("user_added", "admin", "newcomer"), ("user_jurisdiction_changed", "admin", "newcomer")]
    proc = run_cli(demo_env, "users", "add", "newcomer", "--user", "admin", input=PASSWORD)
    assert proc.returncode == 4 and "newcomer" in proc.stderr

    assert run_cli(demo_env, "users", "list").returncode == 5
    listed = {u["username"]: u for u in cli_json(demo_env, "users", "list", "--user", "admin")}
    assert listed["newcomer"]["jurisdiction"] == ["410102"] and listed["newcomer"]["groups"] == ["officers"]


def test_cli_bootstraps_the_first_administrator(sqlite_db):
    env = sqlite_db.env
    doc = cli_json(env, "users", "add", "root", "--roles", "admin", input=PASSWORD)
    assert doc["username"] == "root"
    assert _system(sqlite_db.tx)[-1][:2] == ("user_added", "system")
    # from now on an administrator acts
    proc = run_cli(env, "users", "add", "second", "--roles", "admin", input=PASSWORD)
    assert proc.returncode == 5 and "root" in proc.stderr
    assert cli_json(env, "users", "add", "second", "--roles", "officer", "--user", "root", input=PASSWORD)
    assert _system(sqlite_db.tx)[-1][:2] == ("user_added", "root")


def test_an_administrator_keeps_their_own_account_and_role(http, web_env):
    admin = http("admin")
    before = _system(web_env.tx)
    r = admin.post("/admin/users/admin/active", {"active": "0"})
    assert r.status_code == 403 and "admin 不能停用自己的账号" in r.text
    r = admin.post("/admin/users/admin/roles", {"roles": ["auditor"], "groups": "admins"})
    assert r.status_code == 403 and "admin 不能移除自己的管理员角色" in r.text
    # keeping the admin role while changing groups is fine
    r = admin.post("/admin/users/admin/roles", {"roles": ["admin", "auditor"], "groups": "admins"})
    assert r.status_code == 302
    after = _system(web_env.tx)
    assert [k for k, _a, _d in after[len(before):]] == ["user_roles_changed"]


def test_the_commands_refuse_non_administrators(web_env):
    """The web's decorators and the CLI are edges: the commands themselves refuse whoever is not an admin."""
    with web_env.tx() as s:
        supervisor = load_actor(s, "supervisor")
        for call in (lambda: user_commands.add(s, supervisor, "x1", "long-enough-9", roles="admin"),
                     lambda: user_commands.set_roles_and_groups(s, supervisor, "supervisor", "admin", ""),
                     lambda: user_commands.set_jurisdiction(s, supervisor, "officer", ""),
                     lambda: user_commands.set_active(s, supervisor, "officer", False),
                     lambda: user_commands.issue_token(s, supervisor, "supervisor", "mine"),
                     lambda: user_commands.list_users(s, supervisor)):
            with pytest.raises(NotAllowed, match="admin"):
                call()
        assert users.get_user(s, "supervisor").roles == ["supervisor"]


def test_the_command_checks_inputs_with_translatable_messages(http, web_env):
    admin = http("admin")
    r = admin.post("/admin/users", {"username": "two words", "password": "long-enough-9",
                                    "password2": "long-enough-9", "roles": ["officer"]})
    assert r.status_code == 400 and "用户名最多 120 个字符，且不能包含空格" in r.text
    r = admin.post("/admin/users/officer/jurisdiction", {"jurisdiction": "4101"})
    assert r.status_code == 400 and "4101 不是 6 位区县代码" in r.text
    r = admin.post("/admin/users/nobody/tokens", {"name": "x"})
    assert r.status_code == 404
    with web_env.tx() as s:
        assert users.get_user(s, "officer").jurisdiction in (None, [])
    assert json.dumps(_system(web_env.tx)[-1][2], ensure_ascii=False).count("two words") == 0
