"""``risk.score`` as a BPMN service task: the score computed when the instance runs routes it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.runtime.models import AuditEvent
from scoring import registry, service
from scoring.generator import WorldParams
from scoring.models import Entity
from scoring.train import train_synthetic
from tests.conftest import deploy_files


@pytest.fixture(scope="module")
def trained():
    return train_synthetic(30_000, seed=3, params=WorldParams(draw_rate=0.2, control_share=0.4))


@pytest.fixture
def scored_db(db, trained):
    result, region = trained
    with db.tx() as s:
        service.load_entities(s, {k: v[:400] for k, v in region.entities.items()})
        registry.store_version(s, result.model, result.metrics, result.metadata, activate=True)
    return db


def test_score_routes_by_class_and_records_reasons(runtime, scored_db):
    db = scored_db
    deploy_files(runtime, db, "score.bpmn")
    with db.tx() as s:
        entities = s.scalars(select(Entity).order_by(Entity.id).limit(400)).all()
        ids = [e.id for e in entities]
    seen = {}
    for entity_id in ids[:120]:
        with db.tx() as s:
            out = runtime.start(s, "score_entity", business_key=str(entity_id), data={"entity_id": entity_id})
            assert out.instance.status == "completed" and out.failure is None
            wf = runtime.load_workflow(s, out.instance.id)
            data = wf.get_tasks(spec_name="end")[0].data
            risk = data["risk"]
            stored = s.get(Entity, entity_id)
            assert stored.risk_class == risk["risk_class"] and stored.model_version == risk["model_version"]
            assert data["path"] == ("heavy" if risk["risk_class"] in ("C", "D") else "standard")
            assert isinstance(risk["reasons"], list) and 0.0 <= risk["score"] <= 1.0
            if risk["risk_class"] in ("C", "D"):  # a high score always has factors that raised it
                assert risk["reasons"] and all(r["delta"] > 0 for r in risk["reasons"] if r.get("delta") is not None)
            seen.setdefault(risk["risk_class"], out.instance.id)
    assert {"A", "B"} <= set(seen)
    # the routing decision's inputs are in the audit trail
    with db.tx() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == next(iter(seen.values())),
                                                AuditEvent.bpmn_id == "score")).one()
        assert set(ev.data_diff["risk"]["new"]) == {"entity_id", "score", "risk_class", "reasons", "model_version"}


def test_missing_entity_takes_the_error_boundary(runtime, scored_db):
    db = scored_db
    deploy_files(runtime, db, "score.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "score_entity", data={"entity_id": 987654})
        assert out.instance.status == "completed" and out.failure is None
    with db.tx() as s:
        kinds = [(e.kind, e.bpmn_id) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == out.instance.id).order_by(AuditEvent.seq))]
        assert ("element_completed", "end_missing") in kinds and ("element_completed", "gw") not in kinds


def test_no_active_model_is_retried_not_routed(runtime, db, trained):
    _result, region = trained
    with db.tx() as s:
        service.load_entities(s, {k: v[:5] for k, v in region.entities.items()})
        entity_id = s.scalars(select(Entity.id).limit(1)).one()
    deploy_files(runtime, db, "score.bpmn")
    with db.tx() as s:
        out = runtime.start(s, "score_entity", data={"entity_id": entity_id})
        assert "retry_in_s" in out.failure and "NoActiveModel" in out.failure["error"]
