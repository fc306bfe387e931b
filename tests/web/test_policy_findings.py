"""The authorization findings of the command-layer review, reproduced over real HTTP and refused now by the one
policy (engine/policy.py), with nothing written:

1. an officer starting ``rectification`` through the API for an entity of another district (a hazard, an order
   and a case lead with no inspection), and ``entity_inspection`` for another district's entity (its score in
   the history) — also with a lower-case or space-padded business key;
2. a member of a task's candidate group downloading the evidence of a completed task they did not work on;
3. the audit page and the API history of an instance without a business key whose start data names an
   entity of another district.
"""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from engine.runtime import clock, users
from engine.runtime.models import AuditEvent, Evidence, HumanTask, ProcessInstance
from engine.simulation import Options, prepare_run
from engine.supervision import calendar as cal
from engine.supervision import evidence as evidence_service
from engine.supervision.loop_models import EnforcementCase, Hazard, RectificationOrder
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes
from tests.supervision.test_inspection_process import T0, entity_of_class, inspect, open_tasks, start

FINDINGS = [{"item_code": "PRICE-01", "clause": "PR-1", "description": "未明码标价", "hazard_grade": "high",
             "safety_related": True}]


def _counts(web_env) -> dict:
    with web_env.tx() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (ProcessInstance, HumanTask, AuditEvent, Hazard, RectificationOrder, EnforcementCase,
                          Evidence)}


def _two_districts(web_env) -> tuple[Entity, Entity]:
    """An entity of one district and one of another."""
    with web_env.tx() as s:
        mine = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        other = s.scalars(select(Entity).where(Entity.district != mine.district).order_by(Entity.id).limit(1)).one()
        s.expunge_all()
        return mine, other


def _token(web_env, username: str) -> dict:
    with web_env.tx() as s:
        return {"Authorization": f"Bearer {users.issue_token(s, username, 'test', actor='admin')}"}


def _limit(web_env, username: str, district: str) -> None:
    with web_env.tx() as s:
        users.set_jurisdiction(s, username, [district], actor="admin")


def test_officer_cannot_start_rectification_for_another_district(web_env, live):
    mine, other = _two_districts(web_env)
    _limit(web_env, "officer", mine.district)
    headers = _token(web_env, "officer")
    before = _counts(web_env)
    for entity in (other, mine):  # engine-only: refused even inside the officer's own district
        body = {"process_id": "rectification",  # as reported: the entity named only in the start data
                "data": {"uscc": entity.uscc, "entity_id": entity.id, "findings": FINDINGS, "risk_class": None,
                         "reinspectors": []}}
        r = requests.post(live + "/api/v1/instances", json=body, headers=headers)
        assert r.status_code == 403, r.text
        assert "startableBy" in r.json()["error"]["message"]
    assert _counts(web_env) == before


@pytest.mark.parametrize("key", ["exact", "lower", "padded"])
def test_entity_inspection_for_another_district_is_refused_whatever_the_key(web_env, live, key):
    mine, other = _two_districts(web_env)
    with web_env.tx() as s:  # a planner (who may start inspections) limited to the first district
        users.add_user(s, "planner2", "planner2-pass-1", "officer", "planners", actor="admin")
    _limit(web_env, "planner2", mine.district)
    headers = _token(web_env, "planner2")
    spelled = {"exact": other.uscc, "lower": other.uscc.lower(), "padded": f"  {other.uscc}  "}[key]
    before = _counts(web_env)
    data = {"uscc": spelled, "entity_id": other.id, "campaign_id": None, "items": ["AR-01"]}
    for body in ({"process_id": "entity_inspection", "business_key": spelled, "data": data},
                 {"process_id": "entity_inspection", "business_key": spelled},
                 {"process_id": "entity_inspection", "data": {"uscc": spelled}}):
        r = requests.post(live + "/api/v1/instances", json=body, headers=headers)
        assert r.status_code == 403, (body, r.text)
        assert other.district in r.json()["error"]["message"]
    assert _counts(web_env) == before
    # the history of an inspection of the other district stays closed to them as well
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, ("keyed_task", {}))
        iid = web_env.runtime.start(s, "keyed_task", business_key=other.uscc,
                                    data={"due": None}).instance.id
    r = requests.get(live + f"/api/v1/instances/{iid}/history", headers=headers)
    assert r.status_code == 403


def test_start_normalises_the_business_key_and_uscc(web_env, live):
    mine, _other = _two_districts(web_env)
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, ("keyed_task", {}))
    _limit(web_env, "officer", mine.district)
    r = requests.post(live + "/api/v1/instances", headers=_token(web_env, "officer"),
                      json={"process_id": "keyed_task", "business_key": f" {mine.uscc.lower()} ",
                            "data": {"uscc": mine.uscc.lower(), "due": None}})
    assert r.status_code == 201, r.text
    assert r.json()["business_key"] == mine.uscc
    with web_env.tx() as s:
        started = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{r.json()['instance_id']}",
                                                     AuditEvent.seq == 1)).one()
        assert started.data_diff["uscc"] == {"new": mine.uscc}
    # a uscc that names no registered entity is refused (400), not started
    r = requests.post(live + "/api/v1/instances", headers=_token(web_env, "officer"),
                      json={"process_id": "keyed_task", "data": {"uscc": "NOT-AN-ENTITY"}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "data.uscc"


def test_the_engines_call_activity_still_starts_rectification(db, runtime):
    """The same findings, reached through the engine (entity_inspection's call activity), open the hazard."""
    with clock.frozen(T0):
        prepare_run(db.url, Options(entities=300, seed=5, training_entities=3000), runtime)
    try:
        e = entity_of_class(db, ["A", "B"])
        iid = start(runtime, db, e)
        inspect(runtime, db, iid, problem=True)
        assert [t.bpmn_id for t in open_tasks(db, iid)] == ["serve_order"]  # the call activity runs
        with db.tx() as s:
            (h,) = s.scalars(select(Hazard).where(Hazard.source_instance_id == iid)).all()
            assert h.uscc == e.uscc and h.status == "open"
    finally:
        cal.use_calendar(None)


def _completed_task_with_evidence(web_env) -> tuple[int, int]:
    rt = web_env.runtime
    with web_env.tx() as s:
        deploy_task_processes(rt, s, ("evidence_task", {}))
        entity = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        out = rt.start(s, "evidence_task", business_key=entity.uscc,
                       data={"due": (clock.now() + timedelta(days=3)).isoformat()})
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == out.instance.id)).one()
        ev = evidence_service.store_upload(s, upload_dir=web_env.settings.upload_dir, max_bytes=10_000,
                                           stream=io.BytesIO(b"%PDF-1.4\nID 410102199001011234\n%%EOF\n"),
                                           filename="id-card.pdf", instance_id=ht.instance_id, task_id=ht.id,
                                           uploaded_by="officer")
        task_id, evidence_id = ht.id, ev.id
    with web_env.tx() as s:
        rt.claim(s, task_id, "officer")
        rt.complete_task(s, task_id, "officer", {})
    return task_id, evidence_id


def test_group_members_cannot_download_evidence_of_tasks_they_did_not_work_on(web_env, http):
    _task_id, evidence_id = _completed_task_with_evidence(web_env)
    path = f"/inbox/evidence/{evidence_id}"
    r = http(username="officer2").get(path)  # officer2 is in the task's group (officers), never worked on it
    assert r.status_code == 403, r.status_code
    assert b"410102199001011234" not in r.content
    for who in ("officer", "supervisor", "auditor"):  # the completer, a supervisor, an auditor
        r = http(username=who).get(path)
        assert r.status_code == 200 and b"410102199001011234" in r.content, who


def test_audit_of_an_instance_without_business_key_checks_the_start_data(web_env, http, live):
    mine, other = _two_districts(web_env)
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, ("keyless_task", {}))
        iid = web_env.runtime.start(s, "keyless_task", data={"uscc": other.uscc, "due": None}).instance.id
    _limit(web_env, "auditor", mine.district)
    auditor = http(username="auditor")
    for path in (f"/audit/instances/{iid}", f"/audit/instances/{iid}/history.json",
                 f"/audit/instances/{iid}/diagram.xml"):
        r = auditor.get(path)
        assert r.status_code == 403, (path, r.status_code)
    r = requests.get(live + f"/api/v1/instances/{iid}/history", headers=_token(web_env, "auditor"))
    assert r.status_code == 403
    _limit(web_env, "auditor", other.district)  # the entity's own district: readable
    assert http(username="auditor").get(f"/audit/instances/{iid}").status_code == 200
