"""A trained risk model ready to score: pipeline + one Platt calibrator + class cut-offs + reason tables.

Score = calibrated probability that a random inspection of the entity finds a problem.

For an *additive* pipeline (logistic regression on per-factor splines, or boosting without interactions) the
logit is ``base + sum_j phi_j(x_j)``. At training time each ``phi_j`` is tabulated on a grid covering every
valid value (integers exactly; continuous factors on a 4,097-point log grid) and checked against the pipeline
(``table_max_error``, logit units). Scoring then needs one ``np.interp`` per factor, and the reasons are the
exact per-factor terms: ``phi_j(x_j) - mean_registry(phi_j)`` are the exact interventional Shapley values of the
logit. A reason's delta is reported in probability: ``p(x) - p(x with factor j at its registry average)``.

For a non-additive pipeline the pipeline itself scores, and a reason's delta is the partial effect of moving
factor ``j`` to the reference entity's value (median / most common category), computed for all factors in one
vectorised call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.special import expit

from scoring.classes import CLASSES, ClassConfig, apply_overrides, assign, override_reason
from scoring.factors import CATEGORICAL_INPUTS, CATEGORIES, FACTOR_BY_NAME, MODEL_INPUTS, category_label
from scoring.features import N_NUM, frame_to_matrix

GRID_SIZE = 4097


@lru_cache(maxsize=None)
def factor_grid(name: str) -> np.ndarray:
    """Every value the table of factor ``name`` is evaluated on (clamped outside, which is exact for our models)."""
    grid = _grid(name)
    grid.setflags(write=False)
    return grid


def _grid(name: str) -> np.ndarray:
    if name == "years_in_business":
        return np.expm1(np.linspace(0.0, np.log1p(80.0), GRID_SIZE))
    if name == "subscribed_capital":
        return np.concatenate([[0.0], np.logspace(-2, 8, GRID_SIZE - 1)])
    if name == "abnormal_list_ever":
        return np.array([0.0, 1.0])
    if name in CATEGORIES:
        return np.arange(-1, len(CATEGORIES[name]), dtype=float)  # -1 = district outside the region
    return np.arange(0, GRID_SIZE, dtype=float)  # counts: exact integers, constant beyond


@dataclass
class RiskModel:
    """Everything needed to score; stored as one skops artifact (see ``scoring.registry``)."""

    kind: str
    pipeline: object  # sklearn Pipeline(ColumnTransformer, estimator)
    platt_a: float
    platt_b: float
    cutoffs: np.ndarray  # 3 score cut-offs A|B, B|C, C|D
    reference: np.ndarray  # one model-matrix row: the registry's median / most common values
    tables: list | None = None  # per model input: phi_j on factor_grid(name), centred on its registry mean
    base: float = 0.0  # logit at "every factor at its registry-average contribution"
    table_max_error: float | None = None
    class_config: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)  # test-set arrays (y, p, bayes, indicator) for the report

    # ---- scoring ---------------------------------------------------------------------------------------
    def decision(self, X: np.ndarray) -> np.ndarray:
        if self.tables is not None:
            return self.base + self.contributions(X).sum(axis=1)
        return self.pipeline.decision_function(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-factor logit contributions ``phi`` (n × 13), additive models only."""
        out = np.empty(X.shape, np.float64)
        for j, name in enumerate(MODEL_INPUTS):
            grid = factor_grid(name)
            table = self.tables[j]
            if j >= N_NUM:  # categorical code -1..k-1 → index 0..k
                out[:, j] = table[np.clip(X[:, j].astype(np.int64) + 1, 0, len(table) - 1)]
            else:
                out[:, j] = np.interp(X[:, j], grid, table)
        return out

    def calibrate(self, decision: np.ndarray) -> np.ndarray:
        return expit(self.platt_a * decision + self.platt_b)

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        return self.calibrate(self.decision(X))

    def classes(self, scores: np.ndarray) -> np.ndarray:
        return assign(scores, self.cutoffs)

    # ---- reasons ---------------------------------------------------------------------------------------
    def reason_deltas(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, deltas)``: deltas (n × 13) = score minus score with factor j at its average/reference."""
        if self.tables is not None:
            phi = self.contributions(X)
            d = self.base + phi.sum(axis=1)
            p = self.calibrate(d)
            return p, p[:, None] - self.calibrate(d[:, None] - phi)
        n, m = X.shape
        stacked = np.repeat(X[None, :, :], m + 1, axis=0)
        for j in range(m):
            stacked[j + 1, :, j] = self.reference[j]
        p_all = self.calibrate(self.pipeline.decision_function(stacked.reshape(-1, m))).reshape(m + 1, n)
        return p_all[0], (p_all[0][None, :] - p_all[1:]).T

    def render_reasons(self, X_row: np.ndarray, deltas_row: np.ndarray, raw_row: dict | None = None,
                       max_reasons: int | None = None, min_delta: float | None = None) -> list[dict]:
        """The top factors that raised this entity's score, with words in Chinese and English."""
        cfg = self.class_config
        max_reasons = max_reasons or cfg.get("max_reasons", 3)
        min_delta = cfg.get("min_reason_delta", 0.005) if min_delta is None else min_delta
        order = np.argsort(-deltas_row)[:max_reasons]
        out = []
        for j in order:
            delta = float(deltas_row[j])
            if delta < min_delta:
                break
            out.append(reason_text(MODEL_INPUTS[j], X_row[j], delta, raw_row))
        return out

    def explain(self, X: np.ndarray, raw_rows: list[dict] | None = None) -> tuple[np.ndarray, list[list[dict]]]:
        p, deltas = self.reason_deltas(X)
        reasons = [self.render_reasons(X[i], deltas[i], raw_rows[i] if raw_rows else None) for i in range(len(X))]
        return p, reasons

    # ---- one entity -----------------------------------------------------------------------------------
    def score_one(self, row: dict, entity_id=None, config: ClassConfig | None = None) -> tuple[float, str, list[dict]]:
        """Validate and score one entity given as a dict of columns; returns ``(score, class, reasons)``."""
        out = self.score_many([row], [entity_id if entity_id is not None else row.get("id", "row 0")], config,
                              strict=True)
        return out[0]

    def score_many(self, rows: list[dict], ids: list, config: ClassConfig | None = None,
                   strict: bool = False) -> list[tuple[float, str, list[dict]] | None]:
        """:meth:`score_one` for many rows at once (one matrix): ``(score, class, reasons)`` per row, ``None``
        for a row that does not validate (with ``strict`` the first such row raises instead)."""
        frame = {k: [r.get(k) for r in rows] for k in MODEL_INPUTS}
        X, valid, _errors = frame_to_matrix(frame, ids=ids, strict=strict)
        out: list = [None] * len(rows)
        idx = np.flatnonzero(valid)
        if not len(idx):
            return out
        Xv = X[idx]
        p, deltas = self.reason_deltas(Xv)
        cls = self.classes(p)
        rule = np.full(len(idx), -1)
        if config is not None and config.overrides:
            sub = {k: [frame[k][i] for i in idx] for k in MODEL_INPUTS}
            sub.update({k: [rows[i].get(k, False) for i in idx] for k in ("serious_list", "abnormal_list")})
            cls, rule = apply_overrides(cls, sub, config)
        for r, i in enumerate(idx):
            reasons = self.render_reasons(Xv[r], deltas[r], rows[i])
            if rule[r] >= 0:
                reasons = [override_reason(config, int(rule[r]), CLASSES[cls[r]])] + reasons
            out[i] = (float(p[r]), CLASSES[int(cls[r])], reasons)
        return out


def reason_text(name: str, x: float, delta: float, raw_row: dict | None = None) -> dict:
    if name in CATEGORICAL_INPUTS:
        code = int(x)
        value = CATEGORIES[name][code] if code >= 0 else (raw_row or {}).get(name, "other")
        zh_label = category_label(name, value, "zh")
        en_label = category_label(name, value, "en")
        if name == "district":
            zh, en = f"所在辖区：{zh_label}", f"district: {en_label}"
        else:
            f = FACTOR_BY_NAME[name]
            zh, en = f.zh.format(v=zh_label), f.en.format(v=en_label)
    else:
        f = FACTOR_BY_NAME[name]
        if name == "abnormal_list_ever":
            value = bool(x)
            zh, en = f.zh, f.en
        elif f.kind == "int":
            value = int(x)
            zh, en = f.zh.format(v=value), f.en.format(v=value)
        else:
            value = float(x)
            zh, en = f.zh.format(v=value), f.en.format(v=value)
    sign = f"+{delta:.2f}" if delta >= 0.005 else f"+{delta:.3f}"
    return {"factor": name, "value": value, "delta": round(delta, 4), "zh": f"{zh} ({sign})", "en": f"{en} ({sign})"}


def compile_additive(model: RiskModel, X_registry: np.ndarray, rng: np.random.Generator) -> None:
    """Tabulate each factor's logit term and check the tables against the pipeline (sets ``tables``)."""
    ref = model.reference
    f_ref = float(model.pipeline.decision_function(ref[None, :])[0])
    raw_tables = []
    for j, name in enumerate(MODEL_INPUTS):
        grid = factor_grid(name)
        Xg = np.repeat(ref[None, :], len(grid), axis=0)
        Xg[:, j] = grid
        raw_tables.append(model.pipeline.decision_function(Xg) - f_ref)
    sample = X_registry[rng.choice(len(X_registry), size=min(len(X_registry), 20000), replace=False)]
    model.tables = raw_tables
    model.base = f_ref
    phi = model.contributions(X_registry)
    means = phi.mean(axis=0)
    model.tables = [t - m for t, m in zip(raw_tables, means)]
    model.base = f_ref + float(means.sum())
    approx = model.decision(sample)
    exact = model.pipeline.decision_function(sample)
    model.table_max_error = float(np.max(np.abs(approx - exact)))
