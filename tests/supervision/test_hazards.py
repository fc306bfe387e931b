"""Hazard registry, orders, cases and publications as services (no BPMN): idempotency per (instance,
task), recurrence counts, removal rules, holiday roll, one extension, entity closure, masking, the public
feed and withdrawal. (tests/test_schema.py checks the migrations against the models.)"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from engine.errors import InvalidInput
from engine.supervision import calendar as cal
from engine.supervision import enforcement, hazards, publication

SH = cal.SHANGHAI
T0 = datetime(2026, 9, 24, 10, 0, tzinfo=SH)
U = "91350100M000100Y43"
F = [{"item_code": "SC-1", "clause": "C-1", "description": "d"}, {"item_code": "SC-1", "clause": "C-2"}]


@pytest.fixture
def tx(db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
    yield db.tx
    cal.use_calendar(None)


def test_record_is_idempotent_per_task_and_counts_recurrence(tx):
    with tx() as s:
        a = hazards.record_hazards(s, uscc=U, findings=F, grade="medium", instance_id=1, task_key="t1", now=T0)
        again = hazards.record_hazards(s, uscc=U, findings=F, grade="medium", instance_id=1, task_key="t1", now=T0)
        assert [h.id for h in again] == [h.id for h in a] and len(a) == 2
        assert hazards.entity_stats(s, U) == {"uscc": U, "recurrence_count": 1, "hazards_total": 2, "open_hazards": 2}
        hazards.record_hazards(s, uscc=U, findings=F[:1], grade="high", instance_id=2, task_key="t1", now=T0,
                               case_lead=True)
        assert hazards.entity_stats(s, U)["recurrence_count"] == 2
        with pytest.raises(InvalidInput):
            hazards.record_hazards(s, uscc=U, findings=F, grade="severe", instance_id=3, task_key="t", now=T0)
        with pytest.raises(InvalidInput):
            hazards.record_hazards(s, uscc=U, findings=[{"item_code": "x"}], grade="low", instance_id=3,
                                   task_key="t", now=T0)


def test_removal_needs_verification_and_closed_cases(tx):
    with tx() as s:
        (h,) = hazards.record_hazards(s, uscc=U, findings=F[:1], grade="high", instance_id=1, task_key="t",
                                      now=T0, case_lead=True)
        assert hazards.assess(s, [h.id])["needs_case_ids"] == [h.id]
        case = enforcement.open_case(s, uscc=U, lead_source="inspection", hazard_ids=[h.id], instance_id=1,
                                     task_key="c", now=T0)
        assert enforcement.open_case(s, uscc=U, lead_source="inspection", hazard_ids=[h.id], instance_id=1,
                                     task_key="c", now=T0).id == case.id
        assert hazards.assess(s, [h.id])["needs_case_ids"] == []
        with pytest.raises(hazards.RemovalBlocked) as err:
            hazards.remove_hazards(s, [h.id], T0)
        assert {b["reason"] for b in err.value.blocking} == {"rectification_not_verified", "case_open"}
        hazards.verify_rectification(s, [h.id], T0)
        with pytest.raises(hazards.RemovalBlocked) as err:
            hazards.remove_hazards(s, [h.id], T0)
        assert [b["reason"] for b in err.value.blocking] == ["case_open"]
        enforcement.file_case(s, case.id, T0)
        enforcement.decide_case(s, case.id, "minor_no_penalty", T0)
        enforcement.close_case(s, case.id, "no_penalty", T0)
        assert hazards.assess(s, [h.id])["removable"]
        hazards.remove_hazards(s, [h.id], T0)
        hazards.remove_hazards(s, [h.id], T0)  # idempotent
        assert h.status == "removed" and [e["event"] for e in h.history][-1] == "removed"


def test_order_deadline_on_a_holiday_rolls_and_one_extension(tx):
    with tx() as s:
        (h,) = hazards.record_hazards(s, uscc=U, findings=F[:1], grade="low", instance_id=1, task_key="t", now=T0)
        # 7 calendar days after Thu 24 Sep is 1 Oct (National Day): rolled to Thu 8 Oct
        o = hazards.issue_order(s, uscc=U, hazard_ids=[h.id], days=7, kind="days", instance_id=1, task_key="o",
                                now=T0)
        assert o.deadline_day == date(2026, 10, 8) and o.status == "issued"
        assert hazards.issue_order(s, uscc=U, hazard_ids=[h.id], days=7, kind="days", instance_id=1, task_key="o",
                                   now=T0).id == o.id
        hazards.report_rectified(s, o.id, T0 + timedelta(hours=1))
        assert o.rectified_before_service and o.status == "reported"
        hazards.serve_order(s, o.id, T0 + timedelta(days=1))  # served on the Mid-Autumn holiday: 25 Sep + 7 = 2 Oct
        assert o.deadline_day == date(2026, 10, 8) and o.status == "reported"
        hazards.extend_order(s, o.id, 3, T0)
        assert o.extension_used and o.deadline_day == date(2026, 10, 12)  # 11 Oct is Sunday; 12 Oct is Monday
        with pytest.raises(hazards.ExtensionUsed):
            hazards.extend_order(s, o.id, 5, T0)
        hazards.escalate_order(s, o.id, T0)
        assert h.needs_case and o.status == "escalated"
        with pytest.raises(InvalidInput):
            hazards.record_reinspection(s, o.id, "fixed", T0, officers=["alice", "alice"])


def test_close_for_entity_keeps_history_and_counts(tx):
    with tx() as s:
        a, b = hazards.record_hazards(s, uscc=U, findings=F, grade="low", instance_id=1, task_key="t", now=T0)
        hazards.verify_rectification(s, [a.id], T0)
        hazards.remove_hazards(s, [a.id], T0)
        case = enforcement.open_case(s, uscc=U, lead_source="report", hazard_ids=[b.id], instance_id=1,
                                     task_key="c", now=T0)
        out = hazards.close_for_entity(s, U, "status_moved_out", T0)
        assert out["hazards_closed"] == [b.id] and out["cases_terminated"] == [case.id]
        assert (a.status, b.status, b.closed_reason) == ("removed", "closed_other", "status_moved_out")
        assert case.status == "terminated"
        assert hazards.close_for_entity(s, U, "status_moved_out", T0)["hazards_closed"] == []
        assert hazards.entity_stats(s, U)["recurrence_count"] == 1
        assert hazards.assess(s, [a.id, b.id])["finished"]


def test_publication_mask_due_feed_and_withdrawal(tx):
    with tx() as s:
        p = publication.record(s, kind="penalty", title="行政处罚决定", uscc=U, now=T0, publish=True,
                               payload={"entity_name": "某某餐饮有限公司", "legal_representative": "张三丰",
                                        "phone": "13812345678", "note": "联系 13912345678，身份证 350102199001011234",
                                        "fine": 5000},
                               instance_id=9, task_key="p")
        assert p.payload["entity_name"] == "某某餐饮有限公司" and p.payload["legal_representative"] == "张*丰"
        assert p.payload["phone"] == "138****5678" and "139****5678" in p.payload["note"]
        assert "350102********1234" in p.payload["note"] and p.payload["fine"] == 5000
        # 20 working days after Thu 24 Sep 2026 (Mid-Autumn and National Day rest): 29 Oct
        assert p.due_by.astimezone(SH).date() == date(2026, 10, 29)
        assert publication.record(s, kind="penalty", title="x", payload={}, now=T0, instance_id=9,
                                  task_key="p").id == p.id
        later = publication.record(s, kind="result", title="检查结果", uscc=U, payload={"result_code": "result_1"},
                                   now=T0)
        assert later.published_at is None
        assert [x.id for x in publication.overdue(s, T0 + timedelta(days=60))] == [later.id]
        assert [x["id"] for x in publication.public_feed(s)] == [p.id]
        publication.withdraw(s, p.id, "复议撤销原处罚决定", T0 + timedelta(days=5))
        assert p.withdrawn_at is not None and p.withdraw_note == "复议撤销原处罚决定"
        assert p.withdraw_due.astimezone(SH).date() == date(2026, 10, 9)  # 3 working days after 29 Sep
        assert publication.public_feed(s) == []
        with pytest.raises(InvalidInput):
            publication.withdraw(s, later.id, "", T0)
    assert publication.penalty_is_published("penalty", ["warning"]) is False
    assert publication.penalty_is_published("penalty", ["warning", "fine"]) is True
    assert publication.penalty_is_published("minor_no_penalty", None) is False
