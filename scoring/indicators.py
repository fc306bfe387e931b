"""Expert + objective indicator score (0–100), defined in ``config/indicators.yaml``; needs no outcome history.

For indicator ``j`` and entity ``i``: transform the factor, clip at the fitted 99th percentile, min-max scale
to ``s_ij`` in [0, 1] (flipped when lower values are riskier). Weights:

* expert ``w_exp_j`` = group weight × within-group weight (both normalised), as an AHP/Delphi panel would set;
* **entropy**: ``p_ij = s_ij / sum_i s_ij``, ``e_j = -(1/ln n) sum_i p_ij ln p_ij``, ``w_j ∝ 1 - e_j``;
* **CRITIC**: ``C_j = sigma_j * sum_k (1 - r_jk)`` (``r`` = Pearson correlation), ``w_j ∝ C_j``;
* objective ``w_obj`` = ``entropy``·entropy + ``critic``·CRITIC (YAML), combined
  ``w = alpha·w_exp + (1 - alpha)·w_obj``; score = ``100 · sum_j w_j s_ij``.

Objective weights are fitted on the registry given to :meth:`IndicatorScore.fit` (all entities, not outcomes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from scoring.errors import ScoringError
from scoring.factors import FACTOR_BY_NAME

DEFAULT_CONFIG = Path(__file__).with_name("config") / "indicators.yaml"
TRANSFORMS = ("identity", "log1p", "log10_distance", "excess", "map")


@dataclass(frozen=True)
class Indicator:
    name: str
    group: str
    field: str
    transform: str
    direction: str
    expert_weight: float  # group weight × within-group weight, normalised over all indicators
    center: float = 0.0
    levels: tuple = ()


def load_indicator_config(path: str | Path | None = None) -> tuple[list[Indicator], dict]:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScoringError(f"{path}: cannot read indicator configuration: {exc}") from exc
    groups = raw.get("groups") or {}
    gsum = sum(float(g["weight"]) for g in groups.values())
    out = []
    for gname, g in groups.items():
        isum = sum(float(i["weight"]) for i in g["indicators"])
        for i in g["indicators"]:
            if i["field"] not in FACTOR_BY_NAME:
                raise ScoringError(f"{path}: indicator {i['name']}: unknown field {i['field']!r}")
            if i["transform"] not in TRANSFORMS:
                raise ScoringError(f"{path}: indicator {i['name']}: unknown transform {i['transform']!r}")
            if i["direction"] not in ("up", "down"):
                raise ScoringError(f"{path}: indicator {i['name']}: direction must be up or down")
            out.append(Indicator(name=i["name"], group=gname, field=i["field"], transform=i["transform"],
                                 direction=i["direction"],
                                 expert_weight=float(g["weight"]) / gsum * float(i["weight"]) / isum,
                                 center=float(i.get("center", 0.0)),
                                 levels=tuple(sorted((i.get("levels") or {}).items()))))
    opts = {"alpha": float(raw.get("alpha", 0.5)),
            "entropy": float((raw.get("objective") or {}).get("entropy", 0.5)),
            "critic": float((raw.get("objective") or {}).get("critic", 0.5))}
    return out, opts


def _transform(ind: Indicator, values) -> np.ndarray:
    if ind.transform == "map":
        levels = dict(ind.levels)
        v = np.asarray(values).astype(str)
        return np.array([levels.get(x, 0.5) for x in np.unique(v)])[np.unique(v, return_inverse=True)[1]]
    x = np.asarray(values, float)
    if ind.transform == "log1p":
        return np.log1p(np.maximum(x, 0))
    if ind.transform == "log10_distance":
        return np.abs(np.log10(np.maximum(x, 0.01)) - ind.center)
    if ind.transform == "excess":
        return np.log1p(np.maximum(x - ind.center, 0))
    return x


def entropy_weights(S: np.ndarray) -> np.ndarray:
    n = S.shape[0]
    col = S.sum(axis=0)
    P = np.divide(S, col, out=np.zeros_like(S), where=col > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P > 0, P * np.log(P), 0.0)
    e = -plogp.sum(axis=0) / np.log(n)
    d = np.clip(1 - e, 0, None)
    return d / d.sum()


def critic_weights(S: np.ndarray) -> np.ndarray:
    sd = S.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = np.corrcoef(S, rowvar=False)
    R = np.nan_to_num(R, nan=0.0)
    C = sd * (1 - R).sum(axis=0)
    return C / C.sum()


@dataclass
class IndicatorScore:
    indicators: list
    lo: np.ndarray
    hi: np.ndarray
    w_expert: np.ndarray
    w_entropy: np.ndarray
    w_critic: np.ndarray
    weights: np.ndarray
    alpha: float

    @classmethod
    def fit(cls, frame, path: str | Path | None = None) -> "IndicatorScore":
        inds, opts = load_indicator_config(path)
        T = np.column_stack([_transform(i, frame[i.field]) for i in inds])
        lo = T.min(axis=0)
        hi = np.quantile(T, 0.99, axis=0)
        hi = np.where(hi > lo, hi, T.max(axis=0))
        hi = np.where(hi > lo, hi, lo + 1)
        S = _scale(T, lo, hi, inds)
        w_exp = np.array([i.expert_weight for i in inds])
        w_ent, w_cri = entropy_weights(S), critic_weights(S)
        mix = opts["entropy"] + opts["critic"]
        w_obj = (opts["entropy"] * w_ent + opts["critic"] * w_cri) / mix
        w = opts["alpha"] * w_exp + (1 - opts["alpha"]) * w_obj
        return cls(inds, lo, hi, w_exp, w_ent, w_cri, w / w.sum(), opts["alpha"])

    def score(self, frame, mask: np.ndarray | None = None) -> np.ndarray:
        """0–100 score (higher = riskier) for the rows of ``frame`` (optionally only where ``mask``)."""
        cols = []
        for i in self.indicators:
            v = np.asarray(frame[i.field])
            cols.append(_transform(i, v[mask] if mask is not None else v))
        return 100.0 * _scale(np.column_stack(cols), self.lo, self.hi, self.indicators) @ self.weights

    def weights_json(self) -> list[dict]:
        return [{"name": i.name, "group": i.group, "field": i.field, "expert": round(float(a), 4),
                 "entropy": round(float(b), 4), "critic": round(float(c), 4), "combined": round(float(d), 4)}
                for i, a, b, c, d in zip(self.indicators, self.w_expert, self.w_entropy, self.w_critic,
                                         self.weights)]


def _scale(T: np.ndarray, lo: np.ndarray, hi: np.ndarray, inds) -> np.ndarray:
    S = (np.clip(T, lo, hi) - lo) / (hi - lo)
    down = np.array([i.direction == "down" for i in inds])
    S[:, down] = 1 - S[:, down]
    return S
