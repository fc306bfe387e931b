import numpy as np
from sklearn.metrics import roc_auc_score

from scoring.factors import FACTOR_NAMES
from scoring.generator import generate


def test_reproducible_by_seed(region):
    again = generate(20_000, seed=11)
    assert again.snapshot_hash() == region.snapshot_hash()
    for k in region.entities:
        assert np.array_equal(again.entities[k], region.entities[k])
    other = generate(20_000, seed=12)
    assert other.snapshot_hash() != region.snapshot_hash()


def test_columns_and_ids(region):
    e = region.entities
    for name in FACTOR_NAMES + ("id", "uscc", "name", "district", "status", "abnormal_list", "serious_list"):
        assert name in e and len(e[name]) == region.n
    assert len(set(e["uscc"])) == region.n
    assert e["name"][0].startswith("郑州")


def test_marginals_as_documented():
    e = generate(100_000, seed=3, history=False).entities
    years = e["years_in_business"]
    assert 3.6 < np.median(years) < 4.4
    assert 0.27 < np.mean(years < 2) < 0.33
    assert 0.40 < np.mean(e["employee_count"] == 0) < 0.50
    assert 9 < e["employee_count"].mean() < 15
    assert 90 < np.median(e["subscribed_capital"]) < 110
    assert 0.83 < np.mean(e["annual_report_late_3y"] == 0) < 0.91
    assert 0.05 < e["penalties_3y"].mean() < 0.10
    assert 0.08 < e["abnormal_list_ever"].mean() < 0.12
    assert 0.87 < np.mean(e["complaints_12m"] == 0) < 0.93
    assert 0.2 < e["reg_changes_24m"].mean() < 0.4
    assert np.median(e["shared_address_count"]) == 1 and e["shared_address_count"].max() > 50
    assert np.mean(e["linked_bad_entities"] == 0) > 0.9
    assert 0.35 < np.mean(e["industry_section"] == "F") < 0.41
    types, counts = np.unique(e["entity_type"], return_counts=True)
    assert types[np.argmax(counts)] == "llc_sole"
    # correlations through the hidden laxity trait
    assert np.corrcoef(e["penalties_3y"], e["annual_report_late_3y"])[0, 1] > 0.05


def test_history_bayes_auc_base_rate_and_detection(region):
    h = region.history
    control = h["stratum"] == "control"
    share = control.mean()
    assert 0.12 < share < 0.18  # ~15 % of each campaign's draws is pure random
    assert 0.10 <= h["found_problem"][control].mean() <= 0.18
    auc = roc_auc_score(h["found_problem"][control], h["bayes_p"][control])
    assert 0.78 <= auc <= 0.87
    # per-visit detection < 1: some violations go unfound
    assert (h["violation"] & ~h["found_problem"]).any()
    assert not (h["found_problem"] & ~h["violation"]).any()
    # the risk-based stratum is enriched (legacy rule), the control stratum is not
    assert h["found_problem"][~control].mean() > h["found_problem"][control].mean()


def test_history_is_time_aware(region):
    h = region.history
    e = region.entities
    first = h["campaign"] == 0
    ids = h["entity_id"][first]
    now_years = e["years_in_business"][ids - 1]
    # factors are as of the draw date: everyone was younger then, and only registered entities were drawn
    assert np.allclose(now_years - h["years_in_business"][first], (np.datetime64("2025-01-01") -
                       np.datetime64("2022-03-15")).astype(int) / 365.25, atol=0.01)
    assert (h["years_in_business"] > 0).all()
    assert (h["abnormal_list_ever"][first] <= e["abnormal_list_ever"][ids - 1]).all()
    assert len(np.unique(h["drawn_on"])) == 6


def test_bayes_probability_matches_history(region):
    h = region.history
    recomputed = region.bayes_probability(h)
    assert np.allclose(recomputed, h["bayes_p"])
