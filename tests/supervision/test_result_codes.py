"""Every result code of the inspection driven through ``entity_inspection`` on the real
engine, on SQLite and PostgreSQL: where each branch goes (end, rectification, enforcement case, a wait for the
entity to publicise or to sign a registered letter, a transfer to another authority for result_5, result_G and
result_12), its registry consequence (abnormal list: result_C at once, result_B and result_6 when the wait runs out;
never for a suspended entity's result_6) and the published result."""
from __future__ import annotations

import random
from datetime import timedelta

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update

from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Job, MessageSubscription, ProcessInstance
from engine.runtime.worker import run_due
from engine.simulation import GROUP_USER, Officers
from engine.supervision import dashboard
from engine.supervision.calendar import legal_days
from engine.supervision.inspection import PROBLEM_CODES, RESULT_OUTCOMES, TRANSFER_OF_RESULT, VIOLATION_CODES
from engine.supervision.loop_models import EnforcementCase, Hazard, Publication
from engine.supervision.registry_models import TeamAssignment
from engine.supervision.transfer_models import Transfer
from scoring.models import Entity
from tests.supervision.test_inspection_process import T0, open_tasks, start, task_data

SH = T0.tzinfo
AT = T0 + timedelta(days=1)


def inspection_form(code: str, data: dict) -> dict:
    """What the team leader enters for ``code`` (the inspection_result form's rules per code)."""
    clauses = [c["code"] for c in data["merged_checklist"]["clauses"]]
    form = {"inspection_date": AT.date().isoformat(), "method": data["method"], "credentials_shown": True,
            "party_signed": code != "result_8", "result_code": code}
    outcome = RESULT_OUTCOMES[code]
    if code in ("result_6", "result_8"):
        return form | {"contact_attempts": "两次上门未见经营者" if code == "result_6" else "拒绝提供账簿"}
    if outcome == "close":
        return form
    form["checklist"] = {c: {"result": "compliant"} for c in clauses}
    if code != "result_1":
        form["checklist"][clauses[0]] = {"result": "non_compliant", "note": "不符合要求"}
    if outcome in ("problem", "transfer"):
        form["findings"] = [{"item_code": data["merged_checklist"]["clauses"][0]["covers"][0]["item"],
                             "clause": clauses[0], "description": "检查发现问题", "hazard_grade": "medium"}]
    return form


def end_events(runtime, db, iid: int) -> list[str]:
    """The end events the instance's own process reached."""
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
    return sorted(t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED)
                  if t.workflow is wf and type(t.task_spec).__name__ == "EndEvent")


def inspected(runtime, db, entity: Entity, code: str, stratum: str | None = None) -> int:
    if stratum is None:
        iid = start(runtime, db, entity, workload_cap=60)
    else:  # drawn in a stratum: the result counts in the hit rates
        data = {"uscc": entity.uscc, "entity_id": entity.id, "campaign_id": None, "items": ["AR-01", "PRICE-01"],
                "stratum": stratum, "campaign_seed": "", "workload_cap": 60}
        with clock.frozen(T0), db.tx() as s:
            iid = runtime.start(s, "entity_inspection", business_key=entity.uscc, data=data).instance.id
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "inspect"
    data = task_data(runtime, db, ht)
    assert data["path"] == "standard"  # class A/B: no supervisor review between the result and its branch
    with clock.frozen(AT), db.tx() as s:
        runtime.complete_task(s, ht.id, ht.assignee, inspection_form(code, data))
    return iid


def work_off(runtime, db, iid: int, days: int = 60) -> None:
    """The simulated office completes whatever the instance asks for until it has ended."""
    officers = Officers(runtime, db.factory, {}, random.Random(3))
    now = AT
    for _ in range(days):
        for ht in open_tasks(db, iid):
            with clock.frozen(now), db.tx() as s:
                inst = s.get(ProcessInstance, iid)
                wf = runtime.load_workflow(s, iid)
                wfdata = dict(next(t for t in wf.get_tasks() if str(t.id) == ht.task_guid).data)
                form = officers.data_for(ht, inst, wfdata, now.astimezone(SH).date())
                if ht.bpmn_id == "verify_lead":  # the ordinary procedure: no penalty proposed on the spot
                    form = {k: v for k, v in form.items()
                            if k not in ("facts_clear", "legal_basis", "proposed_penalties", "proposed_fine")}
                if ht.bpmn_id == "investigate":
                    form |= {"conclusion": "penalty", "proposed_penalties": ["fine"], "proposed_fine": 5000}
                user = ht.assignee or GROUP_USER[(ht.candidate_groups or ["officers"])[0]]
                runtime.complete_task(s, ht.id, user, form)
        with db.tx() as s:
            if s.get(ProcessInstance, iid).status != "running":
                return
        now += timedelta(days=1)
        run_due(runtime, db.factory, now=now)


def test_every_result_code_takes_its_branch(env):
    runtime, db = env
    with db.tx() as s:
        pool = list(s.scalars(select(Entity).where(Entity.risk_class.in_(["A", "B"]), Entity.status == "active",
                                                   Entity.abnormal_list.is_(False)).order_by(Entity.id).limit(20)))
    codes = list(RESULT_OUTCOMES)
    entity_of = dict(zip(codes, pool))
    suspended = pool[len(codes)]
    with db.tx() as s:
        s.execute(update(Entity).where(Entity.id == suspended.id).values(status="suspended"))
    iids = {code: inspected(runtime, db, entity_of[code], code) for code in codes}
    iids["result_6 suspended"] = inspected(runtime, db, suspended, "result_6")

    for label, iid in iids.items():
        code = label.split()[0]
        outcome = RESULT_OUTCOMES[code]
        with db.tx() as s:
            inst = s.get(ProcessInstance, iid)
            (pub,) = s.scalars(select(Publication).where(Publication.source_instance_id == iid,
                                                         Publication.kind == "result")).all()
            assert pub.payload["result_code"] == code and pub.published_at is not None, label
            team = s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid)).all()
            assert team and all(a.released_at is not None for a in team), label
            entity = s.scalars(select(Entity).where(Entity.uscc == inst.business_key)).one()
            tasks = [t.bpmn_id for t in s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                                         HumanTask.status == "open"))]
            hazards = s.scalars(select(Hazard).where(Hazard.source_instance_id == iid)).all()
            cases = s.scalars(select(EnforcementCase).where(EnforcementCase.instance_id == iid)).all()
            transfers = s.scalars(select(Transfer).where(Transfer.instance_id == iid)).all()
        assert pub.payload["outcome"] == outcome, label
        if code in TRANSFER_OF_RESULT:  # -> the transfer call activity: the officer writes the letter; not ours
            assert inst.status == "running" and tasks == ["prepare_transfer"], label
            assert not hazards and not cases, label
            assert [(x.kind, x.status, x.uscc) for x in transfers] == [
                (TRANSFER_OF_RESULT[code], "preparing", inst.business_key)], label
        elif outcome == "problem":  # -> hazard registry and rectification (call activity)
            assert inst.status == "running" and tasks == ["serve_order"], label
            assert [h.status for h in hazards] == ["open"] and not cases, label
        elif outcome == "uncooperative":  # -> an enforcement case directly, no hazard entry
            assert inst.status == "running" and tasks == ["verify_lead"], label
            assert not hazards and [(c.status, c.lead_source) for c in cases] == [("lead", "inspection")], label
        elif outcome == "order_to_publicise":  # -> waits 10 days for the entity to publicise
            assert inst.status == "running" and tasks == [] and not hazards and not cases, label
            with db.tx() as s:
                subs = s.scalars(select(MessageSubscription.message_name)
                                 .where(MessageSubscription.instance_id == iid)).all()
            assert "information_publicised" in subs, label
        elif label == "result_6":  # -> registered letter to the registered address: waits 30 days for a signature
            assert inst.status == "running" and tasks == [] and not hazards and not cases, label
            with db.tx() as s:
                subs = s.scalars(select(MessageSubscription.message_name)
                                 .where(MessageSubscription.instance_id == iid)).all()
                jobs = s.scalars(select(Job.kind).where(Job.instance_id == iid)).all()
            assert "registered_letter_signed" in subs and jobs == ["timer"], label
        else:  # no problem, abnormal list, close, a suspended entity's result_6: the inspection ends
            assert inst.status == "completed" and tasks == [] and not hazards and not cases, label
            assert end_events(runtime, db, iid) == ["end"], label
        on_list = label == "result_C"  # result_6 only once the letter goes unsigned; never a suspended entity
        assert entity.abnormal_list is on_list, label

    # result_8 end to end: the case runs to its close, then the inspection ends at "Case closed"
    iid = iids["result_8"]
    work_off(runtime, db, iid)
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        (case,) = s.scalars(select(EnforcementCase).where(EnforcementCase.instance_id == iid)).all()
        assert case.status == "closed" and case.case_number
    assert end_events(runtime, db, iid) == ["end_case"]


def transfer_sent(runtime, db, iid: int, receiving: str, at=AT) -> Transfer:
    """The officer writes the transfer letter (the transfer call activity's first task) and it is sent."""
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "prepare_transfer" and ht.form_id == "transfer_prepare"
    data = task_data(runtime, db, ht)
    with clock.frozen(at), db.tx() as s:
        runtime.complete_task(s, ht.id, "officer", {"receiving": receiving, "facts": data["facts"],
                                                    "materials": [{"title": "现场检查笔录"}, {"title": "现场照片"}]})
    with db.tx() as s:
        row = s.scalar(select(Transfer).where(Transfer.instance_id == iid))
        s.expunge(row)
    assert (row.status, row.receiving, row.facts) == ("sent", receiving, data["facts"])
    return row


def receipt(runtime, db, row: Transfer, accepted: bool, day) -> None:
    """The receiving authority's receipt, as its system sends it (message correlated by transfer_id)."""
    with clock.frozen(day + timedelta(hours=2)), db.tx() as s:
        runtime.correlate_message(s, "transfer_receipt", {
            "received_on": day.date().isoformat(), "received_by": "王五", "reference": f"受〔2026〕{row.id}号",
            "accepted": accepted, "refusal_reason": None if accepted else "不属于本机关管辖"},
            {"transfer_id": row.id})


def test_results_5_and_G_are_transferred_to_the_end_and_count_as_problems_found(env):
    """result_5 goes to another department, result_G to the police (the transfer call activity, with the findings
    as the matter), never to our own rectification: no hazard entry, no order. The department's receipt (message
    transfer_receipt, correlated by transfer_id) ends the inspection at "Transferred"; the police refuse theirs, the
    officer decides we handle it ourselves, and the findings go to our hazard registry and rectification, to its
    end. Both stay in the hit rate's numerator (a problem was found); a result_1 beside them does not."""
    runtime, db = env
    with db.tx() as s:
        e5, eg, e1 = s.scalars(select(Entity).where(
            Entity.risk_class.in_(["A", "B"]), Entity.status == "active", Entity.abnormal_list.is_(False))
            .order_by(Entity.id.desc()).limit(3)).all()
    iid5 = inspected(runtime, db, e5, "result_5", stratum=e5.risk_class)
    iidg = inspected(runtime, db, eg, "result_G", stratum=eg.risk_class)
    iid1 = inspected(runtime, db, e1, "result_1", stratum=e1.risk_class)
    assert end_events(runtime, db, iid1) == ["end"]

    (ht,) = open_tasks(db, iid5)
    data = task_data(runtime, db, ht)
    # the matter as the result gave it: the kind, the receiving authority by the result, the findings as the facts
    assert (data["kind"], data["receiving"]) == ("other_department", "其他行政部门")
    assert data["reason"].startswith("检查发现涉嫌属其他行政部门管辖的违法行为（result_5）：")
    assert "检查发现问题" in data["reason"]
    assert "检查发现问题" in data["facts"]
    assert task_data(runtime, db, open_tasks(db, iidg)[0])["receiving"] == "公安机关"
    row5 = transfer_sent(runtime, db, iid5, "郑州市金水区卫生健康委员会")
    rowg = transfer_sent(runtime, db, iidg, "郑州市公安局金水分局")
    assert (row5.kind, rowg.kind) == ("other_department", "police")

    receipt(runtime, db, row5, True, AT + timedelta(days=2))
    assert end_events(runtime, db, iid5) == ["end_transferred"]
    with db.tx() as s:
        assert s.get(ProcessInstance, iid5).status == "completed"
        assert s.scalars(select(Job).where(Job.instance_id == iid5)).all() == []
        assert (s.get(Transfer, row5.id).status, s.get(Transfer, row5.id).outcome) == ("received", "accepted")
        assert s.scalars(select(Hazard).where(Hazard.source_instance_id.in_([iid5, iidg]))).all() == []

    receipt(runtime, db, rowg, False, AT + timedelta(days=3))
    (ht,) = open_tasks(db, iidg)
    assert ht.bpmn_id == "handle_refusal"
    with clock.frozen(AT + timedelta(days=4)), db.tx() as s:
        runtime.complete_task(s, ht.id, "officer", {"outcome": "handled_ourselves", "note": "转由本局依法处理"})
    assert [t.bpmn_id for t in open_tasks(db, iidg)] == ["serve_order"]  # our own rectification now
    with db.tx() as s:
        assert [h.status for h in s.scalars(select(Hazard).where(Hazard.source_instance_id == iidg))] == ["open"]
        assert (s.get(Transfer, rowg.id).status, s.get(Transfer, rowg.id).outcome) == ("closed", "handled_ourselves")
    work_off(runtime, db, iidg)
    assert end_events(runtime, db, iidg) == ["end_problem"]
    with db.tx() as s:
        assert s.get(ProcessInstance, iidg).status == "completed"
        assert [h.status for h in s.scalars(select(Hazard).where(Hazard.source_instance_id == iidg))] == ["removed"]
        rates = dashboard.hit_rates(s)
        assert audit.verify(s).ok
    assert (rates.risk_drawn.n, rates.risk_drawn.hits) == (3, 2)
    assert {"result_5", "result_G"} <= set(PROBLEM_CODES) <= set(VIOLATION_CODES)


def listed_when_the_deadline_passes(runtime, db, iid: int, entity_id: int, due, end: str) -> None:
    """A minute before ``due`` the instance still waits and the entity is not listed; a minute after, the
    timer has ended the instance at ``end`` and the entity is on the abnormal operations list."""
    run_due(runtime, db.factory, now=due - timedelta(minutes=1))  # not yet
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "running"
        assert s.get(Entity, entity_id).abnormal_list is False
    run_due(runtime, db.factory, now=due + timedelta(minutes=1))
    assert end_events(runtime, db, iid) == [end]
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        assert s.get(Entity, entity_id).abnormal_list is True


def test_order_to_publicise_complied_or_missed(env):
    """Result B: the order to publicise gives 10 days (calendar days, a last day on a holiday moves to the next
    working day); the entity that publicises (message, correlated by USCC) ends the inspection there, the one
    that does not is put on the abnormal operations list when the timer fires."""
    runtime, db = env
    with db.tx() as s:
        complies, misses = s.scalars(select(Entity).where(
            Entity.risk_class.in_(["A", "B"]), Entity.status == "active", Entity.abnormal_list.is_(False))
            .order_by(Entity.id.desc()).limit(2)).all()
    ok_iid = inspected(runtime, db, complies, "result_B")
    late_iid = inspected(runtime, db, misses, "result_B")
    with db.tx() as s:
        (due,) = s.scalars(select(Job.due_at).where(Job.instance_id == late_iid, Job.kind == "timer")).all()
    with clock.frozen(AT):
        assert due == legal_days(10, AT.date().isoformat())
    assert due.astimezone(SH).date() >= AT.date() + timedelta(days=10)

    with clock.frozen(AT + timedelta(days=3)), db.tx() as s:
        runtime.correlate_message(s, "information_publicised", {"publicised_on": "2026-03-09"},
                                  {"uscc": complies.uscc})
    assert end_events(runtime, db, ok_iid) == ["end_publicised"]

    listed_when_the_deadline_passes(runtime, db, late_iid, misses.id, due, "end_abnormal")
    with db.tx() as s:
        assert s.get(Entity, complies.id).abnormal_list is False


def test_unreachable_entity_registered_letter_signed_or_unsigned(env):
    """Result 6: a registered letter to the registered address; signed (message registered_letter_signed,
    correlated by USCC) before the deadline -> contact restored, not listed; unsigned 30 days after the
    inspection (legal_days: calendar days, a last day on a holiday moves on) -> abnormal operations list.
    A suspended entity has a service address: no letter, no wait, not listed."""
    runtime, db = env
    with db.tx() as s:
        signs, never, suspended = s.scalars(select(Entity).where(
            Entity.risk_class.in_(["A", "B"]), Entity.status == "active", Entity.abnormal_list.is_(False))
            .order_by(Entity.id.desc()).limit(3)).all()
        s.execute(update(Entity).where(Entity.id == suspended.id).values(status="suspended"))
    signed_iid = inspected(runtime, db, signs, "result_6")
    unsigned_iid = inspected(runtime, db, never, "result_6")
    suspended_iid = inspected(runtime, db, suspended, "result_6")

    with db.tx() as s:
        (due,) = s.scalars(select(Job.due_at).where(Job.instance_id == unsigned_iid, Job.kind == "timer")).all()
        for iid in (signed_iid, unsigned_iid):
            names = s.scalars(select(MessageSubscription.message_name)
                              .where(MessageSubscription.instance_id == iid)).all()
            assert names.count("registered_letter_signed") == 1
            assert s.get(ProcessInstance, iid).status == "running"
        assert s.get(Entity, signs.id).abnormal_list is False and s.get(Entity, never.id).abnormal_list is False
        # suspended: the inspection ended at the result, nothing waits
        assert s.get(ProcessInstance, suspended_iid).status == "completed"
        assert s.scalars(select(MessageSubscription)
                         .where(MessageSubscription.instance_id == suspended_iid)).all() == []
        assert s.scalars(select(Job).where(Job.instance_id == suspended_iid)).all() == []
        assert s.get(Entity, suspended.id).abnormal_list is False
    with clock.frozen(AT):
        assert due == legal_days(30, AT.date().isoformat())
    assert due.astimezone(SH).date() >= AT.date() + timedelta(days=30)
    assert end_events(runtime, db, suspended_iid) == ["end"]
    with db.tx() as s:
        wf = runtime.load_workflow(s, suspended_iid)
    (rec,) = [t.data["inspection"] for t in wf.get_tasks(state=TaskState.COMPLETED)
              if t.task_spec.bpmn_id == "record_result"]
    assert rec["consequence"] == "none (suspended, service address)"

    with clock.frozen(AT + timedelta(days=12)), db.tx() as s:
        runtime.correlate_message(s, "registered_letter_signed", {"signed_on": "2026-03-15"}, {"uscc": signs.uscc})
    assert end_events(runtime, db, signed_iid) == ["end_contact_restored"]
    with db.tx() as s:
        assert s.get(ProcessInstance, signed_iid).status == "completed"
        assert s.scalars(select(Job).where(Job.instance_id == signed_iid)).all() == []

    listed_when_the_deadline_passes(runtime, db, unsigned_iid, never.id, due, "end_unreachable_listed")
    with db.tx() as s:
        assert s.scalars(select(MessageSubscription).where(MessageSubscription.instance_id == unsigned_iid)).all() == []
        assert s.get(Entity, signs.id).abnormal_list is False
        wf = runtime.load_workflow(s, unsigned_iid)
    (listed,) = [t.data["abnormal"] for t in wf.get_tasks(state=TaskState.COMPLETED)
                 if t.task_spec.bpmn_id == "list_unreachable"]
    assert listed["reason"].startswith("result_6") and "registered address" in listed["reason"]
