"""The enforcement safeguards through the real ``enforcement`` process (issue 18): legal review and collective
deliberation as tasks required by rule, for groups of their own, never completed by the case's investigator,
returning the case to the investigation; a heavier penalty (licence revoked, business suspended) enters the
serious-violation list; the documents the steps issue (filing approval, pre-penalty notice, hearing notice,
penalty decision); the evidence held decided within 7 working days, escalated by a timer
when it is not; the summary procedure decided by rule from the verified lead, at its boundaries."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.errors import NotAllowed
from engine.runtime.users import add_user
from engine.supervision import calendar as cal
from engine.supervision.document_file_models import DocumentFile
from engine.supervision.document_models import Document
from engine.supervision.list_models import ListEntry
from scoring.models import Entity
from tests.supervision.test_enforcement_process import T1, notice, start_case
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

PERSON = "92350100M000100Y43"  # USCC category 2: an individual business, run by a natural person


@pytest.fixture
def office(loop):
    """Besides the loop's office: ``leo`` of the legal department, ``ivy`` who both handles cases and reviews
    them, ``hal`` who both handles cases and sits among the heads."""
    with loop.db.tx() as s:
        add_user(s, "leo", "leo-password", "officer", "legal_reviewers")
        add_user(s, "ivy", "ivy-password", "officer", "case_handlers,legal_reviewers")
        add_user(s, "hal", "hal-password", "officer", "case_handlers,agency_heads")
    return loop


def to_investigation(loop, iid: int, at: datetime = T1) -> None:
    loop.complete(iid, "verify_lead", "carol", lead_verified(), at)
    loop.complete(iid, "filing", "hank", filed(at.date()), at + timedelta(hours=1))


def reviewed(outcome: str, on: date) -> dict:
    return {"legal_review_outcome": outcome, "legal_review_opinion": "事实清楚，适用依据正确" if outcome == "agree"
            else "证据不足以认定违法所得数额", "legal_reviewed_on": on.isoformat()}


def deliberation(outcome: str, on: date) -> dict:
    return {"deliberated_on": on.isoformat(), "collective_outcome": outcome, "collective_opinion": "讨论意见",
            "participants": [{"name": n, "position": "局领导"} for n in ("甲", "乙", "丙")]}


def history(loop, event: str) -> list[dict]:
    (case,) = loop.cases()
    return [e for e in case.history if e["event"] == event]


def open_tasks(loop, iid: int) -> list[str]:
    return [t.bpmn_id for t in loop.tasks(iid)]


# ---------------------------------------------------------------------------------------------- legal review
def test_a_small_fine_goes_to_the_notice_without_legal_review(office):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "dave", investigated("penalty", fine=49999.99), T1 + timedelta(days=5))
    assert open_tasks(office, iid) == ["pre_notice"]
    assert history(office, "legal_review") == []


def test_legal_review_by_the_legal_department_and_never_by_the_investigator(office):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "ivy", investigated("penalty", fine=50000), T1 + timedelta(days=5))
    task = office.task(iid, "legal_review")
    assert task.candidate_groups == ["legal_reviewers"]
    assert task.due_at == cal.current_calendar().add_workdays(T1 + timedelta(days=5), 5).at
    with pytest.raises(NotAllowed):  # ivy is a legal reviewer too, but she investigated this case
        office.complete(iid, "legal_review", "ivy", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    with pytest.raises(NotAllowed):  # a case handler outside the legal department
        office.complete(iid, "legal_review", "carol", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    assert open_tasks(office, iid) == ["legal_review"]
    office.complete(iid, "legal_review", "leo", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    assert open_tasks(office, iid) == ["pre_notice"]
    (review,) = history(office, "legal_review")
    assert (review["outcome"], review["by"], review["basis"]) == ("agree", "leo", "对法人或者其他组织拟处较大数额罚款")


@pytest.mark.parametrize("outcome", ["supplement", "disagree"])
def test_a_legal_review_that_does_not_agree_returns_the_case_to_the_investigation(office, outcome):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "dave", investigated("penalty", ["fine", "suspend"], 20000),
                    T1 + timedelta(days=5))
    office.complete(iid, "legal_review", "leo", reviewed(outcome, date(2026, 3, 9)), T1 + timedelta(days=6))
    assert open_tasks(office, iid) == ["investigate"]
    # the supplemented investigation proposes a fine under the thresholds: no second review
    office.complete(iid, "investigate", "dave", investigated("penalty", fine=8000), T1 + timedelta(days=9))
    assert open_tasks(office, iid) == ["pre_notice"]
    assert [e["outcome"] for e in history(office, "legal_review")] == [outcome]


# ---------------------------------------------------------------------------------------------- collective deliberation
def test_a_complex_case_is_reviewed_and_deliberated_by_the_heads_and_not_by_its_investigator(office):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "hal", investigated("penalty", fine=20000) | {"complex_case": True},
                    T1 + timedelta(days=5))
    office.complete(iid, "legal_review", "leo", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    office.complete(iid, "pre_notice", "carol", notice(False), T1 + timedelta(days=7))  # no right to a hearing
    task = office.task(iid, "deliberate")
    assert task.candidate_groups == ["agency_heads"] and open_tasks(office, iid) == ["deliberate"]
    with pytest.raises(NotAllowed):  # hal sits among the heads, but he investigated this case
        office.complete(iid, "deliberate", "hal", deliberation("agree", date(2026, 3, 10)), T1 + timedelta(days=8))
    office.complete(iid, "deliberate", "hank", deliberation("disagree", date(2026, 3, 10)), T1 + timedelta(days=8))
    assert open_tasks(office, iid) == ["investigate"]  # the heads disagree: back to the investigation
    office.complete(iid, "investigate", "hal", investigated("penalty", fine=20000) | {"complex_case": True},
                    T1 + timedelta(days=12))
    office.complete(iid, "legal_review", "leo", reviewed("agree", date(2026, 3, 15)), T1 + timedelta(days=13))
    office.complete(iid, "pre_notice", "carol", notice(False), T1 + timedelta(days=14))
    office.complete(iid, "deliberate", "hank", deliberation("agree", date(2026, 3, 17)), T1 + timedelta(days=15))
    assert open_tasks(office, iid) == ["decide"]
    assert [(e["outcome"], e["by"], e["basis"]) for e in history(office, "collective_deliberation")] == [
        ("disagree", "hank", "情节复杂"), ("agree", "hank", "情节复杂")]
    office.complete(iid, "decide", "hank", decision("penalty", date(2026, 3, 18), ["fine"], 20000),
                    T1 + timedelta(days=16))
    (case,) = office.cases()
    assert case.status == "decided" and case.procedure == "ordinary"


def test_no_penalty_is_neither_reviewed_nor_deliberated(office):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "dave", investigated("minor_no_penalty") | {"complex_case": None},
                    T1 + timedelta(days=5))
    assert open_tasks(office, iid) == ["decide"]


# ---------------------------------------------------------------------------------------------- evidence held
def held(on: date) -> dict:
    return investigated("minor_no_penalty") | {"evidence_hold": True, "hold_items": "涉案商品20件",
                                               "hold_on": on.isoformat()}


def hold_decided(on: date) -> dict:
    return {"hold_decision": "release", "hold_decided_on": on.isoformat(), "hold_decision_note": "违法事实不成立，退还"}


def test_evidence_held_is_decided_within_7_working_days(office):
    iid = start_case(office)
    to_investigation(office, iid)
    at = datetime(2026, 4, 1, 10, 0, tzinfo=SH)  # Wednesday before Qingming (4–6 April 2026 rest)
    office.complete(iid, "investigate", "dave", held(at.date()), at)
    (hold,) = history(office, "evidence_held")
    due = cal.current_calendar().add_workdays(at, 7).at
    assert due.astimezone(SH).date() == date(2026, 4, 13) and hold["decide_by"] == due.isoformat()
    task = office.task(iid, "decide_hold")
    assert task.due_at == due and task.candidate_groups == ["case_handlers"]
    (job,) = [j for j in office.jobs(iid) if j.bpmn_id == "hold_overdue"]
    assert job.due_at == due
    office.complete(iid, "decide_hold", "carol", hold_decided(date(2026, 4, 10)), at + timedelta(days=9))
    assert [j for j in office.jobs(iid) if j.bpmn_id == "hold_overdue"] == []
    assert open_tasks(office, iid) == ["decide"]
    (decided,) = history(office, "evidence_hold_decided")
    assert decided["decision"] == "release" and "late" not in decided
    assert history(office, "evidence_hold_overdue") == []


def test_an_evidence_hold_not_decided_in_7_working_days_is_escalated(office):
    iid = start_case(office)
    to_investigation(office, iid)
    at = datetime(2026, 4, 1, 10, 0, tzinfo=SH)
    office.complete(iid, "investigate", "dave", held(at.date()), at)
    (job,) = [j for j in office.jobs(iid) if j.bpmn_id == "hold_overdue"]
    office.run_due(job.due_at - timedelta(minutes=1))  # the last minute of the 7th working day: nothing yet
    assert history(office, "evidence_hold_overdue") == [] and open_tasks(office, iid) == ["decide_hold"]
    office.run_due(job.due_at + timedelta(seconds=1))
    (overdue,) = history(office, "evidence_hold_overdue")
    assert datetime.fromisoformat(overdue["decide_by"]) == job.due_at
    assert office.task(iid, "supervise_hold").candidate_groups == ["supervisors"]
    assert sorted(open_tasks(office, iid)) == ["decide_hold", "supervise_hold"]  # the decision is still owed
    office.complete(iid, "decide_hold", "carol", hold_decided(date(2026, 4, 14)), job.due_at + timedelta(days=1))
    (decided,) = history(office, "evidence_hold_decided")
    assert decided["late"] is True
    office.complete(iid, "supervise_hold", "sam", {}, job.due_at + timedelta(days=1))
    assert open_tasks(office, iid) == ["decide"]


# ---------------------------------------------------------------------------------------------- summary procedure
def on_the_spot(penalties, fine) -> dict:
    data = lead_verified() | {"facts_clear": True, "legal_basis": "《价格法》第四十二条",
                              "proposed_penalties": penalties}
    if "fine" in penalties:
        data["proposed_fine"] = fine
    return data


SPOT = {"summary_decision_number": "当场〔2026〕3号", "served_at": "2026-03-02T11:00:00+08:00", "signed": True,
        "summary_officers": [{"name": "卡罗", "cert_no": "FJ-001"}, {"name": "戴夫", "cert_no": "FJ-002"}]}


@pytest.mark.parametrize("uscc, fine", [(USCC, 3000), (PERSON, 200)])
def test_the_summary_procedure_decides_on_the_spot_without_filing(office, uscc, fine):
    iid = office.start("enforcement", {"uscc": uscc, "entity_id": None, "lead_source": "complaint",
                                       "case_hazard_ids": []}, T1, key=uscc)
    office.complete(iid, "verify_lead", "carol", on_the_spot(["warning", "fine"], fine), T1)
    assert open_tasks(office, iid) == ["summary_decision"]
    office.complete(iid, "summary_decision", "carol", SPOT, T1 + timedelta(hours=1))
    (case,) = office.cases(uscc)
    assert (case.procedure, case.status, case.decision_type, case.penalties, case.fine) == (
        "summary", "decided", "penalty", ["warning", "fine"], float(fine))
    assert case.filed_at is None and case.decision_due is None and case.case_number is None
    assert [e["event"] for e in case.history] == ["lead_opened", "decided"]
    assert case.history[-1]["procedure"] == "summary" and case.history[-1]["decision_number"] == "当场〔2026〕3号"
    with office.db.tx() as s:  # a pre-printed paper form: the system issues no second decision
        assert not s.scalars(select(Document).where(Document.instance_id == iid,
                                                    Document.kind == "penalty_decision")).all()
    assert open_tasks(office, iid) == ["execute"]
    office.complete(iid, "execute", "carol", {"status": "paid", "amount_paid": fine, "paid_on": "2026-03-05"},
                    T1 + timedelta(days=3))
    office.complete(iid, "close", "carol", closed("executed", date(2026, 3, 5), False), T1 + timedelta(days=3))
    assert office.status(iid) == "completed"
    (case,) = office.cases(uscc)
    assert case.status == "closed" and case.procedure == "summary"
    office.audit_ok()


def test_without_a_pre_printed_form_the_summary_decision_is_issued_and_numbered(office):
    """Issue 18: the on-the-spot decision was a number the officer typed (duplicates possible); left empty, the
    register numbers it and the decision is a signed document whose number the case keeps."""
    iid = office.start("enforcement", {"uscc": USCC, "entity_id": None, "lead_source": "complaint",
                                       "case_hazard_ids": []}, T1, key=USCC)
    office.complete(iid, "verify_lead", "carol", on_the_spot(["warning", "fine"], 1500), T1)
    spot = {k: v for k, v in SPOT.items() if k != "summary_decision_number"}
    office.complete(iid, "summary_decision", "carol", spot, T1 + timedelta(hours=1))
    (case,) = office.cases(USCC)
    with office.db.tx() as s:
        (doc,) = s.scalars(select(Document).where(Document.instance_id == iid,
                                                  Document.kind == "penalty_decision")).all()
        fields = s.get(DocumentFile, doc.id).fields
    assert case.status == "decided" and case.history[-1]["decision_number"] == doc.number
    assert doc.number.endswith("罚〔2026〕1号") and doc.ref == f"summary:{case.id}"
    assert "当场作出（简易程序）" in fields["penalty"] and fields["fine_text"] == "人民币1,500.00元"
    assert open_tasks(office, iid) == ["execute"]
    office.audit_ok()


@pytest.mark.parametrize("uscc, fine", [(USCC, 3000.01), (PERSON, 200.01)])
def test_a_fine_above_the_summary_limit_takes_the_ordinary_procedure(office, uscc, fine):
    iid = office.start("enforcement", {"uscc": uscc, "entity_id": None, "lead_source": "complaint",
                                       "case_hazard_ids": []}, T1, key=uscc)
    office.complete(iid, "verify_lead", "carol", on_the_spot(["fine"], fine), T1)
    assert open_tasks(office, iid) == ["filing"]
    (case,) = office.cases(uscc)
    assert case.procedure == "ordinary"


# ---------------------------------------------------------------------------------------------- serious-violation list
def case_with_entity(loop) -> int:
    with loop.db.tx() as s:
        e = Entity(uscc=USCC, name="福州某食品有限公司", industry_section="H", district="350102", entity_type="company")
        s.add(e)
        s.flush()
        entity_id = e.id
    iid = loop.start("enforcement", {"uscc": USCC, "entity_id": entity_id, "lead_source": "complaint",
                                     "case_hazard_ids": []}, T1)
    return iid, entity_id


def decided_and_served(loop, iid: int, penalties: list[str], fine: float) -> None:
    to_investigation(loop, iid)
    loop.complete(iid, "investigate", "dave", investigated("penalty", penalties, fine), T1 + timedelta(days=5))
    if "legal_review" in open_tasks(loop, iid):
        loop.complete(iid, "legal_review", "leo", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    loop.complete(iid, "pre_notice", "carol", notice(True) | {"proposed_penalties": penalties, "proposed_fine": fine},
                  T1 + timedelta(days=7))
    for job in [j for j in loop.jobs(iid) if j.bpmn_id == "hearing_lapsed"]:
        loop.run_due(job.due_at + timedelta(seconds=1))  # a right to a hearing, none asked for
    if "deliberate" in open_tasks(loop, iid):
        loop.complete(iid, "deliberate", "hank", deliberation("agree", date(2026, 3, 20)), T1 + timedelta(days=18))
    at = T1 + timedelta(days=19)
    loop.complete(iid, "decide", "hank", decision("penalty", at.date(), penalties, fine), at)
    loop.complete(iid, "serve_decision", "dave", served(at) | {"document": "penalty_decision"}, at)


def test_a_revoked_licence_enters_the_serious_violation_list(office):
    iid, entity_id = case_with_entity(office)
    decided_and_served(office, iid, ["fine", "revoke_licence"], 20000)
    with office.db.tx() as s:
        (entry,) = s.scalars(select(ListEntry)).all()
        assert (entry.list_kind, entry.entity_id, entry.reason_code, entry.status, entry.instance_id) == (
            "serious", entity_id, "heavy_penalty", "listed", iid)
        assert "决定2026-03-21" in entry.reason and "第五条" in entry.legal_basis
        assert s.get(Entity, entity_id).serious_list is True
    assert open_tasks(office, iid) == ["execute"]


def test_a_fine_alone_does_not_enter_the_serious_violation_list(office):
    iid, _ = case_with_entity(office)
    decided_and_served(office, iid, ["fine"], 20000)
    with office.db.tx() as s:
        assert s.scalars(select(ListEntry)).all() == []
    assert open_tasks(office, iid) == ["execute"]


# ---------------------------------------------------------------------------------------------- documents
def test_the_case_issues_its_filing_approval_notice_hearing_notice_and_decision(office):
    from tests.supervision.test_enforcement_process import complete_hearing, deliberated  # noqa: PLC0415

    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "dave", investigated("penalty", ["fine", "suspend"], 20000),
                    T1 + timedelta(days=5))
    office.complete(iid, "legal_review", "leo", reviewed("agree", date(2026, 3, 9)), T1 + timedelta(days=6))
    office.complete(iid, "pre_notice", "carol", notice(True), T1 + timedelta(days=30))
    office.message("hearing_request", {"requested_on": "2026-04-03"}, T1 + timedelta(days=32))
    complete_hearing(office, iid)
    deliberated(office, iid, T1 + timedelta(days=46))
    office.complete(iid, "decide", "hank", decision("penalty", date(2026, 4, 18), ["fine", "suspend"], 20000),
                    T1 + timedelta(days=47))
    (case,) = office.cases()
    with office.db.tx() as s:
        docs = s.scalars(select(Document).where(Document.instance_id == iid).order_by(Document.id)).all()
        assert [d.kind for d in docs] == ["filing_approval", "penalty_notice", "hearing_notice", "penalty_decision"]
        assert all(d.uscc == USCC and d.status == "issued" for d in docs)
        assert docs[0].ref == f"case:{case.id}:filing" and docs[1].ref == "notice:告字〔2026〕3号"
        fields = {d.kind: s.scalar(select(DocumentFile.fields).where(DocumentFile.document_id == d.id)) for d in docs}
        assert fields["filing_approval"]["cause"] == "未按规定公示许可证"
        assert "卡罗（FJ-001）" in fields["filing_approval"]["handlers"]
        assert fields["penalty_notice"]["proposed_penalty"] == "罚款、责令停产停业"
        assert "五个工作日内" in fields["penalty_notice"]["hearing_text"]  # the party has the right to a hearing
        assert fields["penalty_decision"]["fine_text"] == "人民币20,000.00元"
        assert fields["penalty_decision"]["legal_basis"] == "《食品安全法》第一百二十六条"


def test_no_penalty_issues_no_penalty_decision(office):
    iid = start_case(office)
    to_investigation(office, iid)
    office.complete(iid, "investigate", "dave", investigated("minor_no_penalty"), T1 + timedelta(days=5))
    office.complete(iid, "decide", "hank", decision("minor_no_penalty", date(2026, 3, 10)), T1 + timedelta(days=8))
    with office.db.tx() as s:
        kinds = s.scalars(select(Document.kind).where(Document.instance_id == iid)).all()
    assert kinds == ["filing_approval"]
