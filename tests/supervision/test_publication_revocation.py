"""A published penalty revoked (撤销) by a person's command (engine/commands/publications.py): its withdrawal is due
3 working days after the revocation, recorded by a supervisor of the entity's district (others refused), audited;
the daily job ``publication.deadlines`` flags the withdrawal once it is overdue; ``withdraw`` takes the record off
the public pages. ``regflow publications revoke|withdraw`` in process (click's CliRunner) — on SQLite and
PostgreSQL."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.cli import main
from engine.commands import publications as commands
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.policy import load_actor
from engine.runtime import clock
from engine.runtime.models import AppUser, AuditEvent
from engine.runtime.periodic import run_periodic
from engine.runtime.users import add_user
from engine.supervision import calendar as cal
from engine.supervision import publication
from engine.supervision.calendar import SHANGHAI
from tests.supervision.test_lists import add_entity

CN = timezone(timedelta(hours=8))


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CN)


def events(s, kind):
    return s.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)).all()


@pytest.fixture
def office(db):
    """The calendar, a supervisor (sam), an officer (olga), an auditor (aud), a supervisor of another district
    (lim), an entity of district 410105 and its published penalty (Monday 2 March 2026)."""
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        cal.refresh(s)
        add_user(s, "sam", "sam-password", "supervisor", "supervisors")
        add_user(s, "olga", "olga-password", "officer", "officers")
        add_user(s, "aud", "aud-password", "auditor", "auditors")
        add_user(s, "lim", "lim-password", "supervisor", "supervisors")
        s.scalars(select(AppUser).where(AppUser.username == "lim")).one().jurisdiction = ["440104"]
        e = add_entity(s, 501)
        pen = publication.record(s, kind="penalty", title="行政处罚决定", payload={"fine": 50000}, uscc=e.uscc,
                                 now=at(2026, 3, 2), publish=True)
        result = publication.record(s, kind="result", title="检查结果", payload={}, uscc=e.uscc, now=at(2026, 3, 2),
                                    publish=True)
        db.ids = {"penalty": pen.id, "result": result.id, "uscc": e.uscc}
    return db


def test_a_supervisor_records_a_revocation_and_the_withdrawal_is_due_3_working_days_later(office):
    db, pid = office, office.ids["penalty"]
    with db.tx() as s:
        sam = load_actor(s, "sam")
        doc = commands.revoke(s, sam, pid, revoked_at=date(2026, 3, 5), reason="行政复议决定撤销",
                              now=at(2026, 3, 5, 15))  # Thursday: due the end of Tuesday 10 March
        assert datetime.fromisoformat(doc["withdraw_due"]) == datetime(2026, 3, 10, 23, 59, 59, tzinfo=CN)
        assert doc["revoked_on"] == "2026-03-05" and doc["changed"] is True and doc["withdrawn_at"] is None
        (ev,) = events(s, "publication_revoked")
        assert ev.chain == "system" and ev.actor == "sam"
        assert ev.detail["publication_id"] == pid and ev.detail["revoked_on"] == "2026-03-05"
        assert ev.detail["reason"] == "行政复议决定撤销" and ev.detail["previous_withdraw_due"] is None
        # the same day again changes nothing and is not audited twice
        assert commands.revoke(s, sam, pid, revoked_at=date(2026, 3, 5), now=at(2026, 3, 6))["changed"] is False
        assert len(events(s, "publication_revoked")) == 1
        # still public until withdrawn
        assert [r["id"] for r in publication.public_feed(s, kind="penalty")] == [pid]


def test_who_may_record_a_revocation_and_what_is_refused(office):
    db, ids = office, office.ids
    with db.tx() as s:
        for name in ("olga", "aud", "lim"):
            with pytest.raises(NotAllowed):
                commands.revoke(s, load_actor(s, name), ids["penalty"], revoked_at=date(2026, 3, 5),
                                now=at(2026, 3, 5))
        sam = load_actor(s, "sam")
        with pytest.raises(InvalidInput, match="only a penalty decision is revoked"):
            commands.revoke(s, sam, ids["result"], revoked_at=date(2026, 3, 5), now=at(2026, 3, 5))
        with pytest.raises(InvalidInput, match="future"):
            commands.revoke(s, sam, ids["penalty"], revoked_at=date(2026, 3, 9), now=at(2026, 3, 5))
        with pytest.raises(NotFound):
            commands.revoke(s, sam, 999999, revoked_at=date(2026, 3, 5), now=at(2026, 3, 5))
        draft = publication.record(s, kind="penalty", title="x", payload={}, uscc=ids["uscc"], now=at(2026, 3, 2))
        with pytest.raises(Conflict, match="not published"):
            commands.revoke(s, sam, draft.id, revoked_at=date(2026, 3, 5), now=at(2026, 3, 5))
        assert events(s, "publication_revoked") == []
        assert publication.get(s, ids["penalty"]).withdraw_due is None


def test_the_daily_deadline_job_flags_the_withdrawal_once_it_is_overdue(office, runtime):
    db, pid = office, office.ids["penalty"]
    with db.tx() as s:
        commands.revoke(s, load_actor(s, "sam"), pid, revoked_at=date(2026, 3, 5), now=at(2026, 3, 5))

    def flagged(now):
        ran, failed = run_periodic(db.factory, now)
        assert failed == []
        return [r["withdrawal_overdue"] for r in ran if r["job"] == "publication.deadlines"]

    assert flagged(at(2026, 3, 10, 23)) == [[]]  # the last day of the 3 working days
    assert flagged(at(2026, 3, 11, 0)) == [[pid]]
    assert flagged(at(2026, 3, 12)) == [[]]  # once
    with db.tx() as s:
        (ev,) = events(s, "withdrawal_overdue")
        assert ev.detail["publication_id"] == pid and ev.detail["to_group"] == "supervisors"
        doc = commands.withdraw(s, load_actor(s, "sam"), pid, note="处罚决定已被撤销", now=at(2026, 3, 12))
        assert doc["late"] is True and doc["withdrawn_at"] is not None
        assert publication.public_feed(s, kind="penalty") == []
        assert publication.public_record(s, pid)["withdrawn"] is True
        with pytest.raises(Conflict, match="already withdrawn"):
            commands.revoke(s, load_actor(s, "sam"), pid, revoked_at=date(2026, 3, 5), now=at(2026, 3, 12))


# ------------------------------------------------------------------------------------------ the CLI
def run(db, *args: str):
    return CliRunner().invoke(main, list(args), env={"REGFLOW_DATABASE_URL": db.url})


def test_regflow_publications_revoke_and_withdraw(office):
    db, pid = office, office.ids["penalty"]
    today = clock.now().astimezone(SHANGHAI).date()
    r = run(db, "publications", "revoke", str(pid), "--revoked-at", today.isoformat(), "--reason", "复议撤销",
            "--user", "sam", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    with db.tx() as s:
        due = cal.refresh(s).add_workdays(datetime.combine(today, datetime.min.time(), tzinfo=SHANGHAI), 3).at
    assert datetime.fromisoformat(doc["withdraw_due"]) == due and doc["revoked_on"] == today.isoformat()
    r = run(db, "publications", "revoke", str(pid), "--revoked-at", today.isoformat(), "--user", "sam")
    assert r.exit_code == 0 and "(already recorded)" in r.stdout and f"publication #{pid} (penalty" in r.stdout
    # exit codes: 5 not allowed, 3 not found, 2 invalid (a date in the future, a result), 4 conflict
    assert run(db, "publications", "revoke", str(pid), "--revoked-at", today.isoformat(),
               "--user", "olga").exit_code == 5
    assert run(db, "publications", "revoke", "999999", "--revoked-at", today.isoformat(),
               "--user", "sam").exit_code == 3
    assert run(db, "publications", "revoke", str(pid), "--revoked-at", (today + timedelta(days=2)).isoformat(),
               "--user", "sam").exit_code == 2
    assert run(db, "publications", "revoke", str(db.ids["result"]), "--revoked-at", today.isoformat(),
               "--user", "sam").exit_code == 2
    r = run(db, "publications", "withdraw", str(pid), "--note", "处罚决定已被撤销", "--user", "sam")
    assert r.exit_code == 0 and r.stdout.startswith(f"publication #{pid} withdrawn ")
    assert run(db, "publications", "withdraw", str(pid), "--note", "x", "--user", "sam").exit_code == 4
