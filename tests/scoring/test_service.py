import numpy as np
import pytest
from sqlalchemy import select, update

from engine import txcache
from engine.db import transaction
from scoring import registry, service
from scoring.errors import EntityNotFound, InvalidFactors, NoActiveModel
from scoring.models import Entity


def test_load_and_score_all(loaded_db):
    with transaction(loaded_db) as s:
        summary = service.score_all(s, progress=False)
    assert summary.n_scored == 3000 and summary.n_invalid == 0
    assert sum(summary.class_counts.values()) == 3000
    with transaction(loaded_db) as s:
        rows = s.execute(select(Entity.risk_score, Entity.risk_class, Entity.model_version, Entity.risk_reasons)).all()
    assert all(0 < r[0] < 1 and r[1] in "ABCD" and r[2] == summary.model_version for r in rows)
    assert any(r[3] for r in rows)


def test_score_entity_matches_batch_and_records(loaded_db):
    with transaction(loaded_db) as s:
        service.score_all(s, progress=False)
        batch = s.get(Entity, 42)
        batch_score, batch_class = batch.risk_score, batch.risk_class
        r = service.score_entity(s, 42)
    assert r.score == pytest.approx(batch_score, abs=1e-6) and r.risk_class == batch_class
    assert r.model_version.startswith("rm-")
    assert isinstance(r.reasons, list)


def test_entity_not_found(loaded_db):
    with transaction(loaded_db) as s:
        with pytest.raises(EntityNotFound, match="entity 999999 not found"):
            service.score_entity(s, 999999)


@pytest.mark.parametrize("field, value, msg", [
    ("complaints_12m", -1, "invalid complaints_12m=-1"),
    ("annual_report_late_3y", 7, "invalid annual_report_late_3y=7"),
    ("years_in_business", None, "invalid years_in_business=None: missing value"),
    ("industry_section", "S", "invalid industry_section='S': unknown industry_section"),
    ("entity_type", "spaceship", "invalid entity_type='spaceship': unknown entity_type"),
])
def test_bad_factors_raise_naming_entity_field_value(loaded_db, field, value, msg):
    with transaction(loaded_db) as s:
        s.execute(update(Entity).where(Entity.id == 7).values(**{field: value}))
        with pytest.raises(InvalidFactors, match=f"entity 7: {msg}") as exc:
            service.score_entity(s, 7)
    assert exc.value.entity == 7 and exc.value.field == field and exc.value.value == value


def test_batch_skips_and_reports_invalid_rows(loaded_db):
    with transaction(loaded_db) as s:
        service.score_all(s, progress=False)
        s.execute(update(Entity).where(Entity.id == 9).values(penalties_3y=None))
        summary = service.score_all(s, progress=False)
        e = s.get(Entity, 9)
        assert summary.n_invalid == 1 and summary.n_scored == 2999
        assert summary.errors[0].startswith("entity 9: invalid penalties_3y=None: missing value")
        assert e.risk_score is None and e.risk_class is None and e.model_version is None  # no stale score
        assert "penalties_3y" in e.risk_reasons[0]["error"]


def test_unknown_district_is_imputed(loaded_db):
    with transaction(loaded_db) as s:
        s.execute(update(Entity).where(Entity.id == 11).values(district="110105"))
        r = service.score_entity(s, 11)
    assert 0 < r.score < 1


def test_no_active_model(db, trained):
    frame = {k: v[:10] for k, v in trained[1].entities.items()}
    with transaction(db) as s:
        service.load_entities(s, frame)
        with pytest.raises(NoActiveModel):
            service.score_entity(s, 1)


@pytest.mark.parametrize("field, value, msg", [
    ("uscc", "91410105000000000X", "not a valid unified social credit code"),
    ("industry_section", "S", "unknown industry_section"),
    ("complaints_12m", -3, "out of range"),
    ("status", "zombie", "must be one of"),
])
def test_load_entities_rejects_bad_input(db, trained, field, value, msg):
    frame = {k: np.array(v[:5], dtype=object) for k, v in trained[1].entities.items()}
    frame[field][2] = value
    with transaction(db) as s:
        with pytest.raises(InvalidFactors, match=msg) as exc:
            service.load_entities(s, frame)
    assert exc.value.entity == 3 and exc.value.field == field


def test_retrain_from_outcomes(loaded_db, trained):
    region = trained[1]
    h = region.history
    keep = h["entity_id"] <= 3000
    outcomes = [(int(e), d, bool(f), st == "control")
                for e, d, f, st in zip(h["entity_id"][keep], h["drawn_on"][keep], h["found_problem"][keep],
                                       h["stratum"][keep])]
    with transaction(loaded_db) as s:
        row = service.retrain_from_outcomes(s, outcomes, seed=1, activate=False)
        assert row.meta["data"]["source"] == "inspection_outcomes"
        assert row.meta["data"]["n_outcomes"] == len(outcomes)
        assert row.metrics["synthetic"] is False and row.metrics["auc"] > 0.6
        assert not row.active
        registry.activate_version(s, row.version)
        r = service.score_entity(s, 5)
    assert r.model_version == row.version
    with transaction(loaded_db) as s:
        with pytest.raises(EntityNotFound):
            service.retrain_from_outcomes(s, [(999999, "2024-01-01", True, True)])


def test_prefetched_scores_equal_scoring_one_by_one(loaded_db):
    """A campaign launch scores its entities in one matrix; each instance's risk.score then takes the result
    made for exactly its inputs, and it is the result scoring that entity alone gives."""
    with transaction(loaded_db) as s:
        ids = list(s.scalars(select(Entity.id).order_by(Entity.id).limit(400)))
        alone = [service.score_entity(s, i, record=False) for i in ids]
    with transaction(loaded_db) as s:
        entities = list(s.scalars(select(Entity).where(Entity.id.in_(ids)).order_by(Entity.id)))
        assert service.prefetch_scores(s, entities) == len(ids)
        model_calls = []
        _, model = registry.load_active(s)
        real = model.score_one
        model.score_one = lambda *a, **k: model_calls.append(1) or real(*a, **k)
        try:
            batch = [service.score_entity(s, i) for i in ids]
            assert model_calls == []  # every result came from the batch
            # an entity whose inputs change is scored again, not served the remembered result
            entities[0].complaints_12m = (entities[0].complaints_12m or 0) + 5
            s.flush()
            again = service.score_entity(s, ids[0], record=False)
            assert model_calls == [1] and again.score != batch[0].score
        finally:
            model.score_one = real
        assert s.get(Entity, ids[1]).risk_score == pytest.approx(batch[1].score, abs=1e-6)  # recorded as before
    assert txcache.peek(s, "scoring.memo") is None  # nothing outlives the transaction
    for a, b in zip(alone, batch):
        assert (a.risk_class, a.model_version) == (b.risk_class, b.model_version)
        assert abs(a.score - b.score) < 1e-9
        assert [r["factor"] for r in a.reasons] == [r["factor"] for r in b.reasons]
        assert [r["zh"] for r in a.reasons] == [r["zh"] for r in b.reasons]
