"""Deadlines of publication watched like task due dates (engine/supervision/publication_deadlines.py): an overdue
publication and an overdue withdrawal are escalated to the supervisors once; a penalty's publicity ends by itself
after 3 months (warning / lower fine) or 3 years and leaves the public pages; the dashboard's list."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput
from engine.runtime import audit
from engine.runtime.models import AuditEvent
from engine.runtime.periodic import run_periodic
from engine.supervision import calendar as cal
from engine.supervision import publication
from engine.supervision.loop_models import Publication
from engine.supervision.publication_deadlines import (
    PUBLICITY_END_NOTE,
    deadline_board,
    monitor_deadlines,
    publicity_ends_at,
    record_revocation,
)

CN = timezone(timedelta(hours=8))


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CN)


@pytest.fixture
def seeded(db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        cal.refresh(s)
    return db


def events(s, kind):
    return s.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)).all()


def test_an_overdue_publication_is_escalated_once(seeded):
    db = seeded
    with db.tx() as s:
        late = publication.record(s, kind="result", title="检查结果", payload={}, now=at(2026, 3, 2),
                                  uscc="91350102MA2Y00001A", instance_id=7, task_key="t")
        on_time = publication.record(s, kind="result", title="检查结果", payload={}, now=at(2026, 3, 2))
        publication.publish(s, on_time.id, at(2026, 3, 20))
        due = late.due_by
    assert due.astimezone(CN).date().isoformat() == "2026-03-30"  # 20 working days after Monday 2 March
    with db.tx() as s:
        assert monitor_deadlines(s, due - timedelta(minutes=1)).publication_overdue == []
    with db.tx() as s:
        report = monitor_deadlines(s, at(2026, 4, 2))
    assert report.publication_overdue == [late.id] and report.withdrawal_overdue == []
    with db.tx() as s:
        (ev,) = events(s, "publication_overdue")
        assert ev.chain == "system" and ev.actor == "system"
        assert ev.detail["to_group"] == "supervisors" and ev.detail["publication_id"] == late.id
        assert ev.detail["overdue_days"] == 3 and ev.detail["instance_id"] == 7
    with db.tx() as s:  # once
        assert monitor_deadlines(s, at(2026, 4, 3)).publication_overdue == []
        assert len(events(s, "publication_overdue")) == 1
        assert audit.verify(s).ok


def test_a_withdrawal_not_done_within_3_working_days_is_escalated(seeded):
    db = seeded
    with db.tx() as s:
        pen = publication.record(s, kind="penalty", title="行政处罚", payload={"penalties": ["fine"], "fine": 200},
                                 now=at(2026, 3, 2), publish=True)
        with pytest.raises(Conflict):
            record_revocation(s, publication.record(s, kind="penalty", title="x", payload={}, now=at(2026, 3, 2)).id,
                              at(2026, 3, 5), at(2026, 3, 5))
        with pytest.raises(InvalidInput):
            record_revocation(s, pen.id, at(2026, 3, 9), at(2026, 3, 5))
        record_revocation(s, pen.id, at(2026, 3, 5), at(2026, 3, 5))  # Thursday: due Tuesday 10 March
        assert pen.withdraw_due == datetime(2026, 3, 10, 23, 59, 59, tzinfo=CN)
        # still public until withdrawn
        assert [r["id"] for r in publication.public_feed(s)] == [pen.id]
    with db.tx() as s:
        assert monitor_deadlines(s, at(2026, 3, 10, 23)).withdrawal_overdue == []
        assert monitor_deadlines(s, at(2026, 3, 11)).withdrawal_overdue == [pen.id]
        assert monitor_deadlines(s, at(2026, 3, 12)).withdrawal_overdue == []
        (ev,) = events(s, "withdrawal_overdue")
        assert ev.detail["to_group"] == "supervisors" and ev.detail["overdue_days"] == 1
    with db.tx() as s:  # the late withdrawal keeps the due date the revocation set
        p = publication.withdraw(s, pen.id, "复议撤销", at(2026, 3, 12))
        assert p.withdraw_due == datetime(2026, 3, 10, 23, 59, 59, tzinfo=CN)
        assert publication.public_feed(s) == []


def test_penalty_publicity_ends_by_itself_after_3_months_or_3_years(seeded):
    db = seeded
    with db.tx() as s:
        light = publication.record(s, kind="penalty", title="警告并罚款", now=at(2026, 1, 10), publish=True,
                                   payload={"penalties": ["warning", "fine"], "fine": 3000})
        heavy = publication.record(s, kind="penalty", title="罚款", now=at(2026, 1, 10), publish=True,
                                   payload={"penalties": ["fine"], "fine": 50000})
        licence = publication.record(s, kind="penalty", title="吊销", now=at(2026, 1, 10), publish=True,
                                     payload={"penalties": ["revoke_licence"]})
        result = publication.record(s, kind="result", title="检查结果", now=at(2026, 1, 10), publish=True, payload={})
        assert publicity_ends_at(light) == datetime(2026, 4, 10, tzinfo=CN)
        assert publicity_ends_at(heavy) == datetime(2029, 1, 10, tzinfo=CN)
        assert publicity_ends_at(heavy, low_fine_yuan=100_000) == datetime(2026, 4, 10, tzinfo=CN)
        assert publicity_ends_at(licence) == datetime(2029, 1, 10, tzinfo=CN)
        assert publicity_ends_at(result) is None
    with db.tx() as s:
        assert monitor_deadlines(s, at(2026, 4, 9, 23)).publicity_ended == []
    with db.tx() as s:
        assert monitor_deadlines(s, at(2026, 4, 12)).publicity_ended == [light.id]
    with db.tx() as s:
        p = s.get(Publication, light.id)
        assert p.withdrawn_at is not None and p.withdraw_note == PUBLICITY_END_NOTE and p.withdraw_due is None
        assert {r["id"] for r in publication.public_feed(s)} == {heavy.id, licence.id, result.id}
        (ev,) = events(s, "publicity_ended")
        assert ev.detail["months"] == 3 and ev.detail["late_days"] == 2 and ev.detail["to_group"] == "supervisors"
        assert monitor_deadlines(s, at(2026, 4, 13)).publicity_ended == []
    with db.tx() as s:
        assert sorted(monitor_deadlines(s, at(2029, 1, 10, 0)).publicity_ended) == sorted([heavy.id, licence.id])
        assert [r["id"] for r in publication.public_feed(s)] == [result.id]
        assert audit.verify(s).ok


def test_at_most_limit_items_a_run(seeded):
    db = seeded
    with db.tx() as s:
        ids = [publication.record(s, kind="result", title=f"结果{i}", payload={}, now=at(2026, 3, 2)).id
               for i in range(3)]
    with db.tx() as s:
        assert monitor_deadlines(s, at(2026, 5, 1), limit=2).publication_overdue == ids[:2]
    with db.tx() as s:
        assert monitor_deadlines(s, at(2026, 5, 1), limit=2).publication_overdue == ids[2:]


def test_the_board_lists_open_items_and_whether_they_were_escalated(seeded):
    db = seeded
    with db.tx() as s:
        a = publication.record(s, kind="result", title="结果A", payload={}, now=at(2026, 3, 2))
        pen = publication.record(s, kind="penalty", title="处罚", payload={"penalties": ["fine"], "fine": 100},
                                 now=at(2025, 12, 20), publish=True)
        publication.record(s, kind="result", title="结果B", payload={}, now=at(2026, 3, 30))  # due in April
        record_revocation(s, pen.id, at(2026, 3, 24), at(2026, 3, 24))  # withdrawal due 27 March
    with db.tx() as s:
        board = deadline_board(s, at(2026, 4, 1))
        assert [r["id"] for r in board["overdue"]] == [a.id] and not board["overdue"][0]["escalated"]
        assert [r["id"] for r in board["withdrawal_overdue"]] == [pen.id]
        assert [r["id"] for r in board["ending"]] == [pen.id]  # its 3 months ended on 20 March: not ended yet
        monitor_deadlines(s, at(2026, 4, 1))
    with db.tx() as s:
        assert deadline_board(s, at(2026, 4, 2))["overdue"][0]["escalated"]
        assert deadline_board(s, at(2026, 4, 2), districts=["999999"]) == {"overdue": [], "withdrawal_overdue": [],
                                                                           "ending": []}


def test_the_worker_runs_the_check_once_a_day(seeded, runtime):
    """``engine.bootstrap`` registers the check as the daily periodic job ``publication.deadlines``: the worker's
    tick flags an overdue publication, a second tick the same day runs nothing, the next day's finds it flagged."""
    db = seeded
    with db.tx() as s:
        late = publication.record(s, kind="result", title="检查结果", payload={}, now=at(2026, 3, 2),
                                  uscc="91350102MA2Y00001A", instance_id=7, task_key="t")
    ran, failed = run_periodic(db.factory, at(2026, 4, 2))
    mine = [r for r in ran if r["job"] == "publication.deadlines"]
    assert failed == [] and len(mine) == 1 and mine[0]["publication_overdue"] == [late.id]
    again, _ = run_periodic(db.factory, at(2026, 4, 2, 18))
    assert [r for r in again if r["job"] == "publication.deadlines"] == []
    next_day, _ = run_periodic(db.factory, at(2026, 4, 3))
    assert [r["publication_overdue"] for r in next_day if r["job"] == "publication.deadlines"] == [[]]
    with db.tx() as s:
        assert len(events(s, "publication_overdue")) == 1
