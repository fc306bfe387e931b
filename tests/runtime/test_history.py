"""The auditor's history service (engine.runtime.history) on both backends: the path of a small process
run through the runtime (completed elements, taken flows, current position, call activities), the
routing reasons, the data rebuilt at an event, the past view, instance search filters and the export."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select, update

from engine.errors import InvalidInput, NotFound
from engine.runtime import clock, history
from engine.runtime.deploy import deploy
from engine.runtime.history import InstanceQuery
from engine.runtime.models import AuditEvent, HumanTask
from engine.runtime.worker import run_due
from tests.conftest import DATA, deploy_files
from tests.supervision.test_inbox_service import deploy_task_processes

ROUTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_routed" targetNamespace="http://regflow.example/test">
  <bpmn:process id="routed" name="Routed" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fill"/>
    <bpmn:userTask id="fill" name="Fill in">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="candidateGroups" value="officers"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="fill" targetRef="score"/>
    <bpmn:scriptTask id="score" name="Score">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>risk = {"score": 0.91, "risk_class": "D", "model_version": "m-test-1", "entity_id": 7,
        "reasons": [{"factor": "penalties_3y", "en": "penalties in 3 years", "zh": "三年内处罚"}]}
risk_class = risk["risk_class"]</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="score" targetRef="route"/>
    <bpmn:businessRuleTask id="route" name="Route by risk class">
      <bpmn:extensionElements><spiffworkflow:calledDecisionId>risk_route</spiffworkflow:calledDecisionId></bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f4" sourceRef="route" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" name="Heavy?" default="f_std">
      <bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f_heavy</bpmn:outgoing><bpmn:outgoing>f_std</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_heavy" sourceRef="gw" targetRef="heavy">
      <bpmn:conditionExpression>path == "heavy"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_std" sourceRef="gw" targetRef="standard"/>
    <bpmn:userTask id="heavy" name="Heavy review">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="candidateGroups" value="supervisors"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_heavy</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="standard" name="Standard">
      <bpmn:incoming>f_std</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing><bpmn:script>took = "standard"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f5" sourceRef="heavy" targetRef="end"/>
    <bpmn:sequenceFlow id="f6" sourceRef="standard" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f5</bpmn:incoming><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _deploy_routed(runtime, db):
    dmn = (DATA / "engine" / "risk_route.dmn").read_text(encoding="utf-8")
    with db.tx() as s:
        deploy(runtime, s, {"routed.bpmn": ROUTED, "risk_route.dmn": dmn}, "designer")


def _open_task(db, iid: int) -> HumanTask:
    with db.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).one()
        s.expunge(ht)
        return ht


@pytest.fixture
def routed(runtime, db, people):
    """One ``routed`` instance: alice filled in the first task; it waits at the heavy review."""
    _deploy_routed(runtime, db)
    with db.tx() as s:
        iid = runtime.start(s, "routed", business_key="91410102MA0000001A", data={"amount": 5},
                            actor="alice").instance.id
    with db.tx() as s:
        runtime.complete_task(s, _open_task(db, iid).id, "alice", {"note": "looked fine", "amount": 6})
    return iid


def test_path_flows_and_current_position(runtime, db, routed):
    with db.tx() as s:
        h = history.history(s, routed)
    assert {"start", "fill", "score", "route", "gw"} <= set(h.path.done)
    assert "heavy" not in h.path.done and "standard" not in h.path.done and "end" not in h.path.done
    assert h.path.current == ["heavy"]
    assert {"f1", "f2", "f3", "f4", "f_heavy"} <= set(h.path.flows) and "f_std" not in h.path.flows
    assert h.path.failed == [] and h.verdict.ok
    kinds = [e.kind for e in h.events]
    assert kinds[0] == "instance_started" and "task_completed" in kinds
    # the officer's action is in the timeline with what she changed
    done = next(e for e in h.events if e.kind == "task_completed")
    assert done.actor == "alice" and done.bpmn_id == "fill"
    assert done.data_diff["note"] == {"new": "looked fine"} and done.data_diff["amount"] == {"old": 5, "new": 6}


def test_routing_reasons(db, routed):
    with db.tx() as s:
        h = history.history(s, routed)
    by_kind = {d.kind: d for d in h.decisions}
    risk = by_kind["risk"]
    assert risk.risk["risk_class"] == "D" and risk.risk["model_version"] == "m-test-1"
    assert risk.risk["reasons"][0]["factor"] == "penalties_3y" and risk.bpmn_id == "score"
    rule = by_kind["rule"]
    assert rule.bpmn_id == "route" and rule.values["path"] == "heavy" and rule.values["team_size"] == 3
    gw = by_kind["gateway"]
    assert gw.bpmn_id == "gw" and gw.values == {"path": "heavy"}
    assert [t["id"] for t in gw.taken] == ["f_heavy"]
    assert gw.taken[0]["condition"] == 'path == "heavy"' and gw.taken[0]["default"] is False
    assert gw.taken[0]["target_name"] == "Heavy review"


def test_state_at_event_equals_the_data_at_that_point(runtime, db, routed):
    with db.tx() as s:
        events = history.events_of(s, routed)
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == routed, HumanTask.status == "open")).one()
        wf = runtime.load_workflow(s, routed)

        actual = dict(wf.get_task_from_id(UUID(ht.task_guid)).data)
    # now: the data the waiting task holds
    assert history.state_at(events) == actual
    # at the officer's completion: her input, not yet the score
    seq = next(e.seq for e in events if e.kind == "task_completed")
    then = history.state_at(events, seq)
    assert then == {"amount": 6, "note": "looked fine"}
    # at the start: the start data only
    assert history.state_at(events, 1) == {"amount": 5}


def test_past_view_shows_the_position_at_that_event(db, routed):
    with db.tx() as s:
        events = history.events_of(s, routed)
        created = next(e.seq for e in events if e.kind == "task_created" and e.bpmn_id == "fill")
        h = history.history(s, routed, upto=created)
        assert h.path.current == ["fill"] and "fill" not in h.path.done and "score" not in h.path.done
        assert h.data == {"amount": 5} and h.events[-1].seq == created
        with pytest.raises(NotFound):
            history.history(s, routed, upto=len(events) + 5)


def test_tampering_breaks_the_verdict(db, routed):
    with db.tx() as s:
        s.execute(update(AuditEvent).where(AuditEvent.chain == f"instance:{routed}", AuditEvent.seq == 2)
                  .values(actor="mallory"))
    with db.tx() as s:
        h = history.history(s, routed)
    assert not h.verdict.ok and any(p.get("seq") == 2 for p in h.verdict.problems)


def test_call_activity_is_current_while_the_child_waits(runtime, db, people):
    deploy_files(runtime, db, "call.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "parent_flow", data={"fixed": 4}).instance.id
    with db.tx() as s:
        h = history.history(s, iid)
    assert h.path.current == ["call_child"] and "p_start" in h.path.done
    # the child's elements are not painted on the parent's diagram
    assert "c_start" not in h.path.done
    with db.tx() as s:
        runtime.complete_task(s, _open_task(db, iid).id, "alice", {})
    with db.tx() as s:
        h = history.history(s, iid)
    assert h.instance.status == "completed" and h.path.current == []
    assert {"call_child", "p_after", "p_end"} <= set(h.path.done) and {"p1", "p2", "p3"} <= set(h.path.flows)


def test_incident_marks_the_failed_element(runtime, db, people):
    deploy_files(runtime, db, "service.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "service_flow", data={"label": "x", "mode": "unknown-op"}).instance.id

    with db.tx() as s:
        runtime.complete_task(s, _open_task(db, iid).id, "alice", {"mode": "fail"})
    for days in (1, 2, 3):
        run_due(runtime, db.factory, now=clock.now() + timedelta(days=days))
    with db.tx() as s:
        h = history.history(s, iid)
    assert h.path.failed == ["record"] and h.incidents and h.incidents[0].status == "open"


def test_search_filters(runtime, db, routed):
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("plain", {}))
        other = runtime.start(s, "plain", business_key="91410103MA0000002B", data={"due": None},
                              actor="bob").instance.id
    with db.tx() as s:
        def ids(**kw):
            return [r.id for r in history.search_instances(s, InstanceQuery(**kw)).rows]

        assert ids() == [other, routed]
        assert ids(process_id="routed") == [routed]
        assert ids(business_keys=["91410103MA0000002B"]) == [other]
        assert ids(business_keys=[]) == []
        assert ids(officer="alice") == [routed]  # she completed a task there
        assert ids(officer="bob") == [other]  # he started it
        assert ids(status="completed") == []
        assert ids(status="running") == [other, routed]
        now = clock.now()
        assert ids(started_from=now - timedelta(hours=1), started_before=now + timedelta(hours=1)) == [other, routed]
        assert ids(started_from=now + timedelta(hours=1)) == []
        assert ids(hidden_keys=["91410102MA0000001A"]) == [other]
        page = history.search_instances(s, InstanceQuery(limit=1))
        assert page.total == 2 and len(page.rows) == 1 and page.has_next
        assert history.search_instances(s, InstanceQuery(limit=1, offset=1)).rows[0].id == routed
        with pytest.raises(InvalidInput):
            InstanceQuery(status="lost")
        with pytest.raises(InvalidInput):
            InstanceQuery(started_from=now, started_before=now)


def test_export_rows_carry_every_event(db, routed):
    with db.tx() as s:
        rows = list(history.export_rows(s, routed))
        events = history.events_of(s, routed)
        doc = history.export_document(s, routed)
    assert [r["seq"] for r in rows] == [e.seq for e in events] == [e["seq"] for e in doc["events"]]
    assert rows[-1]["hash"] == events[-1].hash and set(rows[0]) == set(history.CSV_COLUMNS)
    assert doc["chain"]["ok"] and doc["instance"]["id"] == routed


def test_unknown_instance(db):
    with db.tx() as s, pytest.raises(NotFound):
        history.history(s, 424242)


def test_parse_diagram_reads_the_processes_library():
    root = Path(__file__).resolve().parents[2] / "processes"
    d = history.parse_diagram((root / "entity_inspection.bpmn").read_text(encoding="utf-8"), "entity_inspection")
    assert d.calls == {"rectification": "rectification", "case": "enforcement", "transfer": "transfer"}
    assert d.kind("route") == "businessRuleTask" and d.kind("needs_review") == "exclusiveGateway"
    assert "f_no_review" in d.defaults and d.flows["f_review"].condition == "review_required"
