import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from scoring.features import frame_to_matrix
from scoring.train import evaluate, precision_at_k, time_split, wilson_interval


def test_targets_met_on_synthetic_registry(trained):
    result, _ = trained
    m = result.metrics
    assert m["synthetic"] is True
    assert 0.78 <= m["bayes_auc"] <= 0.87
    assert 0.10 <= m["base_rate"] <= 0.18
    assert m["auc"] >= m["bayes_auc"] - 0.02
    assert m["precision_at_k"] >= 0.95 * m["oracle_precision_at_k"]
    assert m["visits_avoided_per_100"] == pytest.approx(100 * (m["precision_at_k"] - m["base_rate"]), abs=0.02)
    assert all(m["targets"].values()), m["targets"]
    lo, hi = m["precision_at_k_ci95"]
    assert lo < m["precision_at_k"] < hi
    assert m["brier"] < m["base_rate"] * (1 - m["base_rate"])  # better than the constant forecast


def test_class_mix_and_monotone_observed_rates(trained):
    m = trained[0].metrics
    for c, target in {"A": 0.5142, "B": 0.3530, "C": 0.0881, "D": 0.0447}.items():
        assert abs(m["class_shares"][c] - target) <= 0.005
    rates = [m["observed_rate_by_class"][c] for c in "ABCD"]
    assert rates == sorted(rates) and len(set(rates)) == 4
    after = m["class_shares_after_overrides"]
    assert after["D"] > m["class_shares"]["D"]  # serious list forced to D
    assert sum(after.values()) == pytest.approx(1.0, abs=1e-6)


def test_one_pipeline_one_calibrator_and_compared_candidates(trained):
    result, _ = trained
    model = result.model
    assert isinstance(model.pipeline, Pipeline)
    assert [n for n, _ in model.pipeline.steps] == ["features", "model"]
    assert set(result.metrics["validation_auc"]) == {"logreg_spline", "hgb", "hgb_additive"}
    assert result.metrics["calibration"]["method"] == "platt"
    assert isinstance(model.platt_a, float) and isinstance(model.platt_b, float)
    assert result.metadata["split"]["test_dates"] > result.metadata["split"]["validation_dates"]
    assert max(result.metadata["split"]["train_dates"]) < min(result.metadata["split"]["validation_dates"])
    assert {"numpy", "scikit-learn", "skops"} <= set(result.metadata["libraries"])


def test_tables_reproduce_the_pipeline(trained):
    model = trained[0].model
    if model.tables is None:
        pytest.skip("non-additive model chosen")
    assert model.table_max_error < 1e-3
    X, _, _ = frame_to_matrix(trained[1].entities, strict=False)
    X = X[:2000]
    assert np.allclose(model.decision(X), model.pipeline.decision_function(X), atol=1e-3)


def test_metric_helpers():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.arange(10)[::-1] / 10.0
    prec, k, hits = precision_at_k(y, s, 0.2)
    assert (prec, k, hits) == (0.5, 2, 1)
    lo, hi = wilson_interval(5, 10)
    assert 0.23 < lo < 0.24 and 0.76 < hi < 0.77
    out = evaluate(y, s, bayes_p=s)
    assert out["auc"] == out["bayes_auc"]
    tr, va, te = time_split(np.array(["2022-01-01", "2022-06-01", "2023-01-01", "2022-01-01"]))
    assert tr.tolist() == [True, False, False, True] and te.tolist() == [False, False, True, False]
