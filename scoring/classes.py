"""Risk classes A–D: quantile cut-offs stored with a model, then overrides from ``config/classes.yaml``.

Class = position of the calibrated score among the cut-offs (``A`` lowest risk). Cut-offs are the quantiles of
the registry's scores at the cumulative target mix (default Henan: A 51.42 / B 35.30 / C 8.81 / D 4.47 %), so
the shares before overrides reproduce the mix on the registry the model was trained with.

Overrides are applied in file order, a later rule winning over an earlier one. A rule names one predicate
(``when``) and either ``set`` (force the class) or ``at_least`` (raise to at least that class). Predicates:

``serious_list``   on the serious-violation list (严重违法失信名单)
``abnormal_list``  currently on the abnormal-operations list (经营异常名录)
``no_history``     registered less than ``no_history_years`` ago with nothing on record (no late report,
                   penalty, listing, complaint, change, bad link): too little history to score, treated as B
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from scoring.errors import ScoringError

CLASSES = ("A", "B", "C", "D")
DEFAULT_CONFIG = Path(__file__).with_name("config") / "classes.yaml"
PREDICATES = ("serious_list", "abnormal_list", "no_history")
_RULE_TEXT = {
    "serious_list": ("列入严重违法失信名单", "on the serious violation list"),
    "abnormal_list": ("列入经营异常名录", "on the abnormal operations list"),
    "no_history": ("新设立、无历史记录", "newly registered, no history"),
}


@dataclass(frozen=True)
class Override:
    name: str
    when: str
    set: str | None = None
    at_least: str | None = None


@dataclass(frozen=True)
class ClassConfig:
    target_mix: dict[str, float] = field(default_factory=lambda: {"A": 0.5142, "B": 0.3530, "C": 0.0881,
                                                                 "D": 0.0447})
    overrides: tuple[Override, ...] = ()
    no_history_years: float = 1.0
    publish_class: bool = True
    max_reasons: int = 3
    min_reason_delta: float = 0.005

    def cumulative(self) -> np.ndarray:
        mix = np.array([self.target_mix[c] for c in CLASSES], float)
        return np.cumsum(mix / mix.sum())[:-1]

    def to_json(self) -> dict:
        return {"target_mix": dict(self.target_mix), "no_history_years": self.no_history_years,
                "publish_class": self.publish_class, "max_reasons": self.max_reasons,
                "min_reason_delta": self.min_reason_delta,
                "overrides": [{k: v for k, v in o.__dict__.items() if v is not None} for o in self.overrides]}


def load_class_config(path: str | Path | None = None) -> ClassConfig:
    """Read and check the class configuration (``scoring/config/classes.yaml`` by default)."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScoringError(f"{path}: cannot read class configuration: {exc}") from exc
    mix = raw.get("target_mix", ClassConfig().target_mix)
    if set(mix) != set(CLASSES) or any(not isinstance(v, (int, float)) or v <= 0 for v in mix.values()):
        raise ScoringError(f"{path}: target_mix needs positive shares for exactly A, B, C, D, got {mix!r}")
    total = sum(mix.values())
    if abs(total - 1.0) > 0.01 and abs(total - 100.0) > 1.0:
        raise ScoringError(f"{path}: target_mix must sum to 1 (or 100), sums to {total}")
    mix = {k: float(v) / total for k, v in mix.items()}
    overrides = []
    for i, r in enumerate(raw.get("overrides") or []):
        when = r.get("when")
        if when not in PREDICATES:
            raise ScoringError(f"{path}: override {i}: unknown predicate {when!r} (known: {', '.join(PREDICATES)})")
        s, a = r.get("set"), r.get("at_least")
        if (s is None) == (a is None) or (s or a) not in CLASSES:
            raise ScoringError(f"{path}: override {i}: give exactly one of set/at_least with a class A-D")
        overrides.append(Override(name=str(r.get("name", when)), when=when, set=s, at_least=a))
    return ClassConfig(target_mix=mix, overrides=tuple(overrides),
                       no_history_years=float(raw.get("no_history_years", 1.0)),
                       publish_class=bool(raw.get("publish_class", True)),
                       max_reasons=int(raw.get("max_reasons", 3)),
                       min_reason_delta=float(raw.get("min_reason_delta", 0.005)))


def fit_cutoffs(scores: np.ndarray, config: ClassConfig) -> np.ndarray:
    """The three score cut-offs between A|B, B|C, C|D."""
    return np.quantile(np.asarray(scores, float), config.cumulative())


def assign(scores: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """Class index 0..3 (A..D) per score; a score equal to a cut-off goes to the lower-risk class."""
    return np.searchsorted(np.asarray(cutoffs, float), np.asarray(scores, float), side="left").astype(np.int8)


def _predicate(name: str, frame, config: ClassConfig) -> np.ndarray:
    if name in ("serious_list", "abnormal_list"):
        col = frame.get(name) if hasattr(frame, "get") else frame[name]
        if col is None:
            raise ScoringError(f"override {name!r} needs the column {name!r}")
        return np.asarray([bool(v) for v in col]) if np.asarray(col).dtype == object else np.asarray(col, bool)
    # no_history
    years = np.asarray(frame["years_in_business"], float)
    quiet = np.ones(len(years), bool)
    for col in ("annual_report_late_3y", "penalties_3y", "abnormal_list_ever", "complaints_12m",
                "reg_changes_24m", "linked_bad_entities"):
        quiet &= np.asarray(frame[col], float) == 0
    return (years < config.no_history_years) & quiet


def apply_overrides(classes: np.ndarray, frame, config: ClassConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes_after, rule_index)``; ``rule_index`` is the last rule that changed a row, or -1."""
    out = np.asarray(classes, np.int8).copy()
    rule = np.full(len(out), -1, np.int16)
    for i, o in enumerate(config.overrides):
        hit = _predicate(o.when, frame, config)
        if o.set is not None:
            new = np.where(hit, CLASSES.index(o.set), out)
        else:
            new = np.where(hit, np.maximum(out, CLASSES.index(o.at_least)), out)
        rule[new != out] = i
        out = new.astype(np.int8)
    return out, rule


def override_reason(config: ClassConfig, rule_index: int, new_class: str) -> dict:
    o = config.overrides[rule_index]
    zh, en = _RULE_TEXT[o.when]
    return {"factor": f"override:{o.name}", "value": True, "delta": None,
            "zh": f"{zh} → {new_class}类", "en": f"{en} → class {new_class}"}


def shares(class_idx: np.ndarray) -> dict[str, float]:
    counts = np.bincount(np.asarray(class_idx, np.int64), minlength=4)[:4]
    total = max(int(counts.sum()), 1)
    return {c: round(float(counts[i]) / total, 6) for i, c in enumerate(CLASSES)}
