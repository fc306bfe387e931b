import hashlib
import pickle

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select, update

from engine.db import transaction
from scoring import registry
from scoring.errors import ModelLoadError, ModelVersionNotFound, NoActiveModel
from scoring.features import frame_to_matrix
from scoring.models import ModelVersion


def test_file_round_trip(trained, tmp_path):
    model, region = trained[0].model, trained[1]
    path = tmp_path / "m.skops"
    digest = registry.save_model_file(model, path)
    back = registry.load_model_file(path, sha256=digest)
    X, _, _ = frame_to_matrix(region.entities, strict=False)
    assert np.array_equal(back.score_matrix(X[:1000]), model.score_matrix(X[:1000]))
    assert np.array_equal(back.cutoffs, model.cutoffs)
    assert np.allclose(back.pipeline.decision_function(X[:100]), model.pipeline.decision_function(X[:100]))


def test_corrupted_file_rejected_naming_the_file(trained, tmp_path):
    path = tmp_path / "m.skops"
    registry.save_model_file(trained[0].model, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as exc:
        registry.load_model_file(path)
    assert str(path) in str(exc.value)
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"definitely not a model")
    with pytest.raises(ModelLoadError, match="garbage.skops.*not a skops model"):
        registry.load_model_file(garbage)
    with pytest.raises(ModelLoadError, match="cannot read file"):
        registry.load_model_file(tmp_path / "missing.skops")


def test_sha_mismatch_rejected(trained, tmp_path):
    path = tmp_path / "m.skops"
    registry.save_model_file(trained[0].model, path)
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        registry.load_model_file(path, sha256="0" * 64)


def test_foreign_models_rejected(tmp_path):
    other = tmp_path / "other.skops"
    other.write_bytes(sio.dumps(LogisticRegression()))
    with pytest.raises(ModelLoadError, match="other.skops.*expected a regflow RiskModel"):
        registry.load_model_file(other)
    untrusted = tmp_path / "untrusted.skops"
    untrusted.write_bytes(sio.dumps({"f": np.linalg.norm}))
    with pytest.raises(ModelLoadError, match="foreign model: contains types"):
        registry.load_model_file(untrusted)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelLoadError, match="model.pkl"):
        registry.load_model_file(pkl)


def test_db_versions_one_active(db, trained):
    result = trained[0]
    with transaction(db) as s:
        with pytest.raises(NoActiveModel):
            registry.get_active(s)
        row = registry.store_version(s, result.model, result.metrics, result.metadata)
        assert row.active and row.version.startswith("rm-") and row.metrics["model_version"] == row.version
        assert row.meta["seed"] == 5 and "libraries" in row.meta
        assert row.sha256 == hashlib.sha256(row.artifact).hexdigest()
        twin = registry.store_version(s, result.model, result.metrics, result.metadata)
        assert twin.version != row.version and not twin.active
        other = result.model.__class__(**{**result.model.__dict__, "platt_b": result.model.platt_b + 0.1})
        row2 = registry.store_version(s, other, result.metrics, result.metadata)
        assert not row2.active  # one is already active
        registry.activate_version(s, row2.version)
        actives = s.scalars(select(ModelVersion.version).where(ModelVersion.active.is_(True))).all()
        assert actives == [row2.version]
        version, model = registry.load_active(s)
        assert version == row2.version and model.platt_b == pytest.approx(result.model.platt_b + 0.1)
        with pytest.raises(ModelVersionNotFound):
            registry.activate_version(s, "rm-nope")
        assert [r.version for r in registry.list_versions(s)] == [row.version, twin.version, row2.version]


def test_tampered_db_artifact_rejected(db, trained):
    result = trained[0]
    with transaction(db) as s:
        row = registry.store_version(s, result.model, result.metrics, result.metadata)
        version = row.version
        s.execute(update(ModelVersion).where(ModelVersion.id == row.id)
                  .values(artifact=bytes(row.artifact[:-10]) + b"0123456789"))
    registry._cache.clear()
    with transaction(db) as s:
        with pytest.raises(ModelLoadError, match=f"model_version '{version}'.*sha256 mismatch"):
            registry.load_active(s)
