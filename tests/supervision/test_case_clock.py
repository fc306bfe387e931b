"""The decision clock of an enforcement case as a service (issue 18): 90 days from filing, moved by the days a
pause lasted (hearing, testing, expert assessment, public notice) and by extensions — the first by the head
(30 days at most), any further one by a collective decision — with the reminder keeping its distance; a decision
while paused ends the pause; refusals name the rule. (The process wiring: test_enforcement_process.py.)"""
from __future__ import annotations

from datetime import date, datetime

import pytest

from engine.errors import Conflict, InvalidInput
from engine.supervision import calendar as cal
from engine.supervision import case_clock, enforcement

SH = cal.SHANGHAI
FILED = datetime(2026, 3, 3, 10, 0, tzinfo=SH)  # 90 days later: Monday 1 June 2026
U = "91350100M000100Y43"


def day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), datetime.min.time().replace(hour=10), tzinfo=SH)


@pytest.fixture
def tx(db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
    yield db.tx
    cal.use_calendar(None)


@pytest.fixture
def case_id(tx) -> int:
    with tx() as s:
        c = enforcement.open_case(s, uscc=U, lead_source="complaint", instance_id=1, task_key="t", now=FILED)
        enforcement.file_case(s, c.id, FILED)
        return c.id


def _due(c) -> date:
    return c.decision_due.astimezone(SH).date()


def test_pauses_move_the_due_date_and_the_reminder_keeps_its_distance(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        assert _due(c) == date(2026, 6, 1)
        lead = c.decision_due - c.decision_reminder_at
        case_clock.pause(s, c, "testing", day("2026-04-01"), day("2026-04-01"))
        state = case_clock.clock_state(c, day("2026-07-01"))
        assert state["paused"] and state["pause_reason"] == "testing" and not state["overdue"]
        case_clock.resume(s, c, day("2026-04-11"), day("2026-04-11"))  # 10 days stood still
        assert _due(c) == date(2026, 6, 11) and c.decision_due - c.decision_reminder_at == lead
        case_clock.pause(s, c, "public_notice", day("2026-05-01"), day("2026-05-01"))
        case_clock.resume(s, c, day("2026-05-04"), day("2026-05-04"))  # 3 more: 14 June is a Sunday
        assert _due(c) == date(2026, 6, 15)
        state = case_clock.clock_state(c, day("2026-06-16"))
        assert state["paused_days"] == 13 and state["overdue"] and not state["paused"]


def test_one_pause_at_a_time_and_nothing_to_resume(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        with pytest.raises(Conflict, match="running"):
            case_clock.resume(s, c, day("2026-04-01"), day("2026-04-01"))
        case_clock.pause(s, c, "hearing", day("2026-04-01"), day("2026-04-01"))
        with pytest.raises(Conflict, match="already stands still since 2026-04-01"):
            case_clock.pause(s, c, "testing", day("2026-04-02"), day("2026-04-02"))
        with pytest.raises(InvalidInput, match="cannot end on 2026-03-31"):
            case_clock.resume(s, c, day("2026-03-31"), day("2026-04-02"))
        with pytest.raises(InvalidInput, match="not one of"):
            case_clock.pause(s, enforcement.get_case(s, case_id), "holiday", day("2026-04-02"), day("2026-04-02"))
        with pytest.raises(InvalidInput, match="before the case was filed"):
            c2 = enforcement.open_case(s, uscc=U, lead_source="complaint", instance_id=2, task_key="t", now=FILED)
            enforcement.file_case(s, c2.id, FILED)
            case_clock.pause(s, c2, "hearing", day("2026-03-01"), day("2026-03-04"))


def test_extensions_head_first_then_collective(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        with pytest.raises(InvalidInput, match="first extension is approved by the head"):
            case_clock.extend(s, c, "collective", "局务会", day("2026-05-20"))
        with pytest.raises(InvalidInput, match="at most 30 days"):
            case_clock.extend(s, c, "head", "王局长", day("2026-05-20"), days=45)
        with pytest.raises(InvalidInput, match="who approved"):
            case_clock.extend(s, c, "head", " ", day("2026-05-20"))
        case_clock.extend(s, c, "head", "王局长", day("2026-05-20"))
        assert _due(c) == date(2026, 7, 1)  # 120 days after 3 March
        with pytest.raises(InvalidInput, match="collective decision"):
            case_clock.extend(s, c, "head", "王局长", day("2026-06-25"))
        case_clock.extend(s, c, "collective", "局务会", day("2026-06-25"), days=60)
        assert _due(c) == date(2026, 8, 31)  # 180 days: 30 August is a Sunday
        assert [e["approval"] for e in c.history if e["event"] == "decision_extended"] == ["head", "collective"]


def test_a_decision_while_paused_ends_the_pause_and_lateness_counts_the_pauses(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        case_clock.pause(s, c, "expert_assessment", day("2026-05-01"), day("2026-05-01"))
        enforcement.decide_case(s, c.id, "penalty", day("2026-06-10"), fine=1000.0)
        assert [e["event"] for e in c.history[-2:]] == ["clock_resumed", "decided"]
        assert c.history[-2]["days"] == 40 and _due(c) == date(2026, 7, 13)  # 11 July is a Saturday
        assert "late" not in c.history[-1]
        with pytest.raises(Conflict, match="decided"):
            case_clock.extend(s, c, "head", "王局长", day("2026-06-11"))


def test_a_decision_after_the_moved_due_date_is_late(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        case_clock.pause(s, c, "hearing", day("2026-04-01"), day("2026-04-01"))
        case_clock.resume(s, c, day("2026-04-08"), day("2026-04-08"))
        assert _due(c) == date(2026, 6, 8)
        enforcement.decide_case(s, c.id, "penalty", day("2026-06-09"), fine=1000.0)
        assert c.history[-1]["late"] is True


@pytest.mark.parametrize("paid, days_late, surcharge, capped", [
    ("2026-06-20", 0, 0.0, False),     # within the 15 days after service
    ("2026-07-01", 0, 0.0, False),     # the due day itself
    ("2026-07-06", 5, 3000.0, False),  # 5 days late: 3 % of 20,000 a day
    ("2026-09-01", 62, 20000.0, True),  # 62 days would be 37,200: never more than the fine
])
def test_the_late_surcharge_is_computed_and_capped_at_the_fine(tx, paid, days_late, surcharge, capped):
    with tx() as s:
        out = case_clock.late_surcharge(s, 20000.0, day("2026-06-16"), day(paid))
    assert out == {"payment_due": "2026-07-01", "days_late": days_late, "late_surcharge": surcharge,
                   "surcharge_capped": capped}


def test_the_execution_of_a_decided_case_records_what_is_owed(tx, case_id):
    with tx() as s:
        c = enforcement.get_case(s, case_id)
        with pytest.raises(Conflict, match="only a decided case"):
            case_clock.record_payment(s, c, status="paid", amount_paid=1.0, served_at=day("2026-05-01"),
                                      paid_at=day("2026-05-02"), now=day("2026-05-02"))
        enforcement.decide_case(s, c.id, "penalty", day("2026-05-20"), fine=20000.0)
        out = case_clock.record_payment(s, c, status="paid", amount_paid=23000.0, served_at=day("2026-05-20"),
                                        paid_at=day("2026-06-09"), now=day("2026-06-09"))
        assert out["payment_due"] == "2026-06-04" and out["days_late"] == 5 and out["late_surcharge"] == 3000.0
        assert c.history[-1]["event"] == "executed" and c.history[-1]["late_surcharge"] == 3000.0
