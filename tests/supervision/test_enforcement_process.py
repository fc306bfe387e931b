"""The ``enforcement`` process end to end (standalone, started from a complaint lead): filing, the
90-day decision clock with its reminder and supervisor escalation, hearing on request or lapsed,
penalty publication within 20 working days, no-penalty and not-filed paths, deregistration."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.errors import FormValidationError
from engine.supervision import calendar as cal
from engine.supervision.loop_models import Publication
from tests.supervision.test_rectification_process import (
    SH,
    USCC,
    closed,
    decision,
    filed,
    investigated,
    lead_verified,
    served,
)

T1 = datetime(2026, 3, 2, 10, 0, tzinfo=SH)  # Monday


def start_case(loop, at=T1) -> int:
    return loop.start("enforcement", {"uscc": USCC, "entity_id": None, "lead_source": "complaint",
                                      "case_hazard_ids": []}, at)


def notice(heavier: bool) -> dict:
    """A pre-penalty notice; ``heavier``: it proposes a suspension of business besides the fine, which gives the
    party the right to a hearing (processes/hearing_right.dmn); a fine of 20,000 yuan alone does not for a
    company."""
    return {"notice_number": "告字〔2026〕3号", "notice_date": "2026-04-01", "facts": "事实",
            "legal_basis": "依据", "proposed_penalties": ["fine", "suspend"] if heavier else ["fine"],
            "proposed_fine": 20000}


def test_a_lead_is_recommended_for_filing_only_with_the_three_filing_conditions(loop):
    """Issue 18: prima facie evidence, jurisdiction and the limitation period gate the recommendation to file
    (the form refuses it, naming the condition; nothing moves); without them the lead ends as not filed."""
    iid = start_case(loop)
    outside = lead_verified() | {"lead_source": "complaint", "within_jurisdiction": False}
    with pytest.raises(FormValidationError) as refused:
        loop.complete(iid, "verify_lead", "carol", outside, T1)
    assert set(refused.value.details["field_errors"]) == {"within_jurisdiction"}
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["verify_lead"]
    loop.complete(iid, "verify_lead", "carol", outside | {"recommendation": "no_case"}, T1)
    assert "filing" not in [t.bpmn_id for t in loop.tasks(iid)]
    (case,) = loop.cases()
    assert case.status == "not_filed"


def complete_hearing(loop, iid: int) -> None:
    loop.complete(iid, "hearing", "carol", {"requested": True, "request_date": "2026-04-03",
                                            "hearing_at": "2026-04-15T09:00:00+08:00", "presiding_officer": "王法官",
                                            "party_attended": True, "hearing_conclusion": "维持"},
                  T1 + timedelta(days=45))


def deliberated(loop, iid: int, at: datetime, outcome: str = "agree") -> None:
    """The bureau's heads deliberate (a suspension of business is a heavier penalty:
    processes/collective_deliberation.dmn)."""
    loop.complete(iid, "deliberate", "hank", {
        "deliberated_on": at.date().isoformat(), "collective_outcome": outcome, "collective_opinion": "同意拟处罚意见",
        "participants": [{"name": n, "position": "局领导"} for n in ("甲", "乙", "丙")]}, at)


def test_a_case_that_held_a_hearing_is_decided_in_time_after_the_original_due_date(loop):
    """Issue 18: the hearing's time does not count, so a decision two days after the 90 days is in time."""
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified() | {"lead_source": "complaint"}, T1)
    loop.complete(iid, "filing", "hank", filed(date(2026, 3, 3), "闽市监立〔2026〕8号"), T1 + timedelta(days=1))
    loop.complete(iid, "investigate", "dave", investigated("penalty"), T1 + timedelta(days=20))
    loop.complete(iid, "pre_notice", "carol", notice(True), T1 + timedelta(days=30))
    loop.message("hearing_request", {"requested_on": "2026-04-03"}, T1 + timedelta(days=32))
    (case,) = loop.cases()
    assert case.history[-1]["event"] == "clock_paused" and case.history[-1]["on"] == "2026-04-03"
    complete_hearing(loop, iid)
    # the hearing's opinion is its own field: the investigation's conclusion (a penalty proposed) stands
    (deliberation,) = loop.tasks(iid)
    with loop.db.tx() as s:
        wf = loop.runtime.load_workflow(s, iid)
        data = next(t for t in wf.get_tasks() if str(t.id) == deliberation.task_guid).data
    assert (data["conclusion"], data["hearing_conclusion"]) == ("penalty", "维持")
    deliberated(loop, iid, T1 + timedelta(days=46))
    loop.run_due(datetime(2026, 6, 2, 9, 0, tzinfo=SH))  # past the 90 days from filing
    (case,) = loop.cases()
    assert case.escalated_at is None and loop.tasks(iid)[0].bpmn_id == "decide"
    assert loop.tasks(iid)[0].due_at == case.decision_due  # the decision task's due date follows the clock
    at = datetime(2026, 6, 3, 15, 0, tzinfo=SH)
    loop.complete(iid, "decide", "hank", decision("penalty", date(2026, 6, 3), ["warning", "fine"], 20000), at)
    (case,) = loop.cases()
    assert case.status == "decided" and "late" not in case.history[-1]


def test_penalty_with_hearing_reminder_escalation_and_publication(loop):
    iid = start_case(loop)
    t = loop.task(iid, "verify_lead")
    assert t.candidate_groups == ["case_handlers"]
    assert t.due_at == cal.current_calendar().add_workdays(T1, 15).at
    loop.complete(iid, "verify_lead", "carol", lead_verified() | {"lead_source": "complaint"}, T1)
    loop.complete(iid, "filing", "hank", filed(date(2026, 3, 3), "闽市监立〔2026〕7号"), T1 + timedelta(days=1))
    (case,) = loop.cases()
    assert case.status == "filed" and case.case_number == "闽市监立〔2026〕7号"
    # 90 calendar days after 3 March is 1 June (a Monday, a working day)
    assert case.decision_due.astimezone(SH).date() == date(2026, 6, 1)
    assert case.decision_reminder_at == case.decision_due - timedelta(days=10)
    loop.complete(iid, "investigate", "dave", investigated("penalty"), T1 + timedelta(days=20))
    loop.complete(iid, "pre_notice", "carol", notice(True), T1 + timedelta(days=30))
    loop.message("hearing_request", {"requested_on": "2026-04-03"}, T1 + timedelta(days=32))
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["hearing"]
    loop.roundtrip(iid)
    complete_hearing(loop, iid)
    # the hearing's 13 days (requested 3 April, held until 16 April) do not count: due 15 June, not 1 June
    original_due = case.decision_due
    (case,) = loop.cases()
    assert case.decision_due.astimezone(SH).date() == date(2026, 6, 15)
    assert case.decision_reminder_at == case.decision_due - timedelta(days=10)
    assert [(e["event"], e.get("days")) for e in case.history if e["event"].startswith("clock_")] == [
        ("clock_paused", None), ("clock_resumed", 13)]
    loop.run_due(original_due + timedelta(minutes=1))  # the old due date passes: nothing happens
    (case,) = loop.cases()
    assert case.reminded_at is None and case.escalated_at is None
    # reminder before the moved due date, supervisor escalation after it
    loop.run_due(case.decision_reminder_at + timedelta(minutes=1))
    (case,) = loop.cases()
    assert case.reminded_at is not None and case.escalated_at is None
    loop.run_due(case.decision_due + timedelta(minutes=1))
    (case,) = loop.cases()
    assert case.escalated_at is not None
    assert loop.task(iid, "supervise_overdue").candidate_groups == ["supervisors"]
    decided_on = date(2026, 6, 16)
    at = datetime(2026, 6, 16, 15, 0, tzinfo=SH)
    deliberated(loop, iid, at - timedelta(hours=2))
    loop.complete(iid, "decide", "hank", decision("penalty", decided_on, ["warning", "fine"], 20000), at)
    (case,) = loop.cases()
    assert (case.status, case.decision_type, case.fine) == ("decided", "penalty", 20000.0)
    assert case.history[-1]["late"] is True
    loop.complete(iid, "serve_decision", "dave", served(at) | {"document": "penalty_decision"}, at)
    with loop.db.tx() as s:
        (pub,) = s.scalars(select(Publication)).all()
        assert pub.kind == "penalty" and pub.uscc == USCC and pub.ref == f"case:{case.id}"
        assert pub.due_by == cal.current_calendar().add_workdays(decided_on, 20).at
        assert pub.published_at is not None and pub.published_at <= pub.due_by
        assert pub.payload["fine"] == 20000 and pub.payload["penalties"] == ["warning", "fine"]
    # paid 5 days after the 15 days from service: 3 % of the fine a day, computed by the process
    loop.complete(iid, "execute", "carol", {"status": "paid", "amount_paid": 23000, "paid_on": "2026-07-06"},
                  at + timedelta(days=20))
    (case,) = loop.cases()
    (executed,) = [e for e in case.history if e["event"] == "executed"]
    assert (executed["payment_due"], executed["days_late"], executed["late_surcharge"]) == ("2026-07-01", 5, 3000.0)
    loop.complete(iid, "close", "carol", closed("executed", date(2026, 7, 7), True), at + timedelta(days=21))
    (case,) = loop.cases()
    assert case.status == "closed" and case.close_reason == "executed"
    assert loop.status(iid) == "running"  # the supervisor's overdue task is still open
    loop.complete(iid, "supervise_overdue", "sam", {}, at + timedelta(days=21))
    assert loop.status(iid) == "completed"
    loop.audit_ok()


def test_hearing_not_requested_lapses_after_5_working_days_warning_not_published(loop):
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified(), T1)
    loop.complete(iid, "filing", "hank", filed(T1.date()), T1)
    loop.complete(iid, "investigate", "dave", investigated("penalty"), T1 + timedelta(days=3))
    at = datetime(2026, 4, 1, 10, 0, tzinfo=SH)  # Wednesday before Qingming (4–6 April 2026)
    loop.complete(iid, "pre_notice", "carol", notice(True), at)
    (job,) = [j for j in loop.jobs(iid) if j.bpmn_id == "hearing_lapsed"]
    assert job.due_at == cal.current_calendar().add_workdays(at, 5).at
    assert job.due_at.astimezone(SH).date() == date(2026, 4, 9)  # 4–6 April rest
    loop.run_due(job.due_at + timedelta(seconds=1))
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["deliberate"]
    deliberated(loop, iid, job.due_at + timedelta(hours=1))
    assert "decide" in [t.bpmn_id for t in loop.tasks(iid)]
    loop.complete(iid, "decide", "hank", decision("penalty", date(2026, 4, 13), ["warning"]), at + timedelta(days=12))
    loop.complete(iid, "serve_decision", "dave", served(at) | {"document": "penalty_decision"}, at + timedelta(days=13))
    with loop.db.tx() as s:
        assert s.scalars(select(Publication)).all() == []  # a warning alone is not published
    loop.complete(iid, "execute", "carol", {"status": "other_measures_done"}, at + timedelta(days=14))
    loop.complete(iid, "close", "carol", closed("executed", date(2026, 4, 16), False), at + timedelta(days=14))
    assert loop.status(iid) == "completed" and loop.cases()[0].status == "closed"


def test_lead_not_filed(loop):
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified("no_case") | {"reason": "证据不足"}, T1)
    assert loop.status(iid) == "completed"
    (case,) = loop.cases()
    assert case.status == "not_filed" and case.case_number is None


def test_entity_deregistered_mid_case_terminates_it(loop):
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified(), T1)
    loop.complete(iid, "filing", "hank", filed(T1.date()), T1)
    loop.message("entity_deregistered", {"reason": "status_revoked"}, T1 + timedelta(days=5))
    assert loop.status(iid) == "completed" and loop.tasks(iid) == [] and loop.jobs(iid) == []
    (case,) = loop.cases()
    assert (case.status, case.close_reason) == ("terminated", "status_revoked")
    loop.audit_ok()
