"""Issue 17, finding 1 over real HTTP: an anonymous visitor cannot flood the append-only system audit chain
through the sign-in form — an over-long user name is refused before anything is done with it, the sign-in
forms take small bodies only, unknown names and throttled attempts add no chain rows."""
from __future__ import annotations

from sqlalchemy import func, select

from engine.runtime.models import AuditEvent, SignInThrottle
from tests.web.test_signin_throttle import anonymous, attempt


def _system_rows(web_env) -> list[AuditEvent]:
    with web_env.tx() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "system")))
        for r in rows:
            s.expunge(r)
        return rows


def test_an_over_long_user_name_is_refused_and_kept_nowhere(live, web_env):
    before = len(_system_rows(web_env))
    anon = anonymous(live)
    long_name = "x" * 121
    r = attempt(anon, long_name)
    assert r.status_code == 400 and "用户名或密码错误" in r.text and long_name not in r.text
    # 120 characters is still a name (the limit of user creation): a plain failed sign-in
    assert attempt(anon, "y" * 120).status_code == 401
    rows = _system_rows(web_env)
    assert len(rows) == before  # neither name exists: nothing written to the chain
    assert not any("xxxx" in (r.actor or "") or "xxxx" in str(r.detail) for r in rows)
    with web_env.tx() as s:
        assert {r.scope for r in s.scalars(select(SignInThrottle))} == {"address", "account", "account_address"}


def test_a_two_megabyte_body_is_refused_before_it_is_read(live, web_env):
    """The finding: a 2 MB user name was stored in the chain (and shown on /admin/audit)."""
    before = len(_system_rows(web_env))
    anon = anonymous(live)
    r = attempt(anon, "z" * (2 * 1024 * 1024))
    assert r.status_code == 413
    r = attempt(anon, "officer", "p" * (20 * 1024))  # a long password too: the whole body is limited
    assert r.status_code == 413
    assert len(_system_rows(web_env)) == before
    with web_env.tx() as s:
        longest = s.scalar(select(func.max(func.length(AuditEvent.actor))))
    assert longest <= 120


def test_existing_accounts_get_one_row_per_checked_attempt_only(live, web_env):
    anon = anonymous(live)
    codes = [attempt(anon, "auditor").status_code for _ in range(25)]
    assert codes.count(401) == 5 and codes.count(429) == 20
    failed = [r for r in _system_rows(web_env) if r.kind == "sign_in_failed"]
    assert len(failed) == 5 and {r.actor for r in failed} == {"auditor"}
    assert all(r.detail == {"source": "web", "address": "127.0.0.1"} for r in failed)
    # unknown names: no rows at all
    for i in range(5):
        attempt(anon, f"ghost-{i}")
    assert not [r for r in _system_rows(web_env) if r.actor.startswith("ghost")]
