import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scoring.indicators import IndicatorScore, critic_weights, entropy_weights, load_indicator_config


def test_entropy_weights_favour_dispersed_indicators():
    S = np.array([[1.0, 0.5], [0.0, 0.5], [0.0, 0.5], [0.0, 0.5]])
    w = entropy_weights(S)
    assert w == pytest.approx([1.0, 0.0])


def test_critic_weights():
    rng = np.random.default_rng(0)
    a = rng.random(1000)
    S = np.column_stack([a, a, rng.random(1000)])
    w = critic_weights(S)
    assert w.sum() == pytest.approx(1.0)
    assert w[2] > w[0]  # an independent indicator carries more information than two copies


def test_expert_weights_sum_to_one():
    inds, opts = load_indicator_config()
    assert sum(i.expert_weight for i in inds) == pytest.approx(1.0)
    assert len({i.group for i in inds}) == 5
    assert 0 <= opts["alpha"] <= 1


def test_score_range_direction_and_signal(region):
    ind = IndicatorScore.fit(region.entities)
    s = ind.score(region.entities)
    assert s.min() >= 0 and s.max() <= 100
    assert ind.weights.sum() == pytest.approx(1.0)
    one = {k: v[:1].copy() for k, v in region.entities.items()}
    more = {k: v.copy() for k, v in one.items()}
    more["complaints_12m"] = more["complaints_12m"] + 5
    assert ind.score(more)[0] > ind.score(one)[0]
    older = {k: v.copy() for k, v in one.items()}
    older["years_in_business"] = older["years_in_business"] + 20
    assert ind.score(older)[0] < ind.score(one)[0]  # direction "down": younger is riskier
    h = region.history
    c = h["stratum"] == "control"
    assert roc_auc_score(h["found_problem"][c], ind.score(h, mask=c)) > 0.7


def test_indicator_reported_beside_model(trained):
    m = trained[0].metrics
    assert 0.6 < m["indicator_auc"] < m["auc"]
    assert len(trained[0].metadata["indicator_weights"]) == 12
