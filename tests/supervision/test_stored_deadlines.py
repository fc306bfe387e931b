"""Deadlines stored in rows are recomputed when a year's schedule is loaded (engine/supervision/stored_deadlines.py):
a rectification order's deadline (issue, service, extension replayed), a case's decision due date and its
reminder, a publication's due date and a revocation's withdrawal date; the timers that read them move, every
change is audited; a second load with a different holiday set (``--replace``) recomputes again; loading the
same schedule again changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import select

from engine.cli.calendar import calendar as calendar_group
from engine.config import PROJECT_ROOT
from engine.errors import InvalidInput
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy
from engine.runtime.models import AuditEvent, Job
from engine.supervision import calendar as cal
from engine.supervision import case_clock, enforcement, hazards, publication
from engine.supervision.loop_models import EnforcementCase, Publication, RectificationOrder
from engine.supervision.publication_deadlines import record_revocation
from engine.supervision.stored_deadlines import (
    CASE_TIMERS,
    ORDER_TIMERS,
    earliest_start,
    recompute_stored_deadlines,
    workdays_between,
)

CN = timezone(timedelta(hours=8))
FIXTURE_2027 = Path(__file__).parent / "data" / "2027.yaml"  # a test fixture, not the official schedule

#: a process whose timers read row deadlines, as rectification.bpmn and enforcement.bpmn do
ROW_TIMERS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d_rows"
                  targetNamespace="http://regflow.example/test">
  <bpmn:process id="row_timers" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="deadline_passed"/>
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="decision_overdue"/>
    <bpmn:sequenceFlow id="f4" sourceRef="split" targetRef="decision_reminder"/>
    <bpmn:intermediateCatchEvent id="deadline_passed"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>order["deadline"]</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="decision_overdue">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>case["decision_due"]</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="decision_reminder">
      <bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f7</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>case["decision_reminder_at"]</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f5" sourceRef="deadline_passed" targetRef="e1"/>
    <bpmn:sequenceFlow id="f6" sourceRef="decision_overdue" targetRef="e2"/>
    <bpmn:sequenceFlow id="f7" sourceRef="decision_reminder" targetRef="e3"/>
    <bpmn:endEvent id="e1"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e3"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

#: the same year with another holiday set: 元旦 on Friday 1 and Monday 4 January, 春节 a week later
OTHER_2027 = """year: 2027
source: test fixture, second version (not official)
holidays:
  - name: 元旦
    days: [2027-01-01, 2027-01-04]
  - name: 春节
    from: 2027-02-12
    to: 2027-02-18
"""


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CN)


def day(dt: datetime) -> str:
    return dt.astimezone(CN).date().isoformat()


@pytest.fixture
def rows(db, runtime):
    """In 2026, with 2027 not loaded (provisional: weekends only): an order issued 24 Dec (10 working days),
    served 28 Dec and extended by 5; a case filed 9 Nov (90 days, reminder 10 days before); an unpublished
    result of Sunday 20 Dec (20 working days) and another due in 10; a penalty revoked on 29 Dec. One instance
    waits on timers reading the order's and the case's rows."""
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        cal.refresh(s)
        deploy(runtime, s, {"row_timers.bpmn": ROW_TIMERS}, "designer")
    with db.tx() as s:
        o = hazards.issue_order(s, uscc="91350102MA2Y00001A", hazard_ids=[], days=10, instance_id=0,
                                task_key="issue", now=at(2026, 12, 24))
        hazards.serve_order(s, o.id, at(2026, 12, 28))
        hazards.extend_order(s, o.id, 5, at(2027, 1, 4))
        c = enforcement.open_case(s, uscc="91350102MA2Y00001A", lead_source="inspection", hazard_ids=[],
                                  instance_id=0, task_key="lead", now=at(2026, 11, 2))
        enforcement.file_case(s, c.id, at(2026, 11, 9), reminder_days=10)
        p20 = publication.record(s, kind="result", title="检查结果", payload={}, now=at(2026, 12, 20),
                                 event_at=at(2026, 12, 20))
        p10 = publication.record(s, kind="result", title="检查结果", payload={}, now=at(2026, 12, 20),
                                 event_at=at(2026, 12, 20), within_workdays=10)
        pen = publication.record(s, kind="penalty", title="处罚", payload={"penalties": ["fine"], "fine": 500},
                                 now=at(2026, 12, 1), publish=True)
        record_revocation(s, pen.id, at(2026, 12, 29), at(2026, 12, 29))
        o_doc = {"deadline": o.deadline.isoformat()}
        c_doc = {"decision_due": c.decision_due.isoformat(), "decision_reminder_at": c.decision_reminder_at.isoformat()}
    with clock.frozen(at(2026, 12, 30)), db.tx() as s:
        iid = runtime.start(s, "row_timers", data={"order": o_doc, "case": c_doc}).instance.id
        s.get(RectificationOrder, o.id).instance_id = iid
        s.get(EnforcementCase, c.id).instance_id = iid
    return {"order": o.id, "case": c.id, "p20": p20.id, "p10": p10.id, "pen": pen.id, "instance": iid}


def _state(db, r):
    with db.tx() as s:
        o, c = s.get(RectificationOrder, r["order"]), s.get(EnforcementCase, r["case"])
        jobs = {j.bpmn_id: day(j.due_at) for j in s.scalars(select(Job).where(Job.instance_id == r["instance"]))}
        return {"order": day(o.deadline), "order_provisional": o.provisional, "case": day(c.decision_due),
                "reminder": day(c.decision_reminder_at), "p20": day(s.get(Publication, r["p20"]).due_by),
                "p10": day(s.get(Publication, r["p10"]).due_by),
                "withdraw": day(s.get(Publication, r["pen"]).withdraw_due), "jobs": jobs}


def test_provisional_row_deadlines_follow_the_loaded_year(db, runtime, rows):
    before = _state(db, rows)
    # weekends only in 2027: 1 January counts; the case's 7 February (a Sunday) rolls to Monday
    assert before == {"order": "2027-01-18", "order_provisional": True, "case": "2027-02-08",
                      "reminder": "2027-01-29", "p20": "2027-01-15", "p10": "2027-01-01", "withdraw": "2027-01-01",
                      "jobs": {"deadline_passed": "2027-01-18", "decision_overdue": "2027-02-08",
                               "decision_reminder": "2027-01-29"}}
    with db.tx() as s:
        cal.load_year_file(s, FIXTURE_2027)
        out = recompute_stored_deadlines(runtime, s, 2027, now=at(2026, 12, 31))
    after = _state(db, rows)
    # 1-3 January are holidays; 5-13 February (春节) too and Sunday 14 February is a swapped working day
    assert after == {"order": "2027-01-19", "order_provisional": False, "case": "2027-02-14",
                     "reminder": "2027-02-04", "p20": "2027-01-18", "p10": "2027-01-04", "withdraw": "2027-01-04",
                     "jobs": {"deadline_passed": "2027-01-19", "decision_overdue": "2027-02-14",
                              "decision_reminder": "2027-02-04"}}
    assert not out["skipped"]
    assert {(c["row"], c["field"]) for c in out["changed"]} == {
        ("rectification_order", "deadline"), ("enforcement_case", "decision_due"), ("publication", "due_by"),
        ("publication", "withdraw_due")}
    assert sorted(t["bpmn_id"] for t in out["timers"]) == ["deadline_passed", "decision_overdue", "decision_reminder"]
    with db.tx() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deadline_recomputed")).all()
        assert len(events) == 5 and all(e.chain == "system" for e in events)
        order_ev = next(e for e in events if e.detail["row"] == "rectification_order")
        assert day(datetime.fromisoformat(order_ev.detail["old"])) == "2027-01-18"
        assert day(datetime.fromisoformat(order_ev.detail["new"])) == "2027-01-19"
        assert order_ev.detail["reason"] == "calendar year 2027 loaded"
        moved = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == rows["instance"],
                                                   AuditEvent.kind == "timer_rescheduled")).all()
        assert {e.bpmn_id for e in moved} == {"deadline_passed", "decision_overdue", "decision_reminder"}
        assert s.get(RectificationOrder, rows["order"]).history[-1]["event"] == "deadline_recomputed"
        assert s.get(EnforcementCase, rows["case"]).history[-1]["event"] == "deadline_recomputed"
        assert audit.verify(s).ok
    # the same schedule again: nothing changes
    with db.tx() as s:
        again = recompute_stored_deadlines(runtime, s, 2027)
    assert again == {"changed": [], "skipped": [], "timers": []} and _state(db, rows) == after


def test_a_replaced_holiday_set_recomputes_again_through_the_cli(db, runtime, rows, tmp_path, monkeypatch):
    monkeypatch.setenv("REGFLOW_DATABASE_URL", db.url)
    (tmp_path / "2027-v2.yaml").write_text(OTHER_2027, encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(calendar_group, ["load", str(FIXTURE_2027), "--json"])
    assert first.exit_code == 0, first.output
    assert _state(db, rows)["order"] == "2027-01-19"
    second = runner.invoke(calendar_group, ["load", str(tmp_path / "2027-v2.yaml"), "--replace"])
    assert second.exit_code == 0, second.output
    assert "recomputed rectification_order" in second.output
    after = _state(db, rows)
    # 1 and 4 January are holidays now (the lengths are derived on the first version); 春节 12-18 February
    assert after["order"] == "2027-01-20" and after["jobs"]["deadline_passed"] == "2027-01-20"
    assert after["p20"] == "2027-01-19" and after["p10"] == "2027-01-05" and after["withdraw"] == "2027-01-05"
    assert after["case"] == "2027-02-08" and after["reminder"] == "2027-01-29"


def test_rows_that_cannot_be_derived_are_left_alone_and_reported(db, runtime, rows):
    with db.tx() as s:
        o = s.get(RectificationOrder, rows["order"])
        o.history = [*o.history, {"at": at(2027, 1, 5).isoformat(), "event": "moved_by_hand", "deadline": "x"}]
        p = s.get(Publication, rows["p20"])
        p.due_by = at(2027, 1, 16, 23)  # a Saturday: no count of working days ends there
        cal.load_year_file(s, FIXTURE_2027)
        out = recompute_stored_deadlines(runtime, s, 2027)
    assert {(x["row"], x["id"]) for x in out["skipped"]} == {("rectification_order", rows["order"]),
                                                             ("publication", rows["p20"])}
    assert _state(db, rows)["order"] == "2027-01-18"


def test_a_paused_case_clock_is_left_for_its_resumption(db, runtime, rows):
    with db.tx() as s:
        case_clock.pause(s, s.get(EnforcementCase, rows["case"]), "hearing", at(2026, 12, 1), at(2026, 12, 1))
        cal.load_year_file(s, FIXTURE_2027)
        out = recompute_stored_deadlines(runtime, s, 2027)
    assert "enforcement_case" not in {c["row"] for c in out["changed"]}
    assert _state(db, rows)["case"] == "2027-02-08"


def test_derivations_on_a_calendar():
    weekends = cal.WorkdayCalendar({}, [])
    assert workdays_between(weekends, at(2026, 12, 20), at(2027, 1, 15, 23)) == 20
    assert workdays_between(weekends, at(2026, 12, 20), at(2027, 1, 16, 23)) is None
    assert earliest_start(weekends, at(2027, 1, 1, 23), 3).isoformat() == "2026-12-29"
    assert earliest_start(weekends, at(2027, 1, 4, 23), 3).isoformat() == "2026-12-30"  # Thu, Fri, Mon counted
    assert earliest_start(weekends, at(2027, 1, 2, 23), 3) is None



def test_the_library_timers_read_the_rows_recomputed_here():
    """The timers moved here are those of the process library: each BPMN id reads the row field it follows."""
    want = {("rectification.bpmn", "deadline_passed"): 'order["deadline"]',
            ("enforcement.bpmn", "decision_overdue"): 'case["decision_due"]',
            ("enforcement.bpmn", "decision_reminder"): 'case["decision_reminder_at"]'}
    assert set(ORDER_TIMERS) == {"deadline_passed"} and set(CASE_TIMERS) == {"decision_overdue", "decision_reminder"}
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    for (name, bpmn_id), expression in want.items():
        root = etree.parse(str(PROJECT_ROOT / "processes" / name))
        (event,) = root.xpath(f"//bpmn:*[@id='{bpmn_id}']", namespaces=ns)
        (text,) = event.xpath(".//bpmn:timeDate/text()", namespaces=ns)
        assert text.strip() == expression, (name, bpmn_id, text)


def test_move_timers_refuses_naive_times_and_leaves_ended_instances_alone(db, runtime, rows, people):
    with db.tx() as s:
        with pytest.raises(InvalidInput, match="no timezone"):
            runtime.move_timers(s, {rows["instance"]: {"deadline_passed": datetime(2027, 1, 20, 12)}})
        runtime.terminate(s, rows["instance"], "sam", "test")
    with db.tx() as s:
        assert runtime.move_timers(s, {rows["instance"]: {"deadline_passed": at(2027, 1, 20)}}) == []
