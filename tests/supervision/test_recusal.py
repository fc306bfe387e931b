"""Issue 18: the party's recusal request at the visit (回避, Administrative Penalty Law art. 43), through the real
``entity_inspection`` process. The inspection does not stop for the request (决定作出之前，不停止调查): the officer
records it (whom it is against, the party's reason) with the result; the head of the agency decides
(``decide_recusal``, group ``agency_heads``, form ``recusal_decision``); granted, each named member is replaced by
a redraw (``team.replace_members``, reason ``recusal``, logged) and the head decides whether the inspection made
before stands (its result is recorded) or the new team inspects again; rejected, the recorded result stands."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.errors import FormValidationError
from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Incident, ProcessInstance
from engine.supervision.loop_models import Publication
from engine.supervision.registry_models import Inspector, TeamAssignment, TeamDraw
from tests.supervision.test_decided_method import completed_event
from tests.supervision.test_inspection_process import T0, entity_of_class, inspect, open_tasks, start, task_data

REASON = "当事人称该执法人员系其亲属"


def request_recusal(runtime, db, iid: int, **extra) -> tuple[HumanTask, dict]:
    """The officer records the party's request with the inspection's result: returns the head's task and the
    team."""
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "inspect"
    data = task_data(runtime, db, ht)
    against = next(m for m in data["team"]["members"] if m["role"] != "leader")
    clauses = [c["code"] for c in data["merged_checklist"]["clauses"]]
    form = {"inspection_date": "2026-03-03", "method": data["method"], "credentials_shown": True,
            "party_signed": True, "result_code": "result_1", "checklist": {c: {"result": "compliant"} for c in clauses},
            "recusal_requested": True, "recusal_against": against["code"], "recusal_reason": REASON, **extra}
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, ht.id, ht.assignee, form)
    (head_task,) = open_tasks(db, iid)
    return head_task, data["team"] | {"against": against}


def decide(runtime, db, ht: HumanTask, decision: str, **extra) -> None:
    form = {"recusal_decision": decision, "recusal_decision_reason": "经审查作出决定",
            "recusal_decided_on": "2026-03-04", **extra}
    with clock.frozen(T0 + timedelta(days=2)), db.tx() as s:
        runtime.complete_task(s, ht.id, "head", form)


def replaced(db, team: dict, iid: int) -> None:
    """The challenged member left the team for recusal and a logged draw replaced them."""
    with db.tx() as s:
        left = s.scalars(select(TeamAssignment).join(Inspector, Inspector.id == TeamAssignment.inspector_id)
                         .where(TeamAssignment.team_id == team["team_id"],
                                Inspector.code == team["against"]["code"])).one()
        assert left.release_reason == "recusal" and left.replaced_by_id is not None
        (draw,) = s.scalars(select(TeamDraw).where(TeamDraw.team_id == team["team_id"], TeamDraw.kind == "replace"))
        assert draw.inputs["released_inspector"] == team["against"]["code"] and draw.inputs["reason"] == "recusal"
        assert draw.instance_id == iid


def completed_cleanly(db, iid: int, team_id: int) -> None:
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        assert not s.scalars(select(TeamAssignment).where(TeamAssignment.team_id == team_id,
                                                          TeamAssignment.released_at.is_(None))).all()
        assert s.scalars(select(Publication).where(Publication.source_instance_id == iid)).all()
        assert audit.verify(s).ok


def test_the_inspection_goes_on_and_a_granted_request_whose_earlier_acts_stand_keeps_the_result(env):
    runtime, db = env
    iid = start(runtime, db, entity_of_class(db, ["A", "B"]))
    head_task, team = request_recusal(runtime, db, iid)
    assert (head_task.bpmn_id, head_task.form_id) == ("decide_recusal", "recusal_decision")
    assert head_task.candidate_groups == ["agency_heads"] and head_task.assignee is None
    assert task_data(runtime, db, head_task)["result_code"] == "result_1"  # recorded: the visit did not stop
    with pytest.raises(FormValidationError) as exc:  # granted: whether the earlier acts stand must be said
        decide(runtime, db, head_task, "grant")
    assert set(exc.value.field_errors) == {"recusal_prior_acts_valid"}
    decide(runtime, db, head_task, "grant", recusal_prior_acts_valid=True)
    replaced(db, team, iid)
    assert completed_event(db, iid, "decide_recusal").data_diff["recusal_decision"] == {"new": "grant"}
    completed_cleanly(db, iid, team["team_id"])  # no second inspection: the recorded result stands


def test_a_granted_request_whose_earlier_acts_do_not_stand_has_the_new_team_inspect_again(env):
    runtime, db = env
    iid = start(runtime, db, entity_of_class(db, ["A", "B"]))
    head_task, team = request_recusal(runtime, db, iid)
    decide(runtime, db, head_task, "grant", recusal_prior_acts_valid=False)
    replaced(db, team, iid)
    (again,) = open_tasks(db, iid)
    new_team = task_data(runtime, db, again)["team"]
    assert again.bpmn_id == "inspect" and again.assignee == new_team["leader"]
    assert new_team["team_id"] == team["team_id"]
    codes = {m["code"] for m in new_team["members"]}
    assert team["against"]["code"] not in codes and len(codes) == len(team["members"])
    inspect(runtime, db, iid, problem=False)  # the new team's leader records the result
    completed_cleanly(db, iid, team["team_id"])


def test_a_rejected_request_keeps_the_recorded_result(env):
    runtime, db = env
    iid = start(runtime, db, entity_of_class(db, ["A", "B"]))
    head_task, team = request_recusal(runtime, db, iid)
    decide(runtime, db, head_task, "reject")
    event = completed_event(db, iid, "decide_recusal")
    assert event.actor == "head" and event.data_diff["recusal_decision"] == {"new": "reject"}
    assert event.data_diff["recusal_decision_reason"] == {"new": "经审查作出决定"}
    with db.tx() as s:
        assert not s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid,
                                                          TeamAssignment.release_reason == "recusal")).all()
    completed_cleanly(db, iid, team["team_id"])


def test_a_request_must_name_the_member_and_the_reason(env):
    runtime, db = env
    iid = start(runtime, db, entity_of_class(db, ["A", "B"]))
    (ht,) = open_tasks(db, iid)
    data = task_data(runtime, db, ht)
    clauses = [c["code"] for c in data["merged_checklist"]["clauses"]]
    form = {"inspection_date": "2026-03-03", "method": data["method"], "credentials_shown": True,
            "party_signed": True, "result_code": "result_1", "checklist": {c: {"result": "compliant"} for c in clauses},
            "recusal_requested": True}
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s, pytest.raises(FormValidationError) as exc:
        runtime.complete_task(s, ht.id, ht.assignee, form)
    assert set(exc.value.field_errors) == {"recusal_against", "recusal_reason"}
    (still,) = open_tasks(db, iid)
    assert still.bpmn_id == "inspect"


def test_a_granted_request_naming_no_member_of_the_team_stops_at_an_incident_naming_it(env):
    """The form cannot list the team (its options are fixed): a name that is not an open member is found when
    the replacement runs, before anything changes."""
    runtime, db = env
    iid = start(runtime, db, entity_of_class(db, ["A", "B"]))
    head_task, team = request_recusal(runtime, db, iid, recusal_against="NOBODY")
    with clock.frozen(T0 + timedelta(days=2)), db.tx() as s:
        runtime.complete_task(s, head_task.id, "head", {"recusal_decision": "grant", "recusal_decided_on": "2026-03-04",
                                                        "recusal_decision_reason": "同意",
                                                        "recusal_prior_acts_valid": False})
    with db.tx() as s:
        assert not s.scalars(select(TeamAssignment).where(TeamAssignment.team_id == team["team_id"],
                                                          TeamAssignment.release_reason == "recusal")).all()
        (incident,) = s.scalars(select(Incident).where(Incident.instance_id == iid))
    assert incident.bpmn_id == "replace_challenged" and "not on team" in incident.message
    assert "NOBODY" in incident.message
