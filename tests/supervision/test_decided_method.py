"""Issue 18: the methods the decision tables decide drive the forms, through the real Runtime. ``route_by_risk``
decides the inspection's ``method`` (class A: documentary, no proactive on-site visit; B/C/D: on site) and
``hazard_grade`` the re-inspection's ``reinspection_method`` (low: documentary re-check; medium/high: on site).
The form proposes the decision (``decided_method``, read only, and ``method``'s default); another method needs
``method_deviation_reason``; the completed data — and so the instance's audit chain — carries all three. The
simulated officers follow the decisions."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.bootstrap import form_registry
from engine.config import load_settings
from engine.errors import FormValidationError
from engine.runtime import clock
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance
from engine.simulation.officers import Officers
from forms.validate import bind_runtime
from tests.supervision.test_inspection_process import T0 as T_INSPECT
from tests.supervision.test_inspection_process import entity_of_class, open_tasks, start, task_data
from tests.supervision.test_rectification_process import SH, T0, finding, review, served, start_data

LATER = datetime(2026, 12, 1, 9, 0, tzinfo=SH)  # past every rectification deadline of these tests
REASON = "接到投诉举报，需实地核查"


def completed_event(db, iid: int, bpmn_id: str) -> AuditEvent:
    with db.tx() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid, AuditEvent.kind == "task_completed",
                                                  AuditEvent.bpmn_id == bpmn_id)).one()


def done_data(runtime, db, iid: int, bpmn_id: str) -> dict:
    """The data of a completed user task (what its form merged into the workflow)."""
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
        return dict(next(t for t in wf.get_tasks() if t.task_spec.name == bpmn_id).data)


def form_for(ht: HumanTask, data: dict):
    """The task's form bound to its data, as the task page renders it."""
    return bind_runtime(form_registry(load_settings()).get(ht.form_id), data)


# ---------------------------------------------------------------------------------------------- inspection
def inspection(data: dict, **form) -> dict:
    """A result-7 inspection (closed business: no checklist needed); ``method`` only if given."""
    return {"inspection_date": "2026-03-03", "credentials_shown": True, "party_signed": True,
            "result_code": "result_7", **form}


def test_inspection_proposes_the_decided_method_and_refuses_another_without_a_reason(env):
    runtime, db = env
    decided = {}
    for classes in (["A"], ["B"], ["C", "D"]):
        iid = start(runtime, db, entity_of_class(db, classes))
        (ht,) = open_tasks(db, iid)
        data = task_data(runtime, db, ht)
        form = form_for(ht, data)
        decided[data["risk_class"]] = (data["method"], form.field("method").default,
                                       form.field("decided_method").default)
        if data["risk_class"] in ("C", "D"):
            heavy = (iid, ht)
        if data["risk_class"] == "A":
            light = (iid, ht)
    assert decided["A"] == ("documentary",) * 3, decided  # no proactive on-site visit
    assert decided["B"] == ("on_site",) * 3
    assert {v for k, v in decided.items() if k in ("C", "D")} == {("on_site",) * 3}

    # a C/D entity inspected by documents only: refused, naming the missing reason; nothing is saved
    iid, ht = heavy
    with clock.frozen(T_INSPECT + timedelta(days=1)), db.tx() as s:
        with pytest.raises(FormValidationError) as exc:
            runtime.complete_task(s, ht.id, ht.assignee, inspection({}, method="documentary"))
    assert exc.value.http_status == 422
    assert list(exc.value.field_errors) == ["method_deviation_reason"]
    assert exc.value.field_errors["method_deviation_reason"] == \
        "“检查方式”选择了“书面检查”，与决定的“现场检查”不同，须填写理由。"
    assert [t.id for t in open_tasks(db, iid)] == [ht.id]
    # the decision itself cannot be rewritten by the submitter
    with clock.frozen(T_INSPECT + timedelta(days=1)), db.tx() as s:
        with pytest.raises(FormValidationError) as exc:
            runtime.complete_task(s, ht.id, ht.assignee, inspection({}, decided_method="documentary",
                                                                    method="documentary"))
    assert set(exc.value.field_errors) == {"decided_method", "method_deviation_reason"}
    # with a reason it is recorded: the decision, the method chosen and why, in the data and the audit chain
    with clock.frozen(T_INSPECT + timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, ht.id, ht.assignee, inspection({}, method="documentary",
                                                                method_deviation_reason=REASON))
    data = done_data(runtime, db, iid, "inspect")
    assert (data["decided_method"], data["method"], data["method_deviation_reason"]) == \
        ("on_site", "documentary", REASON)
    diff = completed_event(db, iid, "inspect").data_diff
    assert diff["decided_method"] == {"new": "on_site"}
    assert diff["method"] == {"old": "on_site", "new": "documentary"}
    assert diff["method_deviation_reason"] == {"new": REASON}

    # class A, the method left to the form: the decided documentary check, no reason needed
    iid, ht = light
    with clock.frozen(T_INSPECT + timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, ht.id, ht.assignee, inspection({}))
    data = done_data(runtime, db, iid, "inspect")
    assert (data["decided_method"], data["method"], data["method_deviation_reason"]) == \
        ("documentary", "documentary", None)
    assert completed_event(db, iid, "inspect").data_diff["decided_method"] == {"new": "documentary"}


# ---------------------------------------------------------------------------------------------- re-inspection
def to_reinspection(loop, grade: str, key: str) -> tuple[int, HumanTask, dict]:
    iid = loop.start("rectification", {**start_data(finding(grade)), "uscc": key}, T0, key=key)
    loop.complete(iid, "serve_order", "alice", served(T0), T0 + timedelta(minutes=5))
    loop.run_due(LATER)
    ht = loop.task(iid, "reinspect")
    with loop.db.tx() as s:
        wf = loop.runtime.load_workflow(s, iid)
        data = dict(next(t for t in wf.get_tasks() if str(t.id) == ht.task_guid).data)
    return iid, ht, data


def test_reinspection_follows_the_hazard_grade(loop):
    low, ht_low, data_low = to_reinspection(loop, "low", "91350100M000100Y43")
    medium, ht_medium, data_medium = to_reinspection(loop, "medium", "91350100M000200Y11")
    assert (loop.hazards(low)[0].grade, data_low["reinspection_method"]) == ("low", "documentary")
    assert (loop.hazards(medium)[0].grade, data_medium["reinspection_method"]) == ("medium", "on_site")
    for ht, data, method in ((ht_low, data_low, "documentary"), (ht_medium, data_medium, "on_site")):
        form = form_for(ht, data)
        assert form.field("method").default == form.field("decided_method").default == method

    # low: a documentary re-check is proposed; going on site needs a reason
    at = LATER + timedelta(hours=1)
    with pytest.raises(FormValidationError) as exc:
        loop.complete(low, "reinspect", "alice", review("fixed", at.date(), method="on_site"), at)
    assert list(exc.value.field_errors) == ["method_deviation_reason"]
    loop.complete(low, "reinspect", "alice", review("fixed", at.date(), method="on_site",
                                                    method_deviation_reason="书面材料不足以证明已整改"), at)
    diff = completed_event(loop.db, low, "reinspect").data_diff
    assert diff["decided_method"] == {"new": "documentary"}
    assert diff["method"]["new"] == "on_site" and diff["method_deviation_reason"] == {"new": "书面材料不足以证明已整改"}

    # medium: the method left to the form is the decided on-site re-inspection
    loop.complete(medium, "reinspect", "alice", review("fixed", at.date()), at)
    data = done_data(loop.runtime, loop.db, medium, "reinspect")
    assert (data["decided_method"], data["method"], data["method_deviation_reason"]) == ("on_site", "on_site", None)
    for iid in (low, medium):
        loop.complete(iid, "countersign", "bob", {"agree": True}, at + timedelta(minutes=30))
        assert loop.status(iid) == "completed"
    loop.audit_ok()


def test_the_simulated_officers_follow_the_decided_reinspection_method(loop):
    officers = Officers(loop.runtime, loop.db.factory, {}, random.Random(3))
    for grade, key, method in (("low", "91350100M000100Y43", "documentary"),
                               ("medium", "91350100M000200Y11", "on_site")):
        iid, ht, data = to_reinspection(loop, grade, key)
        with loop.db.tx() as s:
            inst = s.get(ProcessInstance, iid)
        form = officers.data_for(ht, inst, data, date(2026, 12, 1))
        assert form["method"] == method
        loop.complete(iid, "reinspect", "alice", form, LATER + timedelta(hours=1))  # accepted: no reason owed
        assert completed_event(loop.db, iid, "reinspect").data_diff["decided_method"] == {"new": method}
