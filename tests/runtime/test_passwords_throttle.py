"""The sign-in throttle on SQLite and PostgreSQL: waits after the free attempts, doubling to the cap; a success
forgives or refunds; forgotten rows are pruned; parallel transactions cannot share one free attempt; the sign-in
steps (begin, check, finish) record existing accounts only."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from engine.db import transaction
from engine.runtime import clock, signin, throttle
from engine.runtime.models import AuditEvent, SignInThrottle
from engine.runtime.throttle import Key, Rule

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
RULE = Rule("account_address", free=3, cap_s=10.0, forgive_on_success=True)
WIDE = Rule("account", free=6, cap_s=60.0)


def test_free_attempts_then_doubling_waits_to_the_cap(db):
    key = [Key(RULE, "alice\x00203.0.113.1")]
    with clock.frozen(T0), db.tx() as s:
        assert [throttle.charge(s, key) for _ in range(3)] == [0, 0, 0]
        assert throttle.charge(s, key) == 1 and throttle.wait_seconds(s, key) == 1
    waits = []
    at = T0
    for _ in range(5):
        at += timedelta(seconds=waits[-1] if waits else 1)
        with clock.frozen(at), db.tx() as s:
            assert throttle.charge(s, key) == 0
            waits.append(throttle.charge(s, key))
    assert waits == [2, 4, 8, 10, 10]


def test_success_forgives_its_own_counter_and_refunds_the_wide_one(db):
    keys = [Key(RULE, "bob\x00198.51.100.7"), Key(WIDE, "bob")]
    with clock.frozen(T0), db.tx() as s:
        for _ in range(2):
            throttle.charge(s, keys)
        throttle.refund(s, keys)
        rows = {r.scope: r.failures for r in s.scalars(select(SignInThrottle))}
    assert rows == {"account": 1}


def test_forgotten_rows_count_nothing_and_are_pruned(db):
    key = [Key(RULE, "carol\x00192.0.2.1")]
    with clock.frozen(T0), db.tx() as s:
        for _ in range(5):
            throttle.charge(s, key)
        assert throttle.wait_seconds(s, key) > 0
    with clock.frozen(T0 + throttle.FORGET_AFTER + timedelta(seconds=1)), db.tx() as s:
        assert throttle.wait_seconds(s, key) == 0
        assert throttle.prune(s) == 1
        assert throttle.charge(s, key) == 0
        assert s.scalar(select(SignInThrottle.failures)) == 1


def test_parallel_transactions_cannot_share_a_free_attempt(db):
    key = [Key(RULE, "dave\x00192.0.2.2")]
    barrier = threading.Barrier(8)
    results: list[int] = []

    errors: list[BaseException] = []

    def one():
        barrier.wait()
        try:
            with transaction(db.factory) as s:
                results.append(throttle.charge(s, key))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 8
    assert sorted(results)[:3] == [0, 0, 0] and all(r > 0 for r in sorted(results)[3:])
    with db.tx() as s:
        assert s.scalar(select(SignInThrottle.failures)) == 3


def test_sign_in_steps_record_existing_accounts_only(db, people):
    limits = signin.Limits(free=5, max_delay_s=900)
    with db.tx() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    for name, password, expect in (("alice", "wrong-password-1", None), ("nobody", "wrong-password-1", None),
                                   ("alice", "alice-pass-1", "alice")):
        with db.tx() as s:
            attempt = signin.begin(s, limits, name, "203.0.113.5")
        ok = signin.check(attempt, password)
        with db.tx() as s:
            user = signin.finish(s, attempt, ok, password, source="test", address="203.0.113.5")
            assert (user.username if user else None) == expect
    with db.tx() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == "system").order_by(AuditEvent.seq)))
        new = [(r.kind, r.actor, r.detail) for r in rows][-2:]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before + 2
        left = sorted((r.scope, r.failures) for r in s.scalars(select(SignInThrottle)))
    assert new == [("sign_in_failed", "alice", {"source": "test", "address": "203.0.113.5"}),
                   ("sign_in", "alice", {"source": "test", "address": "203.0.113.5"})]
    # alice's counter from that address is forgiven; nobody's failure and alice's first stay counted
    assert left == [("account", 1), ("account", 1), ("account_address", 1), ("address", 2)]


def test_a_known_device_is_charged_alone(db, people):
    limits = signin.Limits(free=2, max_delay_s=900)
    with clock.frozen(T0):
        for i in range(40):  # a stranger from many addresses
            with db.tx() as s:
                signin.begin(s, limits, "alice", f"198.51.100.{i}")
        with db.tx() as s:
            assert signin.begin(s, limits, "alice", "192.0.2.99").wait > 0
            assert signin.begin(s, limits, "alice", "192.0.2.99", device="browser-1").wait == 0


def test_an_attempt_read_at_an_earlier_time_is_not_refused_while_free_attempts_remain(db):
    """Found by CI under load: a request that read the time, then waited for the lock behind another, saw that
    one's attempt in its future and was told to wait 1 s though free attempts remained."""
    key = [Key(RULE, "erin\x00192.0.2.9")]
    with clock.frozen(T0), db.tx() as s:
        assert throttle.charge(s, key) == 0
    with clock.frozen(T0 - timedelta(seconds=1)), db.tx() as s:
        assert throttle.charge(s, key) == 0  # the second of three free attempts
    with db.tx() as s:
        assert s.scalar(select(SignInThrottle.failures)) == 2
