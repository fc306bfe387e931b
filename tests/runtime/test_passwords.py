"""Issue 17, finding 5: the password policy on every password set (``add_user``, ``set_password``), each refusal
naming its rule; the demo accounts' password passes it. And what the session version does: every change that
must end a user's sessions bumps it; the dummy hash costs what a real one does."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from engine.config import SettingError, load_settings
from engine.demo import DEMO_PASSWORD, DEMO_USERS
from engine.errors import InvalidInput
from engine.runtime import passwords, users
from engine.runtime.models import AuditEvent
from tests.conftest import PRODUCTION_HASH_COST


@pytest.mark.parametrize("password, username, rule", [
    ("12345678", "admin", "at least 10 characters"),  # the finding: accepted for an administrator
    ("x" * 257, "admin", "at most 256 characters"),
    ("aaaaaaaaaaaa", "admin", "5 different characters"),
    ("abababab1212", "admin", "5 different characters"),
    ("1234567890", "admin", "too common"),
    ("qwertyuiop", "admin", "too common"),
    ("Password2024!", "admin", "too common"),
    ("P@ssw0rd123", "admin", "too common"),
    ("woaini1314520", "admin", "too common"),
    ("zhangwei19900101", "admin", "too common"),
    ("1qaz2wsx3edc", "admin", "too common"),
    ("Admin2024!!", "admin", "must not be the user name"),
    ("officer-officer", "officer-officer", "must not be the user name"),
    ("4dm1n-4dm1n", "4dm1n-4dm1n", "must not be the user name"),
    ("reciffo2024", "officer", "must not be the user name"),
])
def test_weak_passwords_are_refused_naming_the_rule(password, username, rule):
    with pytest.raises(InvalidInput) as err:
        passwords.check(password, username, 10)
    assert rule in str(err.value) and err.value.details == {"field": "password"}


@pytest.mark.parametrize("password", ["regflow-demo", "plum-harbor-73", "Tr0ub4dor&3x", "long-enough-9",
                                      "pw-alicealicealice", "正确马电池订书钉"])
def test_good_passwords_pass(password):
    passwords.check(password, "alice", 8)


def test_the_minimum_length_is_a_setting(monkeypatch):
    monkeypatch.setenv("REGFLOW_PASSWORD_MIN_LENGTH", "16")
    with pytest.raises(InvalidInput, match="at least 16"):
        users.add_user(None, "newbie", "plum-harbor-73", "officer", "")  # refused before the session is used


def test_session_durations_cannot_be_nothing(monkeypatch):
    monkeypatch.setenv("REGFLOW_SESSION_IDLE_HOURS", "0")
    with pytest.raises(SettingError, match="REGFLOW_SESSION_IDLE_HOURS='0': a number above 0 is needed"):
        load_settings()
    monkeypatch.setenv("REGFLOW_SESSION_IDLE_HOURS", "0.5")
    assert load_settings().session_idle_hours == 0.5


def test_every_demo_account_gets_the_demo_password():
    for name, _roles, _groups in DEMO_USERS:
        passwords.check(DEMO_PASSWORD, name, 10)


def test_the_list_is_shipped_and_sane():
    common = passwords.common_passwords()
    assert len(common) > 2000 and {"password", "123456", "woaini1314", "regflow"} <= common
    assert "regflow-demo" not in common


def test_add_user_and_set_password_apply_the_policy(db):
    with db.tx() as s:
        with pytest.raises(InvalidInput, match="at least 10"):
            users.add_user(s, "weak", "12345678", "admin", "")
        with pytest.raises(InvalidInput, match="at most 120"):
            users.add_user(s, "n" * 121, "plum-harbor-73", "officer", "")
        users.add_user(s, "carol", "plum-harbor-73", "officer", "officers")
    with db.tx() as s:
        with pytest.raises(InvalidInput, match="too common"):
            users.set_password(s, "carol", "Password2024!", actor="carol")
        version = users.get_user(s, "carol").session_version
        assert users.set_password(s, "carol", "amber-valley-58", actor="admin") == version + 1
    with db.tx() as s:
        assert users.authenticate(s, "carol", "amber-valley-58") is not None
        assert users.authenticate(s, "carol", "plum-harbor-73") is None
        kinds = [(e.kind, e.actor) for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == "system"))]
        assert ("password_reset", "admin") in kinds


def test_an_account_without_a_password_cannot_sign_in_until_one_is_set(db):
    """The simulated office's accounts: nobody signs in to them (and no edge creates one: the commands require a
    password: engine/commands/users.py passes anything but text as an empty one, which the policy refuses)."""
    with db.tx() as s:
        assert users.add_user(s, "sim-officer", None, "officer", "officers").password_hash is None
    with db.tx() as s:
        assert users.authenticate(s, "sim-officer", "") is None
        assert users.authenticate(s, "sim-officer", "anything-at-all-1") is None
        users.set_password(s, "sim-officer", "amber-valley-58", actor="admin")
    with db.tx() as s:
        assert users.authenticate(s, "sim-officer", "amber-valley-58") is not None


def test_changes_that_end_sessions_bump_the_version(db):
    with db.tx() as s:
        users.add_user(s, "dave", "plum-harbor-73", "officer", "officers")
    steps = [
        lambda s: users.set_active(s, "dave", False, actor="admin"),
        lambda s: users.set_active(s, "dave", True, actor="admin"),
        lambda s: users.set_roles_and_groups(s, "dave", "officer,auditor", "officers", actor="admin"),
        lambda s: users.set_roles_and_groups(s, "dave", "officer", "officers,team_x", actor="admin"),
        lambda s: users.end_sessions(s, users.get_user(s, "dave").id),
        lambda s: users.set_password(s, "dave", "amber-valley-58", actor="dave"),
    ]
    for step in steps:
        with db.tx() as s:
            before = users.get_user(s, "dave").session_version
            step(s)
            assert users.get_user(s, "dave").session_version == before + 1
    with db.tx() as s:  # the same roles and groups again, a jurisdiction: sessions go on
        before = users.get_user(s, "dave").session_version
        users.set_roles_and_groups(s, "dave", "officer", "officers,team_x", actor="admin")
        users.set_jurisdiction(s, "dave", "410102", actor="admin")
        assert users.get_user(s, "dave").session_version == before


def test_unknown_accounts_cost_a_real_check(monkeypatch):
    for name, value in PRODUCTION_HASH_COST.items():  # the suite hashes cheaply; the finding is about real cost
        monkeypatch.setenv(name, value)
    stored = passwords.hash_password("plum-harbor-73")
    assert "$m=65536,t=3,p=4$" in stored
    passwords.dummy_hash()  # made once, lazily

    def cost(h):
        start = time.perf_counter()
        assert passwords.verify(h, "wrong-password-1") is False
        return time.perf_counter() - start

    known = min(cost(stored) for _ in range(3))
    unknown = min(cost(None) for _ in range(3))
    assert unknown > 0.5 * known
    assert passwords.verify(stored, "plum-harbor-73") and not passwords.verify(None, "")
    assert not passwords.verify(stored, "x" * 5000)  # never hashed


def test_the_hash_cost_is_a_setting_and_older_hashes_still_verify(monkeypatch):
    monkeypatch.setenv("REGFLOW_PASSWORD_HASH_TIME_COST", "2")
    monkeypatch.setenv("REGFLOW_PASSWORD_HASH_MEMORY_KIB", "128")
    old = passwords.hash_password("plum-harbor-73")
    assert "$m=128,t=2,p=4$" in old and not passwords.needs_rehash(old)
    monkeypatch.setenv("REGFLOW_PASSWORD_HASH_MEMORY_KIB", "256")
    assert passwords.verify(old, "plum-harbor-73") and passwords.needs_rehash(old)  # re-hashed at the next sign-in
    assert "$m=256,t=2,p=4$" in passwords.dummy_hash()  # unknown accounts cost what today's hashes cost
    monkeypatch.setenv("REGFLOW_PASSWORD_HASH_MEMORY_KIB", "16")
    with pytest.raises(SettingError, match="REGFLOW_PASSWORD_HASH_MEMORY_KIB=16: at least 64"):
        passwords.hash_password("plum-harbor-73")
