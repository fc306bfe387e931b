"""The ``rectification`` process end to end through the real Runtime, on SQLite and PostgreSQL, with a
moving clock: grades by DMN, recurrence, deadlines across National Day 2026, extension then
escalation to an enforcement case, early report, new problem at re-inspection, a high grade's case in
parallel (removal blocked until it closes), and an entity deregistered mid-process."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine.bootstrap import form_hasher
from engine.config import PROJECT_ROOT, load_settings
from engine.errors import NotAllowed
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import HumanTask, Job, ProcessInstance
from engine.runtime.users import add_user
from engine.runtime.worker import run_due
from engine.supervision import agencies, hazards, signing
from engine.supervision import calendar as cal
from engine.supervision.loop_models import EnforcementCase, EntityHazardStats, Hazard, RectificationOrder

UTC = timezone.utc
SH = cal.SHANGHAI
#: Thursday 24 September 2026, 10:00 in China: the next day is the Mid-Autumn holiday, then National Day.
T0 = datetime(2026, 9, 24, 10, 0, tzinfo=SH)
USCC = "91350100M000100Y43"
EV = [{"sha256": "a" * 64, "filename": "photo.jpg", "size": 2048}]
PROCESS_FILES = ["rectification.bpmn", "enforcement.bpmn", "hazard_grade.dmn", "rectification_route.dmn",
                 "hearing_right.dmn", "legal_review.dmn", "collective_deliberation.dmn", "summary_procedure.dmn"]


class Loop:
    """Drives instances like people would: tasks by BPMN id, messages, time passing."""

    def __init__(self, runtime, db):
        self.runtime, self.db = runtime, db

    def start(self, process_id: str, data: dict, at: datetime, key: str = USCC) -> int:
        with clock.frozen(at), self.db.tx() as s:
            return self.runtime.start(s, process_id, business_key=key, data=data, actor="leader").instance.id

    def tasks(self, iid: int) -> list[HumanTask]:
        with self.db.tx() as s:
            return list(s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")
                                  .order_by(HumanTask.id)))

    def task(self, iid: int, bpmn_id: str) -> HumanTask:
        found = [t for t in self.tasks(iid) if t.bpmn_id == bpmn_id]
        assert found, f"no open task {bpmn_id}; open: {[t.bpmn_id for t in self.tasks(iid)]}"
        return found[0]

    def complete(self, iid: int, bpmn_id: str, user: str, data: dict, at: datetime):
        t = self.task(iid, bpmn_id)
        with clock.frozen(at), self.db.tx() as s:
            return self.runtime.complete_task(s, t.id, user, data)

    def message(self, name: str, payload: dict, at: datetime, uscc: str = USCC):
        with clock.frozen(at), self.db.tx() as s:
            return self.runtime.correlate_message(s, name, payload, {"uscc": uscc})

    def run_due(self, at: datetime):
        return run_due(self.runtime, self.db.factory, now=at)

    def status(self, iid: int) -> str:
        with self.db.tx() as s:
            return s.get(ProcessInstance, iid).status

    def jobs(self, iid: int) -> list[Job]:
        with self.db.tx() as s:
            return list(s.scalars(select(Job).where(Job.instance_id == iid).order_by(Job.due_at)))

    def hazards(self, iid: int) -> list[Hazard]:
        with self.db.tx() as s:
            return list(s.scalars(select(Hazard).where(Hazard.source_instance_id == iid).order_by(Hazard.id)))

    def orders(self, iid: int) -> list[RectificationOrder]:
        with self.db.tx() as s:
            return list(s.scalars(select(RectificationOrder).where(RectificationOrder.instance_id == iid)
                                  .order_by(RectificationOrder.id)))

    def cases(self, uscc: str = USCC) -> list[EnforcementCase]:
        with self.db.tx() as s:
            return list(s.scalars(select(EnforcementCase).where(EnforcementCase.uscc == uscc)
                                  .order_by(EnforcementCase.id)))

    def roundtrip(self, iid: int) -> None:
        with self.db.tx() as s:
            inst = s.get(ProcessInstance, iid)
            wf = self.runtime.load_workflow(s, iid)
            assert self.runtime.serializer.dumps(wf) == inst.state

    def audit_ok(self) -> None:
        with self.db.tx() as s:
            assert audit.verify(s).ok


@pytest.fixture
def loop(runtime, db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        # the bureau whose register numbers the notices of USCC (registered in Fuzhou, 350100: its chars 3-8)
        agencies.save_agency(s, code="榕市监", name="福州市市场监督管理局", districts=["350100"])
        signing.ensure_demo_keys(load_settings().keys_dir, [("榕市监", "福州市市场监督管理局")])
        for name, roles, groups in (("alice", "officer", "officers"), ("bob", "officer", "officers"),
                                    ("leader", "team_leader,officer", "officers,team_leaders"),
                                    ("carol", "officer", "case_handlers"), ("dave", "officer", "case_handlers"),
                                    ("hank", "officer", "agency_heads"), ("sam", "supervisor", "supervisors")):
            add_user(s, name, f"{name}-password", roles, groups)
    files = read_paths([PROJECT_ROOT / "processes" / f for f in PROCESS_FILES])
    with db.tx() as s:
        deploy(runtime, s, files, "designer", form_hash=form_hasher(load_settings()))
    with db.tx() as s:
        cal.refresh(s)
    yield Loop(runtime, db)
    cal.use_calendar(None)


def finding(grade: str = "medium", item: str = "SC-FOOD-01", clause: str = "C-3.2", **extra) -> dict:
    return {"item_code": item, "clause": clause, "description": "许可证未公示", "hazard_grade": grade, **extra}


def start_data(*findings_: dict, risk_class: str | None = "B", reinspectors=("alice", "bob")) -> dict:
    return {"uscc": USCC, "entity_id": None, "findings": list(findings_), "risk_class": risk_class,
            "reinspectors": list(reinspectors)}


def served(at: datetime, number: str = "责改〔2026〕1号") -> dict:
    return {"document": "rectification_order", "document_number": number, "method": "in_person",
            "served_at": at.isoformat(), "recipient": "张三丰", "signed": True}


def review(outcome: str, on: date, **extra) -> dict:
    """The re-inspection form; its method is left to the form's default: the one hazard_grade decided."""
    data = {"reinspection_date": on.isoformat(), "outcome": outcome, "evidence": EV}
    if outcome != "fixed":
        data["description"] = "复查情况"
    return {**data, **extra}


def reinspect(loop: Loop, iid: int, outcome: str, at: datetime, **extra) -> None:
    loop.complete(iid, "reinspect", "alice", review(outcome, at.date(), **extra), at)
    loop.complete(iid, "countersign", "bob", {"agree": True}, at + timedelta(minutes=30))


# ---------------------------------------------------------------------------------------------- helpers for cases
def run_case_minor(loop: Loop, iid: int, at: datetime, *, verified: bool) -> datetime:
    """Drive an enforcement case (called or standalone) to close with a no-penalty decision."""
    loop.complete(iid, "verify_lead", "carol", lead_verified(), at)
    loop.complete(iid, "filing", "hank", filed(at.date()), at + timedelta(hours=1))
    loop.complete(iid, "investigate", "carol", investigated("minor_no_penalty"), at + timedelta(days=1))
    loop.complete(iid, "decide", "hank", decision("minor_no_penalty", at.date() + timedelta(days=2)),
                  at + timedelta(days=2))
    loop.complete(iid, "serve_decision", "dave", served(at + timedelta(days=2), "决定〔2026〕1号")
                  | {"document": "penalty_decision"}, at + timedelta(days=3))
    loop.complete(iid, "close", "carol", closed("no_penalty", at.date() + timedelta(days=3), verified),
                  at + timedelta(days=3, hours=1))
    return at + timedelta(days=3, hours=1)


def lead_verified(recommendation: str = "file_case") -> dict:
    return {"lead_source": "reinspection", "verified_facts": "核查属实", "prima_facie_evidence": True,
            "within_jurisdiction": True, "within_limitation": True, "recommendation": recommendation,
            "reason": "符合立案条件"}


def filed(on: date, number: str | None = None) -> dict:
    return {"decision": "file", "case_number": number or f"闽市监立〔{on.year}〕{on.toordinal() % 1000}号",
            "cause": "未按规定公示许可证", "filing_date": on.isoformat(),
            "handlers": [{"name": "卡罗", "cert_no": "FJ-001"}, {"name": "戴夫", "cert_no": "FJ-002"}]}


def investigated(conclusion: str, penalties=("fine",), fine=5000) -> dict:
    """The investigation's report; a penalty proposes ``penalties`` (a fine of ``fine``): below the legal review
    thresholds of processes/legal_review.dmn by default."""
    data = {"investigators": [{"name": "卡罗", "cert_no": "FJ-001"}, {"name": "戴夫", "cert_no": "FJ-002"}],
            "facts": "查明事实", "evidence": EV, "conclusion": conclusion}
    if conclusion == "penalty":
        data["proposed_penalties"] = list(penalties)
        if "fine" in penalties:
            data["proposed_fine"] = fine
    return data


def decision(kind: str, on: date, penalties=None, fine=None) -> dict:
    data = {"decision_type": kind, "legal_basis": "《食品安全法》第一百二十六条",
            "decision_number": f"决定{on.isoformat()}", "decision_date": on.isoformat(), "reasoning": "理由"}
    if kind == "penalty":
        data["penalties"] = penalties or ["fine"]
        if "fine" in data["penalties"]:
            data["fine_amount"] = fine or 5000
    return data


def closed(reason: str, on: date, verified: bool) -> dict:
    return {"close_reason": reason, "closed_on": on.isoformat(), "rectification_verified": verified,
            "summary": "结案报告"}


# ---------------------------------------------------------------------------------------------- tests
def test_medium_hazard_deadline_across_national_day_fixed_and_removed(loop):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    (h,) = loop.hazards(iid)
    assert (h.grade, h.status, h.source_kind, h.needs_case) == ("medium", "open", "inspection", False)
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["serve_order"]
    loop.complete(iid, "serve_order", "alice", served(T0), T0 + timedelta(minutes=5))
    (order,) = loop.orders(iid)
    # 10 working days from Thu 24 Sep: 25 Sep (Mid-Autumn) and 1–7 Oct rest, Sat 10 Oct is worked
    assert order.deadline_kind == "workdays" and order.days == 10
    assert order.deadline_day == date(2026, 10, 15) and not order.provisional
    assert order.deadline.astimezone(SH).time().isoformat() == "23:59:59"
    (job,) = loop.jobs(iid)
    assert job.kind == "timer" and job.due_at == order.deadline
    loop.roundtrip(iid)
    assert loop.run_due(datetime(2026, 10, 15, 12, 0, tzinfo=SH)).timers_fired == 0
    assert loop.run_due(datetime(2026, 10, 16, 9, 0, tzinfo=SH)).timers_fired == 1
    t = loop.task(iid, "reinspect")
    assert t.assignee == "alice" and t.form_id == "rectification_review"
    reinspect(loop, iid, "fixed", datetime(2026, 10, 16, 10, 0, tzinfo=SH))
    assert loop.status(iid) == "completed"
    (h,) = loop.hazards(iid)
    assert h.status == "removed" and h.verified_at is not None and h.removed_at is not None
    assert [e["event"] for e in h.history] == ["recorded", "rectification_verified", "removed"]
    (order,) = loop.orders(iid)
    assert order.status == "verified" and order.reinspection_outcome == "fixed"
    loop.audit_ok()


def test_a_second_officer_countersigns_the_reinspection_even_without_a_planned_pair(loop):
    """Issue 18: with no re-inspectors planned, any officer may re-inspect and any officer countersign — but not
    the same one (the countersign task's notCompletedBy): refused before anything is saved, then a second works."""
    iid = loop.start("rectification", start_data(finding("medium"), reinspectors=()), T0)
    loop.complete(iid, "serve_order", "alice", served(T0), T0 + timedelta(minutes=5))
    loop.run_due(datetime(2026, 10, 16, 9, 0, tzinfo=SH))
    at = datetime(2026, 10, 16, 10, 0, tzinfo=SH)
    loop.complete(iid, "reinspect", "bob", review("fixed", at.date()), at)
    with pytest.raises(NotAllowed, match="needs a second person: bob completed reinspect"):
        loop.complete(iid, "countersign", "bob", {"agree": True}, at + timedelta(minutes=30))
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["countersign"]
    loop.complete(iid, "countersign", "alice", {"agree": True}, at + timedelta(minutes=30))
    assert loop.status(iid) == "completed"
    (order,) = loop.orders(iid)
    assert order.status == "verified"


def test_grade_by_dmn_and_recurrence_count(loop):
    """A low finding is low the first time, medium when the entity comes back, high the third time."""
    grades = []
    for i in range(3):
        iid = loop.start("rectification", start_data(finding("low", clause=f"C-{i}")), T0 + timedelta(hours=i))
        grades.append(loop.hazards(iid)[0].grade)
    assert grades == ["low", "medium", "high"]
    with loop.db.tx() as s:
        stats = s.get(EntityHazardStats, USCC)
        assert (stats.recurrence_count, stats.hazards_total) == (3, 3)
    # a safety-related finding is high whatever the officer proposed; class D makes a low finding medium
    iid = loop.start("rectification", start_data(finding("low", safety_related=True)), T0, key="x")
    assert loop.hazards(iid)[0].grade == "high"
    other = {**start_data(finding("low"), risk_class="D"), "uscc": "91350100M000200Y11"}
    iid = loop.start("rectification", other, T0)
    assert loop.hazards(iid)[0].grade == "medium"


def test_not_fixed_extension_once_then_escalation_to_case_then_removal(loop):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    loop.complete(iid, "serve_order", "alice", served(T0), T0)
    loop.run_due(datetime(2026, 10, 16, 9, 0, tzinfo=SH))
    reinspect(loop, iid, "not_fixed", datetime(2026, 10, 16, 10, 0, tzinfo=SH))
    at = datetime(2026, 10, 16, 14, 0, tzinfo=SH)
    loop.complete(iid, "extension", "alice",
                  {"received_on": "2026-10-16", "reason": "设备待采购", "requested_until": "2026-10-23",
                   "decision": "approve", "extension_days": 5, "opinion": "同意延期一次"}, at)
    (order,) = loop.orders(iid)
    assert order.extension_used and order.extension_days == 5
    assert order.deadline_day == date(2026, 10, 22)  # 5 working days after 15 Oct
    loop.roundtrip(iid)
    loop.run_due(datetime(2026, 10, 23, 9, 0, tzinfo=SH))
    reinspect(loop, iid, "not_fixed", datetime(2026, 10, 23, 10, 0, tzinfo=SH))
    # no second extension: escalated, and a case lead from the re-inspection is under way
    (order,) = loop.orders(iid)
    assert order.status == "escalated"
    (case,) = loop.cases()
    assert case.lead_source == "reinspection" and case.status == "lead"
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["verify_lead"]
    with loop.db.tx() as s:
        with pytest.raises(hazards.RemovalBlocked):
            hazards.remove_hazards(s, [h.id for h in loop.hazards(iid)], T0)
    run_case_minor(loop, iid, datetime(2026, 10, 26, 10, 0, tzinfo=SH), verified=True)
    assert loop.status(iid) == "completed"
    (case,) = loop.cases()
    assert case.status == "closed"
    assert [h.status for h in loop.hazards(iid)] == ["removed"]
    loop.audit_ok()


def test_rectified_before_the_order_is_served(loop):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["serve_order"]
    loop.message("rectification_report", {"note": "已整改并提交照片"}, T0 + timedelta(hours=2))
    (order,) = loop.orders(iid)
    assert order.rectified_before_service and order.served_at is None and order.status == "reported"
    assert [t.bpmn_id for t in loop.tasks(iid)] == ["reinspect"]  # the service task was cancelled
    reinspect(loop, iid, "fixed", T0 + timedelta(days=1))
    assert loop.status(iid) == "completed"
    assert [h.status for h in loop.hazards(iid)] == ["removed"]


def test_new_problem_found_at_reinspection_gets_its_own_entry_and_order(loop):
    iid = loop.start("rectification", start_data(finding("medium")), T0)
    loop.complete(iid, "serve_order", "alice", served(T0), T0)
    loop.message("rectification_report", {"note": "已整改"}, T0 + timedelta(days=4))
    new = [{"item_code": "SC-FOOD-02", "clause": "C-5.1", "description": "过期食品", "hazard_grade": "low"}]
    reinspect(loop, iid, "new_problem", T0 + timedelta(days=5), new_findings=new)
    first, second = loop.hazards(iid)
    assert first.status == "rectification_verified"
    assert (second.item_code, second.source_kind, second.status) == ("SC-FOOD-02", "reinspection", "open")
    assert second.grade == "medium"  # low proposed, but the entity is back in the registry
    with loop.db.tx() as s:
        assert s.get(EntityHazardStats, USCC).recurrence_count == 2
    o1, o2 = loop.orders(iid)
    assert o1.status == "verified" and o2.hazard_ids == [second.id] and o2.status == "issued"
    loop.roundtrip(iid)
    loop.complete(iid, "serve_order", "bob", served(T0 + timedelta(days=6), "责改〔2026〕2号"), T0 + timedelta(days=6))
    loop.message("rectification_report", {"note": "已整改"}, T0 + timedelta(days=7))
    reinspect(loop, iid, "fixed", T0 + timedelta(days=8))
    assert loop.status(iid) == "completed"
    assert [h.status for h in loop.hazards(iid)] == ["removed", "removed"]


def test_high_grade_opens_case_in_parallel_and_removal_waits_for_it(loop):
    iid = loop.start("rectification", start_data(finding("high")), T0)
    (h,) = loop.hazards(iid)
    assert h.grade == "high"
    assert sorted(t.bpmn_id for t in loop.tasks(iid)) == ["serve_order", "verify_lead"]
    (case,) = loop.cases()
    assert case.lead_source == "inspection" and case.status == "lead"
    # rectification is verified first ...
    loop.complete(iid, "serve_order", "alice", served(T0), T0)
    (order,) = loop.orders(iid)
    assert order.days == 5 and order.deadline_day == date(2026, 10, 9)
    loop.message("rectification_report", {"note": "已整改"}, T0 + timedelta(days=1))
    reinspect(loop, iid, "fixed", T0 + timedelta(days=2))
    (h,) = loop.hazards(iid)
    assert h.status == "rectification_verified" and loop.status(iid) == "running"
    with loop.db.tx() as s:
        blocking = hazards.removal_blockers(s, [h.id])
        assert [b["reason"] for b in blocking] == ["case_open"]
    loop.roundtrip(iid)
    # ... and removal follows only once the case is closed
    run_case_minor(loop, iid, T0 + timedelta(days=3), verified=False)
    assert loop.status(iid) == "completed"
    assert [h.status for h in loop.hazards(iid)] == ["removed"]
    assert loop.cases()[0].status == "closed"
    loop.audit_ok()


def test_entity_deregistered_mid_process_closes_hazard_and_case(loop):
    iid = loop.start("rectification", start_data(finding("high")), T0)
    loop.complete(iid, "serve_order", "alice", served(T0), T0)
    loop.complete(iid, "verify_lead", "carol", lead_verified(), T0 + timedelta(hours=1))
    loop.message("entity_deregistered", {"reason": "status_deregistered"}, T0 + timedelta(days=2))
    assert loop.status(iid) == "completed"
    assert loop.tasks(iid) == [] and loop.jobs(iid) == []
    (h,) = loop.hazards(iid)
    assert (h.status, h.closed_reason) == ("closed_other", "status_deregistered")
    assert h.history[-1]["event"] == "closed_other"
    (case,) = loop.cases()
    assert (case.status, case.close_reason) == ("terminated", "status_deregistered")
    assert loop.orders(iid)[0].status == "closed_other"
    with loop.db.tx() as s:
        assert s.get(EntityHazardStats, USCC).recurrence_count == 1  # the count stays
    loop.audit_ok()
