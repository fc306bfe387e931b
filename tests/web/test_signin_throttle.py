"""Issue 17, finding 2 over real HTTP: sign-in guessing is throttled in the database that every web process shares
(429 with ``Retry-After``, a wait that doubles up to a cap, then the right password works); a stranger trying an
account from many addresses never locks its owner out of their own browser; user names do not leak by timing;
the client address behind a trusted proxy is the forwarded one and nobody else's header is believed.

Time passes in these tests by moving the throttle rows' last attempt back (the server's clock is the wall clock);
the first wait is 30 s instead of 1 s (``BASE_DELAY_S``) so that a slow machine never sees a wait run out between
two requests of a test.
"""
from __future__ import annotations

import statistics
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from engine.runtime import clock, passwords, throttle
from engine.runtime.models import AppUser, AuditEvent, SignInThrottle
from tests.conftest import PRODUCTION_HASH_COST
from tests.web.conftest import PASSWORD, HttpUser
from web import create_app


@pytest.fixture(autouse=True)
def slow_first_wait(monkeypatch):
    monkeypatch.setattr(throttle, "BASE_DELAY_S", 30.0)


@pytest.fixture
def serve(web_env):
    """``serve(**settings)`` → the base URL of one more app (a web process of its own: its own engine and
    sessions) on the test database, with settings overridden; several share the database like processes do."""
    servers = []

    def start(**overrides):
        app = create_app({"TESTING": True}, settings=web_env.settings.with_overrides(**overrides))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def attempt(user: HttpUser, username: str, password: str = "wrong-password-1", **headers):
    return user.http.post(user.base + "/auth/login", data={"username": username, "password": password,
                                                           "csrf_token": user.csrf},
                          headers=headers, allow_redirects=False)


def anonymous(base: str) -> HttpUser:
    u = HttpUser(base)
    u.refresh_csrf()
    return u


def time_passes(web_env, seconds: float) -> None:
    """Every counted attempt happened ``seconds`` earlier."""
    with web_env.tx() as s:
        for row in s.scalars(select(SignInThrottle)):
            row.last_at = row.last_at - timedelta(seconds=seconds)


def just_now(web_env) -> None:
    """Every counted attempt happened now (a verified attempt takes a while after it was counted)."""
    with web_env.tx() as s:
        for row in s.scalars(select(SignInThrottle)):
            row.last_at = clock.now()


def failed_rows(web_env, actor: str) -> int:
    with web_env.tx() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.chain == "system", AuditEvent.kind == "sign_in_failed", AuditEvent.actor == actor))


def test_guessing_is_throttled_and_the_right_password_works_after_the_wait(live, web_env):
    """The finding: 40 wrong passwords in 9.7 s, then the right one worked at once."""
    anon = anonymous(live)
    statuses = [attempt(anon, "officer").status_code for _ in range(40)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    r = attempt(anon, "officer")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 900
    assert "秒后再试" in r.text
    # the right password during the wait is not even checked
    assert attempt(anon, "officer", PASSWORD).status_code == 429
    # only the attempts that were checked reached the audit chain
    assert failed_rows(web_env, "officer") == 5
    time_passes(web_env, 3600)
    assert attempt(anon, "officer", PASSWORD).status_code == 302
    # a success forgives this account from this address: the next mistake is free again
    anon.refresh_csrf()
    assert attempt(anon, "officer").status_code == 401


def test_the_wait_doubles_up_to_the_cap(serve, web_env, monkeypatch):
    monkeypatch.setattr(throttle, "BASE_DELAY_S", 1.0)
    base = serve(signin_free_attempts=2, signin_max_delay_s=8)
    anon = anonymous(base)
    assert [attempt(anon, "officer").status_code for _ in range(2)] == [401, 401]
    waits = []
    for _ in range(6):
        just_now(web_env)
        r = attempt(anon, "officer")
        assert r.status_code == 429
        waits.append(int(r.headers["Retry-After"]))
        time_passes(web_env, waits[-1] + 0.5)
        assert attempt(anon, "officer").status_code == 401  # the wait is over: checked (and wrong)
    assert waits == [1, 2, 4, 8, 8, 8]


def test_counts_are_shared_by_every_web_process(serve, web_env):
    one, two = serve(), serve()
    a, b = anonymous(one), anonymous(two)
    assert [attempt(a, "leader").status_code for _ in range(3)] == [401] * 3
    assert [attempt(b, "leader").status_code for _ in range(2)] == [401] * 2
    assert attempt(a, "leader").status_code == 429 and attempt(b, "leader").status_code == 429
    with web_env.tx() as s:
        assert {r.scope for r in s.scalars(select(SignInThrottle))} == {"account", "account_address", "address"}


def test_a_stranger_cannot_lock_the_owner_out(serve, web_env):
    """Behind one trusted proxy, a stranger fails on ``officer`` from 60 addresses: the account is slowed for new
    browsers by a minute at most, and its owner's own browser (it signed in there before) is not slowed at all."""
    base = serve(trusted_proxies=1)
    owner = HttpUser(base).login("officer")  # the owner's browser becomes a known device for officer
    owner.post("/auth/logout")
    stranger = anonymous(base)
    codes = [attempt(stranger, "officer", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(60)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429] * 50
    r = attempt(anonymous(base), "officer", PASSWORD, **{"X-Forwarded-For": "192.0.2.10"})
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
    owner.refresh_csrf()
    assert attempt(owner, "officer", PASSWORD, **{"X-Forwarded-For": "192.0.2.20"}).status_code == 302
    # ... and the new browser gets in once the minute is over
    time_passes(web_env, 61)
    assert attempt(anonymous(base), "officer", PASSWORD, **{"X-Forwarded-For": "192.0.2.10"}).status_code == 302


def test_one_address_spraying_names_is_throttled(live, web_env):
    anon = anonymous(live)
    codes = [attempt(anon, f"nobody{i}").status_code for i in range(22)]
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]
    # unknown names leave nothing in the audit chain, and no name in the throttle table (digests only)
    with web_env.tx() as s:
        assert not s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor.like("nobody%")))
        assert all(len(r.key) == 64 and "nobody" not in r.key for r in s.scalars(select(SignInThrottle)))


def test_unknown_names_take_as_long_as_known_ones(serve, web_env, monkeypatch):
    """The finding: ~300 ms for an existing user, 5 ms for an unknown one. At the production hash cost (the suite
    hashes cheaply): the officer's password stored with it, the dummy hash of unknown names made with it."""
    for name, value in PRODUCTION_HASH_COST.items():
        monkeypatch.setenv(name, value)
    with web_env.tx() as s:
        s.execute(update(AppUser).where(AppUser.username == "officer")
                  .values(password_hash=passwords.hash_password(PASSWORD)))
    anon = anonymous(serve(signin_free_attempts=50))

    def timed(username: str) -> float:
        start = time.perf_counter()
        assert attempt(anon, username).status_code == 401
        return time.perf_counter() - start

    known, unknown = [], []
    for i in range(5):
        known.append(timed("officer"))
        unknown.append(timed(f"no-such-user-{i}"))
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (known, unknown)


def test_forwarded_address_only_from_a_trusted_proxy(serve, web_env, live):
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    direct = anonymous(live)  # REGFLOW_TRUSTED_PROXIES=0: the header is the client's word, ignored
    assert attempt(direct, "officer", PASSWORD, **spoof).status_code == 302
    proxied = anonymous(serve(trusted_proxies=1))
    assert attempt(proxied, "officer", PASSWORD, **spoof).status_code == 302
    with web_env.tx() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.kind == "sign_in")
                              .order_by(AuditEvent.seq.desc()).limit(2)))
    assert [r.detail.get("address") for r in rows] == ["203.0.113.9", "127.0.0.1"]


def test_old_rows_are_pruned(live, web_env):
    anon = anonymous(live)
    attempt(anon, "officer")
    with web_env.tx() as s:
        s.add(SignInThrottle(key="0" * 64, scope="address", failures=30, last_at=clock.now() - timedelta(days=2)))
    attempt(anon, "leader")
    with web_env.tx() as s:
        assert s.get(SignInThrottle, "0" * 64) is None
        assert s.scalar(select(func.count()).select_from(SignInThrottle)) == 5


def test_parallel_guesses_cannot_share_one_free_slot(serve, web_env):
    base = serve(signin_free_attempts=3)
    users = [anonymous(base) for _ in range(12)]
    codes: list[int] = []

    def one(u):
        codes.append(attempt(u, "officer2", **{}).status_code)

    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(codes) == [401] * 3 + [429] * 9
    assert requests.get(base + "/healthz").status_code == 200
