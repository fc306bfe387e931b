"""Edge cases through ``entity_inspection`` on the real engine (SQLite and PostgreSQL):

* the entity ceases to exist while its inspection (or the supervisor's review of it) is open: the instance
  ends, the result code for the reason is recorded and published, the team released, the entity's
  hazards closed with the reason; an entity that moved out (result_12) is first transferred to the new
  jurisdiction (移送, with its receipt);
* an entity drawn by two departments' campaigns with overlapping windows: one joint check — one
  inspection task with one merged checklist of both campaigns' items; the joining campaign's instance
  waits for the lead's published result instead of visiting again.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Job, ProcessInstance
from engine.runtime.worker import run_due
from engine.supervision import draw as drawing
from engine.supervision import hazards, inspection
from engine.supervision.loop_models import Hazard, Publication
from engine.supervision.registry_models import TeamAssignment
from scoring.models import Entity
from tests.supervision.test_inspection_process import T0, entity_of_class, inspect, open_tasks, start, task_data
from tests.supervision.test_result_codes import end_events, receipt, transfer_sent

AT = T0 + timedelta(days=2)


def deregistered(runtime, db, uscc: str, reason: str):
    with clock.frozen(AT), db.tx() as s:
        return runtime.correlate_message(s, "entity_deregistered", {"reason": reason}, {"uscc": uscc})


def assert_closed_for(runtime, db, iid: int, uscc: str, code: str, end: str = "end") -> None:
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.status == "completed"
        assert s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == iid, HumanTask.status == "open")) == 0
        assert s.scalar(select(func.count()).select_from(Job).where(Job.instance_id == iid)) == 0
        (pub,) = s.scalars(select(Publication).where(Publication.source_instance_id == iid,
                                                     Publication.kind == "result")).all()
        assert (pub.uscc, pub.payload["result_code"], pub.payload["outcome"]) == (uscc, code, "close")
        assert pub.published_at is not None
        team = s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid)).all()
        assert team and all(a.released_at is not None for a in team)
        assert s.scalars(select(Hazard).where(Hazard.source_instance_id == iid)).all() == []
    assert end_events(runtime, db, iid) == [end]


def test_entity_ceases_to_exist_mid_inspection_and_mid_review(env):
    runtime, db = env
    # 1. waiting for the inspection; the entity has an open hazard from an earlier (finished) inspection
    e = entity_of_class(db, ["A", "B"])
    with clock.frozen(T0), db.tx() as s:
        (old,) = hazards.record_hazards(s, uscc=e.uscc, findings=[{"item_code": "AR-01", "clause": "AR-01-1",
                                                                   "description": "年报未公示"}],
                                        grade="low", instance_id=999_999, task_key="earlier", now=T0,
                                        entity_id=e.id)
        old_id = old.id
    iid = start(runtime, db, e)
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["inspect"]
    deregistered(runtime, db, e.uscc, "status_moved_out")
    # moved out (result_12): the new jurisdiction is notified by a transfer, with its receipt
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "prepare_transfer"
    assert task_data(runtime, db, ht)["reason"] == "市场主体已迁出本辖区，通知迁入地市场监管部门（result_12）"
    row = transfer_sent(runtime, db, iid, "郑州市二七区市场监督管理局", at=AT)
    assert (row.kind, row.uscc) == ("new_jurisdiction", e.uscc)
    assert row.facts == "市场主体已迁出本辖区，通知迁入地市场监管部门"
    receipt(runtime, db, row, True, AT + timedelta(days=1))
    assert_closed_for(runtime, db, iid, e.uscc, "result_12", end="end_transferred")
    with db.tx() as s:
        h = s.get(Hazard, old_id)
        assert (h.status, h.closed_reason) == ("closed_other", "status_moved_out")
        assert h.history[-1]["event"] == "closed_other"
        wf = runtime.load_workflow(s, iid)
        assert {t.data.get("gone_reason") for t in wf.get_tasks() if "gone_reason" in t.data} == {"status_moved_out"}

    # 2. heavy path: the problem was found, the supervisor's review is open -> no rectification starts
    e2 = entity_of_class(db, ["C", "D"])
    iid2 = start(runtime, db, e2)
    inspect(runtime, db, iid2, problem=True)
    assert [t.bpmn_id for t in open_tasks(db, iid2)] == ["review"]
    deregistered(runtime, db, e2.uscc, "status_revoked")
    assert_closed_for(runtime, db, iid2, e2.uscc, "result_10")
    with db.tx() as s:
        assert s.get(Entity, e2.id).abnormal_list is False
        assert audit.verify(s).ok


def test_entity_in_two_departments_campaigns_gets_one_joint_check(env):
    runtime, db = env
    # a district with a handful of entities; both departments draw every eligible entity in it
    with db.tx() as s:
        district = s.scalar(select(Entity.district).group_by(Entity.district)
                            .having(func.count() >= 3).order_by(func.count(), Entity.district).limit(1))
    everyone = {"A": "1", "B": "1", "C": "1", "D": "1"}
    campaigns = []
    with clock.frozen(T0), db.tx() as s:
        for code, dept, item, start_day, end_day in (("AMR-2026", "amr", "AR-01", date(2026, 3, 2), date(2026, 5, 31)),
                                                     ("PRICE-2026", "price", "PRICE-01", date(2026, 3, 9),
                                                      date(2026, 6, 30))):
            c = drawing.create_campaign(s, code=code, name=code, departments=[dept], items=[item],
                                        window_start=start_day, window_end=end_day, created_by="planner", now=T0,
                                        ratios=everyone, control_share="0", jurisdiction=[district],
                                        lookback_months=0)
            drawing.approve_campaign(s, c.id, approver="approver", now=T0, public_value="07 13 21 28 33 + 09")
            drawing.draw_campaign(s, c.id, T0)
            campaigns.append(c.id)
        # the campaigns' own instances (parents of their inspections), waiting at their plan task
        parents = [runtime.start(s, "inspection_campaign", business_key=f"JOINT-{i}", actor="planner").instance.id
                   for i in range(2)]
    with clock.frozen(T0), db.tx() as s:
        drawn = [{r.uscc for r in drawing.drawn_rows(s, cid)} for cid in campaigns]
        both = drawn[0] & drawn[1]  # the price item targets fewer industries than the annual-report item
        assert both
        for cid, parent in zip(campaigns, parents):  # what campaign.launch_inspections does
            inspection.launch_inspections(s, cid, parent_instance_id=parent, now=T0, runtime=runtime)
    with db.tx() as s:
        children = {p: {i.business_key: i.id for i in s.scalars(select(ProcessInstance).where(
            ProcessInstance.parent_instance_id == p))} for p in parents}
        tasks = list(s.scalars(select(HumanTask).where(HumanTask.status == "open",
                                                       HumanTask.bpmn_id == "inspect")))
    lead, joining = children[parents[0]], children[parents[1]]
    assert (set(lead), set(joining)) == (drawn[0], drawn[1])
    # one inspection per entity: the lead campaign's instance visits the entities both campaigns drew
    assert sorted(t.instance_id for t in tasks) == sorted(
        list(lead.values()) + [i for u, i in joining.items() if u not in both])
    uscc = sorted(both)[0]
    (ht,) = [t for t in tasks if t.instance_id == lead[uscc]]
    data = inspect(runtime, db, lead[uscc], problem=False)
    assert data["joint"]["joint"] and data["joint"]["campaign_ids"] == campaigns
    assert data["joint"]["departments"] == ["amr", "price"]
    assert {cv["item"] for c in data["merged_checklist"]["clauses"] for cv in c["covers"]} == {"AR-01", "PRICE-01"}
    with db.tx() as s:
        assert s.get(ProcessInstance, lead[uscc]).status == "completed"
        assert s.get(ProcessInstance, joining[uscc]).status == "running"  # waits for the lead's result
        (pub,) = s.scalars(select(Publication).where(Publication.uscc == uscc, Publication.kind == "result")).all()
        assert pub.payload["joint_campaign_ids"] == campaigns
        assert s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == joining[uscc])).all() == []
    # the joining instance checks daily: the visited entity's ends, the others keep waiting
    run_due(runtime, db.factory, now=T0 + timedelta(days=1, hours=1))
    with db.tx() as s:
        status = {k: s.get(ProcessInstance, i).status for k, i in joining.items() if k in both}
    assert status.pop(uscc) == "completed" and set(status.values()) <= {"running"}
    assert end_events(runtime, db, joining[uscc]) == ["end_joined"]
    with db.tx() as s:
        wf = runtime.load_workflow(s, joining[uscc])
        visit = next(t.data["joint_visit"] for t in wf.get_tasks() if "joint_visit" in t.data)
        assert visit["done"] and visit["result_code"] == "result_1" and visit["lead_campaign_id"] == campaigns[0]
        assert audit.verify(s).ok
