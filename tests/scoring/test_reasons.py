
import numpy as np

from scoring.classes import load_class_config
from scoring.features import frame_to_matrix


def _row(region, i, **changes):
    row = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in region.entities.items()}
    row.update(changes)
    return row


def _quiet(region):
    """An established, spotless entity to modify."""
    e = region.entities
    idx = np.flatnonzero((e["complaints_12m"] == 0) & (e["penalties_3y"] == 0) & (e["annual_report_late_3y"] == 0)
                         & ~e["abnormal_list_ever"] & (e["years_in_business"] > 8) & (e["employee_count"] > 5)
                         & ~e["abnormal_list"] & ~e["serious_list"])
    return int(idx[0])


def test_complaints_reason_in_both_languages(trained):
    model, region = trained[0].model, trained[1]
    i = _quiet(region)
    base, _, _ = model.score_one(_row(region, i))
    score, klass, reasons = model.score_one(_row(region, i, complaints_12m=3))
    assert score > base
    top = reasons[0]
    assert top["factor"] == "complaints_12m" and top["value"] == 3
    assert top["zh"].startswith("12个月内投诉3次 (+0.")
    assert top["en"].startswith("3 complaints in 12 months (+0.")
    assert top["delta"] > 0.01
    deltas = [r["delta"] for r in reasons]
    assert deltas == sorted(deltas, reverse=True)


def test_reasons_only_raise_and_respect_limits(trained):
    model, region = trained[0].model, trained[1]
    cfg = load_class_config()
    for i in range(200):
        _, _, reasons = model.score_one(_row(region, i), config=cfg)
        model_reasons = [r for r in reasons if not r["factor"].startswith("override:")]
        assert len(model_reasons) <= cfg.max_reasons
        assert all(r["delta"] >= cfg.min_reason_delta for r in model_reasons)


def test_override_reason_first(trained):
    model, region = trained[0].model, trained[1]
    i = _quiet(region)
    _, klass, reasons = model.score_one(_row(region, i, serious_list=True), config=load_class_config())
    assert klass == "D"
    assert reasons[0]["factor"] == "override:serious_list" and "严重违法失信名单" in reasons[0]["zh"]


def test_contributions_are_exact_for_additive_model(trained):
    model, region = trained[0].model, trained[1]
    if model.tables is None:
        return
    X, _, _ = frame_to_matrix(region.entities, strict=False)
    phi = model.contributions(X[:500])
    assert np.allclose(model.base + phi.sum(axis=1), model.pipeline.decision_function(X[:500]), atol=1e-3)
    assert abs(model.contributions(X).mean(axis=0)).max() < 1e-6  # centred on the registry average
