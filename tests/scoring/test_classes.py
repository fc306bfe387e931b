import numpy as np
import pytest

from scoring.classes import ClassConfig, Override, apply_overrides, assign, fit_cutoffs, load_class_config, shares
from scoring.errors import ScoringError


def test_default_config():
    cfg = load_class_config()
    assert cfg.target_mix["A"] == pytest.approx(0.5142)
    assert [o.when for o in cfg.overrides] == ["no_history", "abnormal_list", "serious_list"]


def test_quantile_cutoffs_reproduce_mix():
    cfg = ClassConfig()
    s = np.random.default_rng(0).random(100_000)
    got = shares(assign(s, fit_cutoffs(s, cfg)))
    for c in "ABCD":
        assert abs(got[c] - cfg.target_mix[c]) < 0.001


def test_configurable_mix(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("target_mix: {A: 25, B: 25, C: 25, D: 25}\n")
    cfg = load_class_config(p)
    assert cfg.target_mix == {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}


def test_override_semantics():
    cfg = load_class_config()
    frame = {"serious_list": np.array([1, 0, 0, 0, 1], bool), "abnormal_list": np.array([0, 1, 1, 0, 1], bool),
             "years_in_business": np.array([5, 5, 5, 0.5, 0.5]),
             **{k: np.zeros(5) for k in ("annual_report_late_3y", "penalties_3y", "abnormal_list_ever",
                                         "complaints_12m", "reg_changes_24m", "linked_bad_entities")}}
    before = np.array([0, 0, 3, 0, 0], np.int8)
    after, rule = apply_overrides(before, frame, cfg)
    assert "".join("ABCD"[i] for i in after) == "DCDBD"
    assert rule.tolist() == [2, 1, -1, 0, 2]


@pytest.mark.parametrize("text, msg", [
    ("target_mix: {A: 1, B: 1, C: 1}\n", "exactly A, B, C, D"),
    ("overrides: [{when: on_mars, set: D}]\n", "unknown predicate"),
    ("overrides: [{when: serious_list, set: E}]\n", "exactly one of set/at_least"),
    ("overrides: [{when: serious_list, set: D, at_least: C}]\n", "exactly one of set/at_least"),
    ("target_mix: [\n", "cannot read"),
])
def test_bad_config(tmp_path, text, msg):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ScoringError, match=msg):
        load_class_config(p)


def test_override_object():
    assert Override(name="x", when="serious_list", set="D").at_least is None
