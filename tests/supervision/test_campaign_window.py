"""The campaign process launches its inspections when the inspection window opens, so that two departments'
campaigns drawn before then become one joint check through the real processes:
the lead campaign's (lowest id) inspection carries both campaigns' items on one merged checklist, the other
campaign's instance for that entity waits for the lead's published result instead of visiting again."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select

from engine.runtime import clock
from engine.runtime.audit import instance_chain, verify
from engine.runtime.models import AuditEvent, HumanTask, Job, ProcessInstance
from engine.runtime.worker import run_due
from engine.supervision import calendar as cal
from engine.supervision import draw as drawing
from engine.supervision.campaign_models import Campaign
from engine.supervision.draw import drawn_rows
from engine.supervision.inspection import close_campaign, joint_visit_status
from engine.supervision.loop_models import Publication
from engine.supervision.registries import open_assignment_counts
from engine.supervision.registry_models import TeamAssignment
from scoring.models import Entity
from tests.supervision.test_inspection_process import T0, task_data

SH = cal.SHANGHAI
PUBLIC_VALUE = "07 13 21 28 33 + 09"


def _plan(name: str, department: str, item: tuple[str, str, str], district: str, start: date, end: date) -> dict:
    code, item_name, method = item
    return {"name": name, "year": 2026, "lead_department": department, "joint_check": False,
            "joint_departments": "", "items": [{"item_code": code, "item_name": item_name, "department": department,
                                                "method": method}],
            "jurisdiction": district, "window_start": start.isoformat(), "window_end": end.isoformat(),
            "ratio_a": 100, "ratio_b": 100, "ratio_c": 100, "ratio_d": 100, "control_share": 0, "capacity": 1000,
            "lookback_months": 0}


def _complete(runtime, db, iid: int, bpmn_id: str, user: str, data: dict) -> None:
    with clock.frozen(T0), db.tx() as s:
        (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.bpmn_id == bpmn_id,
                                                  HumanTask.status == "open")).all()
        runtime.complete_task(s, ht.id, user, data)


def _run_campaign_to_draw(runtime, db, key: str, plan: dict) -> int:
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "inspection_campaign", business_key=key, actor="planner").instance.id
    _complete(runtime, db, iid, "draft_plan", "planner", plan)
    _complete(runtime, db, iid, "approve", "approver", {
        "decision": "approve", "public_random_value": PUBLIC_VALUE, "public_random_source": "福彩双色球",
        "notice_date": T0.date().isoformat()})
    return iid


def _children(db, parent: int) -> dict[str, int]:
    with db.tx() as s:
        return {i.business_key: i.id for i in s.scalars(select(ProcessInstance).where(
            ProcessInstance.parent_instance_id == parent))}


def _open(db, iid: int) -> list[str]:
    with db.tx() as s:
        return [t.bpmn_id for t in s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                                     HumanTask.status == "open"))]


AMR_OPENS, PRICE_OPENS = date(2026, 3, 9), date(2026, 3, 16)


def _two_campaigns(runtime, db) -> tuple[int, int]:
    """Two departments' campaigns on the same district, drawn before their windows open (amr first)."""
    with db.tx() as s:
        district = s.scalar(select(Entity.district).group_by(Entity.district)
                            .having(func.count() >= 3).order_by(func.count(), Entity.district).limit(1))
    amr = _run_campaign_to_draw(runtime, db, "AMR-W",
                                _plan("年报抽查", "amr", ("AR-01", "年度报告公示信息检查", "documentary"),
                                      district, AMR_OPENS, date(2026, 5, 31)))
    price = _run_campaign_to_draw(runtime, db, "PRICE-W",
                                  _plan("价格抽查", "price", ("PRICE-01", "明码标价检查", "on_site"),
                                        district, PRICE_OPENS, date(2026, 6, 30)))
    return amr, price


def test_two_departments_campaigns_become_one_joint_check_at_the_window(env):
    runtime, db = env
    amr_opens, price_opens = AMR_OPENS, PRICE_OPENS
    amr, price = _two_campaigns(runtime, db)
    # both drew and published their plans, and wait for their windows: nothing is inspected yet
    with db.tx() as s:
        (amr_c,), (price_c,) = (s.scalars(select(Campaign).where(Campaign.code.like(f"%-{i:06d}"))).all()
                                for i in (amr, price))
        assert amr_c.id < price_c.id and {amr_c.status, price_c.status} == {"drawn"}
        drawn = {c.id: {r.uscc for r in drawn_rows(s, c.id)} for c in (amr_c, price_c)}
        timers = {j.instance_id: j.due_at for j in s.scalars(select(Job).where(Job.kind == "timer"))}
    both = drawn[amr_c.id] & drawn[price_c.id]  # the price item targets fewer industries than the annual report
    assert both and drawn[price_c.id] - both == set()
    assert timers == {amr: cal.day_start(amr_opens), price: cal.day_start(price_opens)}
    assert timers[amr] == datetime(2026, 3, 9, tzinfo=SH)
    assert _children(db, amr) == {} and _children(db, price) == {}

    # the amr window opens: its inspections start; the entities both drew get the joint visit
    run_due(runtime, db.factory, now=cal.day_start(amr_opens) - timedelta(minutes=1))
    assert _children(db, amr) == {}
    run_due(runtime, db.factory, now=cal.day_start(amr_opens) + timedelta(minutes=5))
    lead = _children(db, amr)
    assert set(lead) == drawn[amr_c.id] and _children(db, price) == {}
    uscc = sorted(both)[0]
    assert _open(db, lead[uscc]) == ["inspect"]
    with db.tx() as s:
        (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == lead[uscc],
                                                  HumanTask.status == "open")).all()
    data = task_data(runtime, db, ht)
    assert data["joint"]["joint"] and data["joint"]["campaign_ids"] == [amr_c.id, price_c.id]
    assert data["joint"]["departments"] == ["amr", "price"]
    assert {cv["item"] for c in data["merged_checklist"]["clauses"] for cv in c["covers"]} == {"AR-01", "PRICE-01"}

    # the price window opens a week later: its instances for the shared entities wait for the lead's visit
    run_due(runtime, db.factory, now=cal.day_start(price_opens) + timedelta(minutes=5))
    joining = _children(db, price)
    assert set(joining) == drawn[price_c.id]
    for u in both:
        assert _open(db, joining[u]) == [], u  # no second visit: it waits for the lead's published result
    with db.tx() as s:
        waits = s.scalar(select(func.count()).select_from(Job).where(Job.instance_id == joining[uscc],
                                                                     Job.kind == "timer"))
        assert waits == 1
        inspect_tasks = s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.bpmn_id == "inspect", HumanTask.status == "open",
            HumanTask.instance_id.in_(list(joining.values()))))
    assert inspect_tasks == len(drawn[price_c.id] - both)


def _both_windows_open(runtime, db) -> tuple[dict[str, int], dict[str, int]]:
    """Both campaigns drawn, both windows open: the lead (amr) campaign's and the joining (price) campaign's
    inspections by USCC."""
    amr, price = _two_campaigns(runtime, db)
    run_due(runtime, db.factory, now=cal.day_start(AMR_OPENS) + timedelta(minutes=5))
    run_due(runtime, db.factory, now=cal.day_start(PRICE_OPENS) + timedelta(minutes=5))
    return _children(db, amr), _children(db, price)


def test_joining_instance_ends_when_the_lead_closes_a_deregistered_entity(env):
    """The entity ceases to exist while the joint visit is pending: the lead campaign's inspection catches
    ``entity_deregistered`` (only it subscribes: the joining instance waits on a timer) and publishes the
    result for the reason; the joining instance's next daily check finds that result and ends."""
    runtime, db = env
    lead, joining = _both_windows_open(runtime, db)
    uscc = sorted(set(lead) & set(joining))[0]
    assert _open(db, lead[uscc]) == ["inspect"] and _open(db, joining[uscc]) == []
    gone_at = cal.day_start(PRICE_OPENS) + timedelta(hours=10)
    with clock.frozen(gone_at), db.tx() as s:
        runtime.correlate_message(s, "entity_deregistered", {"reason": "status_deregistered"}, {"uscc": uscc})
    with db.tx() as s:
        assert s.get(ProcessInstance, lead[uscc]).status == "completed"
        assert s.get(ProcessInstance, joining[uscc]).status == "running"
        (pub,) = s.scalars(select(Publication).where(Publication.source_instance_id == lead[uscc],
                                                     Publication.kind == "result")).all()
        assert pub.payload["result_code"] == "result_9"
    run_due(runtime, db.factory, now=gone_at + timedelta(days=1, hours=1))
    with db.tx() as s:
        joined = s.get(ProcessInstance, joining[uscc])
        assert joined.status == "completed"
        assert s.scalar(select(func.count()).select_from(Job).where(Job.instance_id == joined.id)) == 0
        wf = runtime.load_workflow(s, joined.id)
    (end,) = [t for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id == "end_joined"]
    assert end.data["joint_visit"]["done"] and end.data["joint_visit"]["result_code"] == "result_9"


def runtime_audit_ok(db, iid: int) -> bool:
    with db.tx() as s:
        return verify(s, instance_chain(iid)).ok


def _joint_visit_of(runtime, db, iid: int) -> dict:
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
    (status,) = [t for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id == "joint_status"][-1:]
    return status.data["joint_visit"]


def test_joining_instance_visits_itself_when_the_lead_inspection_is_terminated(env):
    """An administrator terminates the lead campaign's inspection of a shared entity before the visit: it will
    never publish a result. The joining instance's next daily check sees that the lead's inspection ended
    without one and visits the entity itself (its merged checklist already covers every campaign's items),
    instead of checking every day for ever."""
    runtime, db = env
    lead, joining = _both_windows_open(runtime, db)
    uscc = sorted(set(lead) & set(joining))[0]
    other = sorted(set(lead) & set(joining))[1]
    assert _open(db, lead[uscc]) == ["inspect"] and _open(db, joining[uscc]) == []
    # a check while the lead is still open: keep waiting
    run_due(runtime, db.factory, now=cal.day_start(PRICE_OPENS) + timedelta(days=1, hours=1))
    assert _open(db, joining[uscc]) == [] and _joint_visit_of(runtime, db, joining[uscc]) == {
        "done": False, "lead_ended": False, "lead_campaign_id": _joint_visit_of(runtime, db, joining[uscc])[
            "lead_campaign_id"]}
    with db.tx() as s:
        team_of_lead = {a.inspector_id for a in s.scalars(select(TeamAssignment).where(
            TeamAssignment.instance_id == lead[uscc], TeamAssignment.released_at.is_(None)))}
        load_before = open_assignment_counts(s)
    assert len(team_of_lead) >= 2
    with clock.frozen(cal.day_start(PRICE_OPENS) + timedelta(days=1, hours=3)), db.tx() as s:
        runtime.terminate(s, lead[uscc], "head", "opened in error")
    # the terminated inspection's team is released (its officers' workload drops), and the audit says so
    with db.tx() as s:
        released = s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == lead[uscc])).all()
        assert released and all(a.released_at is not None for a in released)
        assert {a.release_reason for a in released} == {"instance terminated: opened in error"}
        load_after = open_assignment_counts(s)
        assert all(load_after.get(i, 0) == load_before[i] - 1 for i in team_of_lead)
        (cleanup,) = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == lead[uscc],
                                                        AuditEvent.kind == "termination_cleanup")).all()
        assert cleanup.detail["assignments_released"] == len(released) and cleanup.actor == "head"
    assert runtime_audit_ok(db, lead[uscc])
    run_due(runtime, db.factory, now=cal.day_start(PRICE_OPENS) + timedelta(days=2, hours=1))
    assert _open(db, joining[uscc]) == ["inspect"]  # it visits: one visit after all
    visit = _joint_visit_of(runtime, db, joining[uscc])
    assert visit["lead_ended"] and not visit["done"] and visit["lead_instance_id"] == lead[uscc]
    assert visit["lead_status"] == "terminated" and f"instance {lead[uscc]}" in visit["reason"]
    with db.tx() as s:
        (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == joining[uscc],
                                                  HumanTask.status == "open")).all()
        assert s.scalar(select(func.count()).select_from(Job).where(Job.instance_id == joining[uscc],
                                                                     Job.kind == "timer")) == 0
    data = task_data(runtime, db, ht)
    assert {cv["item"] for c in data["merged_checklist"]["clauses"] for cv in c["covers"]} == {"AR-01", "PRICE-01"}
    assert data["team"]["members"], "a team was drawn for the visit"
    # the other shared entity's lead is untouched: its joining instance still waits
    assert _open(db, lead[other]) == ["inspect"] and _open(db, joining[other]) == []


def test_joining_instance_visits_itself_when_the_lead_campaign_ended_before_its_window(env):
    """The lead campaign's instance is terminated after its draw, before its window opened: it never launched
    its inspections. The joining campaign's instances for the shared entities wait one day, find the lead
    campaign ended without inspecting them, and visit themselves."""
    runtime, db = env
    amr, price = _two_campaigns(runtime, db)
    with clock.frozen(cal.day_start(AMR_OPENS) - timedelta(days=1)), db.tx() as s:
        runtime.terminate(s, amr, "head", "plan withdrawn")
    run_due(runtime, db.factory, now=cal.day_start(AMR_OPENS) + timedelta(minutes=5))
    assert _children(db, amr) == {}
    run_due(runtime, db.factory, now=cal.day_start(PRICE_OPENS) + timedelta(minutes=5))
    joining = _children(db, price)
    waiting = [u for u, i in joining.items() if _open(db, i) == []]
    assert waiting, "the shared entities wait for the (ended) lead first"
    run_due(runtime, db.factory, now=cal.day_start(PRICE_OPENS) + timedelta(days=1, hours=1))
    for u in waiting:
        assert _open(db, joining[u]) == ["inspect"], u
    visit = _joint_visit_of(runtime, db, joining[waiting[0]])
    assert visit["lead_ended"] and visit["lead_instance_id"] is None and visit["lead_status"] == "terminated"
    assert f"instance {amr}" in visit["reason"]


def test_window_already_open_launches_at_once(env):
    runtime, db = env
    with db.tx() as s:
        district = s.scalar(select(Entity.district).group_by(Entity.district)
                            .having(func.count() >= 3).order_by(func.count(), Entity.district).limit(1))
    iid = _run_campaign_to_draw(runtime, db, "AMR-NOW",
                                _plan("年报抽查", "amr", ("AR-01", "年度报告公示信息检查", "documentary"),
                                      district, T0.date(), date(2026, 5, 31)))
    # the approver's step launched nothing: it stopped at the launch (async = before) with one continue job due now
    assert _children(db, iid) == {}
    with db.tx() as s:
        jobs = s.execute(select(Job.kind, Job.bpmn_id, Job.due_at).where(Job.instance_id == iid)).all()
        assert [tuple(j) for j in jobs] == [("continue", "launch", T0)]
        events = s.execute(select(AuditEvent.kind, AuditEvent.bpmn_id, AuditEvent.actor).where(
            AuditEvent.chain == instance_chain(iid)).order_by(AuditEvent.seq)).all()
        assert tuple(events[-1]) == ("async_continuation_queued", "launch", "approver")
        assert ("element_completed", "launch") not in [(k, b) for k, b, _a in events]
    report = run_due(runtime, db.factory, now=T0)  # a worker launches them, at once
    assert report.continuations_run == 1 and not report.failures
    children = _children(db, iid)
    assert children and all(_open(db, c) for c in children.values())
    with db.tx() as s:
        assert s.scalars(select(Job.due_at).where(Job.instance_id == iid)).all() == [
            T0 + timedelta(days=1)]  # only the daily progress check (a timer)
        chain = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == instance_chain(iid))
                               .order_by(AuditEvent.seq)))
        started = next(i for i, e in enumerate(chain) if e.kind == "async_continuation_started")
        assert chain[started].actor == "worker" and chain[started].bpmn_id == "launch"
        assert any(e.kind == "element_completed" and e.bpmn_id == "launch" and e.actor == "worker"
                   for e in chain[started:])
        assert verify(s).ok


def test_a_lead_campaign_run_outside_the_process_ends_the_wait_when_it_closes(env):
    """A lead campaign created and run from the CLI publishes no plan from a process instance, so nothing tells
    which inspection is its visit: the joining instance keeps waiting while the campaign runs, and visits
    itself once the campaign is closed without a result for the entity."""
    _runtime, db = env
    uscc = "91410105341672112H"
    with db.tx() as s:
        lead = drawing.create_campaign(s, code="CLI-LEAD", name="命令行发起的抽查", departments=["amr"],
                                       items=["AR-01"], window_start=date(2026, 3, 2), window_end=date(2026, 5, 29),
                                       created_by="planner", now=datetime(2026, 3, 1, tzinfo=SH)).id
    with db.tx() as s:
        assert joint_visit_status(s, uscc=uscc, lead_campaign_id=lead) == {
            "done": False, "lead_ended": False, "lead_campaign_id": lead}
        close_campaign(s, lead)
    with db.tx() as s:
        visit = joint_visit_status(s, uscc=uscc, lead_campaign_id=lead)
    assert visit["lead_ended"] and not visit["done"] and visit["lead_status"] == "closed"
    assert visit["lead_instance_id"] is None and "closed without a published result" in visit["reason"]
