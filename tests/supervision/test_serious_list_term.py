"""The serious-violation list's term (《市场监督管理严重违法失信名单管理办法》): a serious entry ends three years
after the decision to list it (``expires_on``, a China date), removed by the daily job ``lists.serious_expiry`` on
that day and not before (kind ``expiry``, audited, the flag cleared, the row kept); early removal through credit
repair is refused before one year of publicity; migration 0019 backfills the term of entries recorded before it —
on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from engine.commands import lists as list_commands
from engine.db import UTCDateTime, dispose_engines, session_factory, transaction
from engine.errors import Conflict, NotAllowed
from engine.policy import load_actor
from engine.runtime import periodic
from engine.runtime.periodic import run_periodic
from engine.runtime.users import add_user
from engine.schema import upgrade
from engine.supervision import list_jobs, lists
from engine.supervision.calendar import SHANGHAI
from engine.supervision.list_models import ListEntry
from scoring.models import Entity
from tests.conftest import empty_database
from tests.supervision.test_lists import T0, add_entity, events


def enter_serious(s, e, *, at=T0, code="heavy_penalty"):
    entry, created = lists.enter(s, list_kind="serious", entity_id=e.id, reason=lists.REASONS[code],
                                 legal_basis=lists.SERIOUS_BASIS, reason_code=code, now=at, actor="officer1")
    assert created
    return entry


def expiry_runs(ran: list[dict]) -> list[dict]:
    return [r for r in ran if r["job"] == "lists.serious_expiry"]


def test_a_serious_entry_is_listed_for_three_years_from_its_china_date(db):
    with db.tx() as s:
        e = add_entity(s, 401)
        entry = enter_serious(s, e)
        assert entry.expires_on == date(2029, 3, 10) and entry.escalates_on is None
        (ev,) = events(s, "list_entered")
        assert ev.detail["expires_on"] == "2029-03-10"
        doc = lists.entry_doc(entry)
        assert (doc["expires_on"], doc["early_removal_from"]) == ("2029-03-10", "2027-03-10")
        (public,) = lists.public_entries(s, uscc=e.uscc)
        assert public["expires_on"] == "2029-03-10" and "entered_by" not in public
        # 23:30 in China is still 10 March there (15:30 UTC): the China date counts
        late = enter_serious(s, add_entity(s, 402), at=datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc))
        assert late.expires_on == date(2029, 3, 10)
        leap = enter_serious(s, add_entity(s, 403), at=datetime(2028, 2, 29, 9, 0, tzinfo=SHANGHAI))
        assert leap.expires_on == date(2031, 3, 1)
        abnormal, _ = lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="无法联系",
                                  legal_basis=lists.ABNORMAL_BASIS, reason_code="unreachable", now=T0, actor="o")
        assert abnormal.expires_on is None and lists.entry_doc(abnormal)["early_removal_from"] is None


def test_an_escalated_entry_starts_its_own_term(db):
    with db.tx() as s:
        e = add_entity(s, 404)
        lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="无法联系", legal_basis=lists.ABNORMAL_BASIS,
                    reason_code="unreachable", now=T0, actor="officer1")
        lists.escalate_due(s, datetime(2029, 3, 10, 8, 0, tzinfo=SHANGHAI))
        (serious,) = lists.open_entries(s, e.id, "serious")
        assert serious.expires_on == date(2032, 3, 10)


def test_the_daily_job_removes_an_entry_on_its_expiry_day_not_before(db, runtime):
    with db.tx() as s:
        e = add_entity(s, 410)
        entry_id = enter_serious(s, e).id
        twice = add_entity(s, 411)  # a second listing a year later keeps the entity listed after the first ends
        first_id = enter_serious(s, twice).id
        later_id = enter_serious(s, twice, at=T0 + timedelta(days=365), code="abnormal_3_years").id
    ran, failed = run_periodic(db.factory, datetime(2029, 3, 9, 23, 59, tzinfo=SHANGHAI))
    assert failed == [] and [r["expired"] for r in expiry_runs(ran)] == [0]
    with db.tx() as s:
        assert s.get(ListEntry, entry_id).status == "listed" and s.get(Entity, e.id).serious_list is True
        assert events(s, "list_removed") == []

    ran, failed = run_periodic(db.factory, datetime(2029, 3, 10, 0, 5, tzinfo=SHANGHAI))
    (run,) = expiry_runs(ran)
    assert failed == [] and (run["period"], run["expired"]) == ("2029-03-10", 2)
    assert {x["entry_id"] for x in run["entries"]} == {entry_id, first_id}
    with db.tx() as s:
        entry = s.get(ListEntry, entry_id)
        assert (entry.status, entry.removal_kind, entry.removed_by) == ("removed", "expiry", "system")
        assert entry.removal_reason == lists.EXPIRY_REASON and entry.expires_on == date(2029, 3, 10)
        assert s.get(Entity, e.id).serious_list is False
        assert s.get(Entity, twice.id).serious_list is True  # its later entry still runs
        removed = {ev.detail["entry_id"]: ev for ev in events(s, "list_removed")}
        assert set(removed) == {entry_id, first_id}
        assert removed[entry_id].actor == "system" and removed[entry_id].detail["removal_kind"] == "expiry"
        assert removed[entry_id].detail["list"] == "serious" and removed[entry_id].detail["uscc"] == e.uscc
        (public,) = lists.public_entries(s, uscc=e.uscc)
        assert (public["status"], public["removal_kind"], public["removed_on"]) == ("removed", "expiry", "2029-03-10")
    again, _ = run_periodic(db.factory, datetime(2029, 3, 10, 18, 0, tzinfo=SHANGHAI))
    assert expiry_runs(again) == []  # once a day
    ran, _ = run_periodic(db.factory, datetime(2030, 3, 10, 0, 5, tzinfo=SHANGHAI))
    assert [r["entries"] for r in expiry_runs(ran)] == [[{"entry_id": later_id, "uscc": twice.uscc,
                                                          "expires_on": "2030-03-10"}]]
    with db.tx() as s:
        assert s.get(Entity, twice.id).serious_list is False


def test_an_imported_listing_has_no_term(db):
    with db.tx() as s:
        e = add_entity(s, 420, serious_list=True)
        enter_serious(s, e)  # adopts the imported flag as an entry of its own
        imported = [x for x in lists.open_entries(s, e.id, "serious") if x.reason_code == "imported"]
        assert [x.expires_on for x in imported] == [None]
        assert lists.early_removal_from(imported[0]) is None
        report = lists.expire_due(s, datetime(2040, 1, 1, tzinfo=SHANGHAI))
        assert report["expired"] == 1 and s.get(Entity, e.id).serious_list is True


def test_credit_repair_before_one_year_of_publicity_is_refused(db):
    with db.tx() as s:
        e = add_entity(s, 430)
        entry = enter_serious(s, e)
        day_before = datetime(2027, 3, 9, 23, 0, tzinfo=SHANGHAI)
        with pytest.raises(Conflict) as exc:
            list_jobs.apply_for_removal(s, entry_id=entry.id, statement="已履行处罚决定，消除不良影响", evidence=[],
                                        actor="clerk", now=day_before)
        assert str(exc.value) == (f"List entry {entry.id} has been on the serious violation list since 2026-03-10: "
                                  "early removal through credit repair is possible only after one year of publicity, "
                                  "from 2027-03-10.")
        with pytest.raises(Conflict):  # removal as an approved application by hand, too
            lists.remove_entry(s, entry, removal_kind="application", reason="信用修复", now=day_before, actor="sam")
        with pytest.raises(Conflict, match="listed until 2029-03-10"):  # nor "expired" before the term ends
            lists.remove_entry(s, entry, removal_kind="expiry", reason="期满", now=day_before, actor="sam")
        assert entry.status == "listed" and events(s, "list_removal_applied") == []
        one_year = datetime(2027, 3, 10, 9, 0, tzinfo=SHANGHAI)
        app = list_jobs.apply_for_removal(s, entry_id=entry.id, statement="已履行处罚决定，消除不良影响",
                                          evidence=["EV-1"], actor="clerk", now=one_year)
        list_jobs.review_application(s, app.id, approve=True, note="信用修复，同意提前移出", actor="sam", now=one_year)
        assert (entry.status, entry.removal_kind) == ("removed", "application")
        assert s.get(Entity, e.id).serious_list is False


def test_the_list_commands_refuse_early_credit_repair(db):
    with db.tx() as s:
        add_user(s, "sam", "sam-password", "supervisor", "supervisors")
        add_user(s, "olga", "olga-password", "officer", "officers")
        e = add_entity(s, 440)
        entry_id = enter_serious(s, e).id
        sam, olga = load_actor(s, "sam"), load_actor(s, "olga")
        soon = T0 + timedelta(days=30)
        with pytest.raises(Conflict, match="from 2027-03-10"):
            list_commands.apply_for_removal(s, olga, entry_id, statement="申请信用修复", now=soon)
        with pytest.raises(Conflict, match="from 2027-03-10"):
            list_commands.remove(s, sam, entry_id, reason="信用修复", removal_kind="application", now=soon)
        with pytest.raises(NotAllowed):
            list_commands.expire(s, olga, now=soon)
        assert list_commands.expire(s, sam, now=soon)["expired"] == 0
        done = list_commands.expire(s, sam, now=datetime(2029, 3, 10, 12, tzinfo=SHANGHAI))
        assert done["expired"] == 1 and s.get(ListEntry, entry_id).removed_by == "sam"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0019_backfills_the_term_of_recorded_serious_entries(kind, tmp_path):
    entry = sa.table("list_entry", *[sa.column(c, sa.String()) for c in (
        "list_kind", "uscc", "reason_code", "reason", "legal_basis", "entered_by", "status")],
        sa.column("id", sa.Integer()), sa.column("entity_id", sa.Integer()), sa.column("entered_at", UTCDateTime()))
    with empty_database(kind, tmp_path) as url:
        upgrade(url, "0018_transfers")
        with transaction(session_factory(url)) as s:  # the entity table is the same before and after 0019
            e = add_entity(s, 450, serious_list=True)
            base = {"uscc": e.uscc, "reason": "r", "legal_basis": "b", "entered_by": "x", "status": "listed",
                    "entity_id": e.id}
            utc_30_june = datetime(2025, 6, 30, 17, 0, tzinfo=timezone.utc)  # 1 July 01:00 in China
            s.execute(entry.insert(), [
                {**base, "id": 1, "list_kind": "serious", "reason_code": "heavy_penalty", "entered_at": utc_30_june},
                {**base, "id": 2, "list_kind": "serious", "reason_code": "imported", "entered_at": utc_30_june},
                {**base, "id": 3, "list_kind": "abnormal", "reason_code": "unreachable", "entered_at": utc_30_june},
                {**base, "id": 4, "list_kind": "serious", "reason_code": "abnormal_3_years", "status": "removed",
                 "entered_at": datetime(2024, 2, 29, 2, 0, tzinfo=timezone.utc)}])
        dispose_engines()
        upgrade(url)
        with transaction(session_factory(url)) as s:
            got = {x.id: x.expires_on for x in s.scalars(select(ListEntry))}
            assert got == {1: date(2028, 7, 1), 2: None, 3: None, 4: date(2027, 3, 1)}
            assert lists.expire_due(s, datetime(2028, 7, 1, 0, 1, tzinfo=SHANGHAI))["expired"] == 1
        dispose_engines()


def test_the_job_is_registered_daily(runtime):
    job = periodic.get_job("lists.serious_expiry")
    assert job.fn is list_jobs.expiry_job
    assert job.schedule(datetime(2029, 3, 9, 16, 1, tzinfo=timezone.utc)) == "2029-03-10"  # China's midnight
