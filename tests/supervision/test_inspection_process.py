"""``entity_inspection`` end to end through the real Runtime on SQLite and PostgreSQL: risk.score ->
route_by_risk (DMN) -> merged checklist -> team.form -> inspection -> result code branch -> publication
-> team released; problem -> rectification call activity; no qualified inspector -> supervisor task
naming what is missing, then a redraw."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, ProcessInstance
from engine.simulation import Options, prepare_run
from engine.supervision import calendar as cal
from engine.supervision.loop_models import Hazard, Publication
from engine.supervision.registry_models import Inspector, TeamAssignment
from scoring.models import Entity

SH = cal.SHANGHAI
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)


@pytest.fixture
def env(db, runtime):
    with clock.frozen(T0):
        prepare_run(db.url, Options(entities=300, seed=5, training_entities=3000), runtime)
    yield runtime, db
    cal.use_calendar(None)


def entity_of_class(db, classes) -> Entity:
    with db.tx() as s:
        return s.scalars(select(Entity).where(Entity.risk_class.in_(classes)).order_by(Entity.id)).first()


def start(runtime, db, e: Entity, workload_cap: int = 5) -> int:
    data = {"uscc": e.uscc, "entity_id": e.id, "campaign_id": None, "items": ["AR-01", "PRICE-01"],
            "stratum": None, "campaign_seed": "", "workload_cap": workload_cap}
    with clock.frozen(T0), db.tx() as s:
        return runtime.start(s, "entity_inspection", business_key=e.uscc, data=data).instance.id


def open_tasks(db, iid) -> list[HumanTask]:
    with db.tx() as s:
        return list(s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")))


def task_data(runtime, db, ht) -> dict:
    with db.tx() as s:
        wf = runtime.load_workflow(s, ht.instance_id)
        return dict(next(t for t in wf.get_tasks() if str(t.id) == ht.task_guid).data)


def inspect(runtime, db, iid, *, problem: bool) -> dict:
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "inspect" and ht.form_id == "inspection_result"
    data = task_data(runtime, db, ht)
    assert ht.assignee == data["team"]["leader"]
    clauses = [c["code"] for c in data["merged_checklist"]["clauses"]]
    form = {"inspection_date": "2026-03-03", "method": data["method"], "credentials_shown": True,
            "party_signed": True, "checklist": {c: {"result": "compliant"} for c in clauses}}
    if problem:
        form["result_code"] = "result_A"
        form["checklist"][clauses[0]] = {"result": "non_compliant", "note": "未明码标价"}
        form["findings"] = [{"item_code": "PRICE-01", "clause": clauses[0], "description": "未明码标价",
                             "hazard_grade": "medium"}]
    else:
        form["result_code"] = "result_1"
    with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, ht.id, ht.assignee, form)
    return data


def test_standard_path_no_problem_published_and_team_released(env):
    runtime, db = env
    e = entity_of_class(db, ["A", "B"])
    iid = start(runtime, db, e)
    data = inspect(runtime, db, iid, problem=False)
    assert (data["path"], data["team_size"], data["review_required"]) == ("standard", 2, False)
    assert data["risk_class"] == data["risk"]["risk_class"] in ("A", "B")
    assert data["merged_checklist"]["type"] == "checklist" and data["merged_checklist"]["clauses"]
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        (pub,) = s.scalars(select(Publication).where(Publication.source_instance_id == iid)).all()
        assert pub.kind == "result" and pub.payload["result_code"] == "result_1" and pub.published_at
        assert pub.payload["path"] == "standard"
        assert pub.due_by == cal.current_calendar().add_workdays(pub.event_at, 20).at
        rows = s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid)).all()
        assert len(rows) >= 2 and all(r.released_at is not None for r in rows)
        assert audit.verify(s).ok


def test_heavy_path_problem_review_then_rectification_started(env):
    runtime, db = env
    e = entity_of_class(db, ["C", "D"])
    iid = start(runtime, db, e)
    data = inspect(runtime, db, iid, problem=True)
    assert (data["path"], data["team_size"], data["checklist_depth"]) == ("heavy", 3, "full")
    (review,) = open_tasks(db, iid)
    assert review.bpmn_id == "review" and review.candidate_groups == ["supervisors"]
    with clock.frozen(T0 + timedelta(days=2)), db.tx() as s:
        runtime.complete_task(s, review.id, "supervisor", {"decision": "approve", "hazard_grade_confirmed": "medium",
                                                          "public_summary": "发现问题，责令整改"})
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["serve_order"]  # rectification called
    with db.tx() as s:
        (h,) = s.scalars(select(Hazard).where(Hazard.source_instance_id == iid)).all()
        assert h.status == "open" and h.uscc == e.uscc
        (pub,) = s.scalars(select(Publication).where(Publication.source_instance_id == iid)).all()
        assert pub.payload["result_code"] == "result_A" and pub.payload["path"] == "heavy"
        assert audit.verify(s).ok


def test_no_qualified_inspector_goes_to_a_supervisor_then_redraws(env):
    runtime, db = env
    with db.tx() as s:
        keep = s.scalars(select(Inspector.id).order_by(Inspector.id).limit(1)).all()
        s.execute(update(Inspector).where(Inspector.id.not_in(keep)).values(active=False))
    e = entity_of_class(db, ["A", "B"])
    iid = start(runtime, db, e)
    (ht,) = open_tasks(db, iid)
    assert ht.bpmn_id == "resolve_staffing" and ht.candidate_groups == ["supervisors"]
    data = task_data(runtime, db, ht)
    assert "cannot form a team" in data["staffing_issue"] and data["staffing_missing"]
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "running"
        s.execute(update(Inspector).values(active=True))  # borrowed officers
    with clock.frozen(T0), db.tx() as s:
        runtime.complete_task(s, ht.id, "supervisor", {})
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["inspect"]
