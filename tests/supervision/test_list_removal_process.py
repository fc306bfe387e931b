"""processes/list_removal.bpmn: an application is recorded, a supervisor reviews it with the form
list_removal_review; approved → the entry is removed (kind application) and the public list shows it, rejected →
the note is recorded and the entry stays; the steps' list events land in the instance's own hash chain. The list.*
operators' contract as another process calls them."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine.bootstrap import form_hasher
from engine.commands import instances as instance_commands
from engine.config import PROJECT_ROOT, load_settings
from engine.errors import FormValidationError
from engine.policy import load_actor
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AuditEvent, HumanTask, Incident, ProcessInstance
from engine.runtime.users import add_user
from engine.supervision import calendar as cal
from engine.supervision import lists
from engine.supervision.list_models import ListEntry, RemovalApplication
from tests.supervision.test_lists import add_entity

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=cal.SHANGHAI)
#: a process that calls list.enter / list.remove with exactly the contract enforcement.bpmn uses
CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="list_caller" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="enter" />
    <bpmn:serviceTask id="enter"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="list.enter" resultVariable="listed"><spiffworkflow:parameters>
        <spiffworkflow:parameter id="list" type="str" value="&#34;serious&#34;" />
        <spiffworkflow:parameter id="entity_id" type="int" value="entity_id" />
        <spiffworkflow:parameter id="reason" type="str" value="&#34;受到较重行政处罚（罚款20万元）&#34;" />
        <spiffworkflow:parameter id="legal_basis" type="str"
          value="&#34;《市场监督管理严重违法失信名单管理办法》&#34;" />
        <spiffworkflow:parameter id="reason_code" type="str" value="&#34;heavy_penalty&#34;" />
      </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="enter" targetRef="again" />
    <bpmn:serviceTask id="again"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="list.enter" resultVariable="listed_again"><spiffworkflow:parameters>
        <spiffworkflow:parameter id="list" type="str" value="&#34;serious&#34;" />
        <spiffworkflow:parameter id="entity_id" type="int" value="entity_id" />
        <spiffworkflow:parameter id="reason" type="str" value="&#34;受到较重行政处罚（罚款20万元）&#34;" />
        <spiffworkflow:parameter id="legal_basis" type="str"
          value="&#34;《市场监督管理严重违法失信名单管理办法》&#34;" />
        <spiffworkflow:parameter id="reason_code" type="str" value="&#34;heavy_penalty&#34;" />
      </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="again" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def proc(runtime, db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        add_user(s, "olga", "olga-password", "officer", "officers")
        add_user(s, "sam", "sam-password", "supervisor", "supervisors")
        entity = add_entity(s, 201)
        entry, _ = lists.enter(s, list_kind="abnormal", entity_id=entity.id, reason="公示信息弄虚作假",
                               legal_basis=lists.ABNORMAL_BASIS, reason_code="false_information", now=T0,
                               actor="olga")
        ids = (entity.id, entity.uscc, entry.id)
    files = read_paths([PROJECT_ROOT / "processes" / "list_removal.bpmn"])
    files["list_caller.bpmn"] = CALLER
    with db.tx() as s:
        deploy(runtime, s, files, "designer", form_hash=form_hasher(load_settings()))
    with db.tx() as s:
        cal.refresh(s)
    yield ids
    cal.use_calendar(None)


def start(runtime, db, uscc: str, entry_id: int, at: datetime) -> int:
    data = {"entry_id": entry_id, "statement": "已更正公示信息，请求移出。联系人张伟 13812345678",
            "evidence": ["EV-1"], "applicant": None}
    with clock.frozen(at), db.tx() as s:
        actor = load_actor(s, "olga")
        return instance_commands.start(runtime, s, actor, "list_removal", uscc, data).instance.id


def review_task(db, iid: int) -> HumanTask:
    with db.tx() as s:
        (t,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).all()
        return t


def complete(runtime, db, task: HumanTask, user: str, data: dict, at: datetime):
    with clock.frozen(at), db.tx() as s:
        return runtime.complete_task(s, task.id, user, data)


def test_an_approved_application_removes_the_entry(runtime, db, proc):
    entity_id, uscc, entry_id = proc
    iid = start(runtime, db, uscc, entry_id, T0 + timedelta(days=10))
    task = review_task(db, iid)
    assert task.bpmn_id == "review" and task.candidate_groups == ["supervisors"]
    with pytest.raises(FormValidationError):  # no decision
        complete(runtime, db, task, "sam", {}, T0 + timedelta(days=11))
    complete(runtime, db, task, "sam", {"decision": "approve", "approval_note": "核实已更正"}, T0 + timedelta(days=11))
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        entry = s.get(ListEntry, entry_id)
        assert (entry.status, entry.removal_kind, entry.removed_by, entry.removal_reason) == (
            "removed", "application", "sam", "核实已更正")
        (app,) = s.scalars(select(RemovalApplication)).all()
        assert (app.status, app.applied_by, app.reviewed_by, app.instance_id) == ("approved", "olga", "sam", iid)
        # the step's events: in the instance's own hash chain, between the step's events
        mine = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{iid}")
                                          .order_by(AuditEvent.seq)) if e.kind.startswith("list_")]
        assert mine == ["list_removal_applied", "list_removed", "list_removal_reviewed"]
        assert not s.scalars(select(AuditEvent).where(AuditEvent.chain == "system",
                                                      AuditEvent.kind == "list_removed")).all()
        assert audit.verify(s).ok
        public = lists.public_entries(s, uscc=uscc)
        assert public[0]["status"] == "removed" and public[0]["removed_on"] == "2026-09-12"


def test_a_rejected_application_keeps_the_entry_and_records_the_notice(runtime, db, proc):
    entity_id, uscc, entry_id = proc
    iid = start(runtime, db, uscc, entry_id, T0 + timedelta(days=10))
    task = review_task(db, iid)
    with pytest.raises(FormValidationError):  # a rejection needs its note
        complete(runtime, db, task, "sam", {"decision": "reject"}, T0 + timedelta(days=11))
    complete(runtime, db, task, "sam", {"decision": "reject", "review_note": "证明材料不足"}, T0 + timedelta(days=11))
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        assert s.get(ListEntry, entry_id).status == "listed"
        (app,) = s.scalars(select(RemovalApplication)).all()
        assert (app.status, app.review_note) == ("rejected", "证明材料不足")
    # a new application may follow the rejection
    iid2 = start(runtime, db, uscc, entry_id, T0 + timedelta(days=20))
    assert review_task(db, iid2).bpmn_id == "review"


def test_a_second_pending_application_is_not_admissible(runtime, db, proc):
    """The registry refuses it (one pending application per entry): the instance ends at once as not admissible,
    the reason kept — no incident for an operator to clear."""
    entity_id, uscc, entry_id = proc
    start(runtime, db, uscc, entry_id, T0 + timedelta(days=10))
    second = start(runtime, db, uscc, entry_id, T0 + timedelta(days=10))
    with db.tx() as s:
        assert len(s.scalars(select(RemovalApplication)).all()) == 1
        inst = s.get(ProcessInstance, second)
        assert inst.status == "completed"
        assert not s.scalars(select(Incident).where(Incident.instance_id == second)).all()
        refusal = runtime.load_workflow(s, second).data["refusal"]
        assert refusal["code"] == "list_conflict" and "pending" in refusal["message"]
        path = [e.bpmn_id for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{second}",
                                                                      AuditEvent.kind == "element_completed"))]
        assert path[-2:] == ["not_admissible", "end_not_admissible"]


def test_early_credit_repair_of_a_serious_entry_is_not_admissible(runtime, db, proc):
    entity_id, uscc, _ = proc
    with db.tx() as s:
        serious, _ = lists.enter(s, list_kind="serious", entity_id=entity_id, reason="受到较重行政处罚",
                                 legal_basis=lists.SERIOUS_BASIS, reason_code="heavy_penalty", now=T0, actor="sam")
        serious_id = serious.id
    iid = start(runtime, db, uscc, serious_id, T0 + timedelta(days=100))
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        assert "2027-09-01" in runtime.load_workflow(s, iid).data["refusal"]["message"]
        assert s.get(ListEntry, serious_id).status == "listed"
        assert not s.scalars(select(RemovalApplication).where(RemovalApplication.entry_id == serious_id)).all()


def test_list_enter_from_a_process_lists_once_with_the_instance(runtime, db, proc):
    entity_id, uscc, _ = proc
    with clock.frozen(T0), db.tx() as s:
        iid = runtime.start(s, "list_caller", business_key=uscc, data={"entity_id": entity_id}).instance.id
    with db.tx() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.status == "completed"
        data = runtime.load_workflow(s, iid).data
        (entry,) = lists.open_entries(s, entity_id, "serious")
        assert data["listed"]["created"] is True and data["listed_again"]["created"] is False
        assert data["listed"]["entry_id"] == entry.id and entry.instance_id == iid
        assert entry.reason_code == "heavy_penalty"
        (ev,) = s.scalars(select(AuditEvent).where(AuditEvent.kind == "list_entered",
                                                   AuditEvent.chain == f"instance:{iid}")).all()
        assert ev.instance_id == iid and ev.detail["entry_id"] == entry.id  # listed once: one event
        assert audit.verify(s).ok
