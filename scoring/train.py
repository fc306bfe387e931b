"""Train, select, calibrate and evaluate the risk model on an inspection history (synthetic or recorded).

Time-aware split (features are always as of the draw date):

* **test**: the control stratum of the latest draw date — random inspections the model never selected;
  ``base_rate``, ``precision_at_k`` and every headline metric come from it;
* **validation**: the draw date before it — picks the candidate (weighted AUC) and fits the one Platt calibrator;
* **train**: every earlier inspection, control *and* risk-based.

Selection is corrected, not avoided: risk-based draws chose entities by a rule on observed factors, so given
those factors the outcome is unaffected by selection (ignorable), and inverse-probability weights
``1 / P(inspected)`` (recorded with every draw) make the weighted training and validation samples represent
the whole registry. Training on the control stratum alone would be unbiased too but throws away ~85 % of the
labels (the AUC loss is measurable); training unweighted on all inspections over-represents risky
entities and miscalibrates. Evaluation never uses model-selected inspections.
"""
from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass

import numpy as np
import scipy
import sklearn
import skops
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from scoring import classes as cls
from scoring.features import ADDITIVE, CANDIDATES, N_NUM, frame_to_matrix
from scoring.generator import generate
from scoring.indicators import IndicatorScore
from scoring.predict import RiskModel, compile_additive

K_FRAC = 0.10
ADDITIVE_TOLERANCE = 0.003  # prefer an additive model unless a non-additive one beats it by more (val AUC)


@dataclass
class TrainResult:
    model: RiskModel
    metrics: dict
    metadata: dict


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (round(float(centre - half), 4), round(float(centre + half), 4))


def top_k(scores: np.ndarray, frac: float) -> np.ndarray:
    """Indices of the top ``frac`` by score (stable: ties keep input order)."""
    k = max(1, int(round(frac * len(scores))))
    return np.argsort(-np.asarray(scores), kind="stable")[:k]


def precision_at_k(y: np.ndarray, scores: np.ndarray, frac: float = K_FRAC) -> tuple[float, int, int]:
    idx = top_k(scores, frac)
    hits = int(np.asarray(y)[idx].sum())
    return hits / len(idx), len(idx), hits


def _r(x, nd=4):
    return None if x is None else round(float(x), nd)


def evaluate(y: np.ndarray, p: np.ndarray, bayes_p: np.ndarray | None = None, frac: float = K_FRAC) -> dict:
    """Headline metrics on random-inspection labels ``y`` (control stratum)."""
    y = np.asarray(y, bool)
    base = float(y.mean())
    prec, k, hits = precision_at_k(y, p, frac)
    out = {
        "n_test": int(len(y)), "k": k, "base_rate": _r(base), "auc": _r(roc_auc_score(y, p)),
        "precision_at_k": _r(prec), "precision_at_k_ci95": wilson_interval(hits, k),
        "visits_avoided_per_100": _r(100 * (prec - base), 2),
        "relative_reduction_lawabiding_visits": _r(1 - (1 - prec) / (1 - base)) if base < 1 else None,
        "brier": _r(brier_score_loss(y, p), 5), "mean_score": _r(np.mean(p)),
    }
    if bayes_p is not None:
        bprec, _, _ = precision_at_k(y, bayes_p, frac)
        out.update(bayes_auc=_r(roc_auc_score(y, bayes_p)), oracle_precision_at_k=_r(bprec),
                   bayes_brier=_r(brier_score_loss(y, bayes_p), 5))
    return out


def time_split(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (train, validation, test) by draw date: last date test, the one before validation."""
    dates = np.asarray(dates).astype("U10")
    uniq = np.unique(dates)
    if len(uniq) >= 3:
        return dates < uniq[-2], dates == uniq[-2], dates == uniq[-1]
    order = np.sort(dates)
    q60, q80 = order[int(0.6 * len(order))], order[int(0.8 * len(order))]
    if q60 == q80 or q80 == order[-1]:
        raise ValueError("need inspections on at least three distinct dates for a time-aware split")
    return dates < q60, (dates >= q60) & (dates < q80), dates >= q80


def fit_platt(decision: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(decision.reshape(-1, 1), y, sample_weight=w)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _weighted_auc(y, s, w):
    return float(roc_auc_score(y, s, sample_weight=w))


def train_model(history, registry, *, seed: int, class_config: cls.ClassConfig,
                candidates: tuple[str, ...] = ("logreg_spline", "hgb", "hgb_additive"),
                selection: str = "ipw", bayes_registry: np.ndarray | None = None,
                data_meta: dict | None = None, indicator=None, n_threads: int | None = 1) -> TrainResult:
    """Fit every candidate, pick by validation, calibrate once, fit class cut-offs on ``registry``, evaluate.

    ``history`` needs ``drawn_on`` (ISO date), ``stratum`` (``control``/``risk``), ``found_problem``, the
    factors as of the draw date and, for ``selection="ipw"``, ``pi_overall``; optional ``bayes_p``.
    ``registry`` holds the current factors of every entity (cut-offs, class shares, reason baselines).
    ``n_threads`` caps BLAS/OpenMP threads while fitting (default 1: on the shared 2-core machine, OpenMP
    spin-waiting under load made gradient boosting ~20× slower with two threads than with one; None = no cap).
    """
    with threadpool_limits(limits=n_threads):
        return _train_model(history, registry, seed=seed, class_config=class_config, candidates=candidates,
                            selection=selection, data_meta=data_meta, indicator=indicator)


def _train_model(history, registry, *, seed, class_config, candidates, selection, data_meta, indicator):
    X, valid, errors = frame_to_matrix(history, strict=False)
    if not valid.all():
        raise ValueError(f"{(~valid).sum()} inspection records have invalid factors, first: {errors[0]}")
    y = np.asarray(history["found_problem"], bool)
    control = np.asarray(history["stratum"]).astype("U7") == "control"
    tr, va, te = time_split(history["drawn_on"])
    te = te & control
    if selection == "ipw" and "pi_overall" in history:
        w = 1.0 / np.asarray(history["pi_overall"], float)
    else:
        w = np.ones(len(y))
    if selection == "control_only":
        tr = tr & control
        va = va & control
    if y[te].sum() == 0 or y[tr].sum() == 0:
        raise ValueError("no problems found in the training or test inspections")
    w_tr = w[tr] / w[tr].mean()
    w_va = w[va] / w[va].mean()

    scores = {}
    fitted = {}
    for name in candidates:
        pipe = CANDIDATES[name](seed)
        pipe.fit(X[tr], y[tr], model__sample_weight=w_tr)
        d_va = pipe.decision_function(X[va])
        scores[name] = round(_weighted_auc(y[va], d_va, w_va), 5)
        fitted[name] = pipe
    best_add = max((c for c in candidates if c in ADDITIVE), key=scores.get, default=None)
    best_any = max(candidates, key=scores.get)
    chosen = best_add if best_add and scores[best_any] - scores[best_add] <= ADDITIVE_TOLERANCE else best_any
    pipe = fitted[chosen]
    a, b = fit_platt(pipe.decision_function(X[va]), y[va], w_va)

    X_reg, reg_valid, reg_errors = frame_to_matrix(registry, strict=False)
    ref = np.median(X_reg[reg_valid], axis=0)
    for j in range(N_NUM, X_reg.shape[1]):
        codes, counts = np.unique(X_reg[reg_valid, j], return_counts=True)
        ref[j] = codes[np.argmax(counts)]
    model = RiskModel(kind=chosen, pipeline=pipe, platt_a=a, platt_b=b, cutoffs=np.zeros(3), reference=ref,
                      class_config=class_config.to_json())
    if chosen in ADDITIVE:
        compile_additive(model, X_reg[reg_valid], np.random.default_rng(seed))
        if model.table_max_error > 1e-3:
            model.tables = None  # tables disagree with the pipeline: score with the pipeline itself
    p_reg = model.score_matrix(X_reg[reg_valid])
    model.cutoffs = cls.fit_cutoffs(p_reg, class_config)
    c_reg = model.classes(p_reg)
    reg_frame = {k: np.asarray(registry[k])[reg_valid] for k in registry}
    c_after, _ = cls.apply_overrides(c_reg, reg_frame, class_config)

    p_te = model.score_matrix(X[te])
    bayes_te = np.asarray(history["bayes_p"], float)[te] if "bayes_p" in history else None
    metrics = evaluate(y[te], p_te, bayes_te)
    metrics["base_rate_all_controls"] = _r(y[control].mean())
    c_te = model.classes(p_te)
    metrics["observed_rate_by_class"] = {c: (_r(y[te][c_te == i].mean()) if (c_te == i).any() else None)
                                         for i, c in enumerate(cls.CLASSES)}
    metrics["n_test_by_class"] = {c: int((c_te == i).sum()) for i, c in enumerate(cls.CLASSES)}
    metrics["class_shares"] = cls.shares(c_reg)
    metrics["class_shares_after_overrides"] = cls.shares(c_after)
    metrics["target_mix"] = {k: round(v, 6) for k, v in class_config.target_mix.items()}
    metrics["max_class_share_gap_points"] = _r(100 * max(abs(metrics["class_shares"][c] - class_config.target_mix[c])
                                                         for c in cls.CLASSES), 3)
    metrics["validation_auc"] = scores
    metrics["chosen"] = chosen
    metrics["n_train"], metrics["n_validation"] = int(tr.sum()), int(va.sum())
    metrics["n_registry"], metrics["n_registry_invalid"] = int(reg_valid.sum()), int((~reg_valid).sum())
    metrics["selection_correction"] = selection
    metrics["calibration"] = {"method": "platt", "a": _r(a, 5), "b": _r(b, 5)}
    metrics["cutoffs"] = [_r(c, 6) for c in model.cutoffs]
    metrics["table_max_error_logit"] = model.table_max_error
    if indicator is not None:
        ind_te = indicator.score(history, mask=te)
        ind_prec, _, _ = precision_at_k(y[te], ind_te)
        metrics["indicator_auc"] = _r(roc_auc_score(y[te], ind_te))
        metrics["indicator_precision_at_k"] = _r(ind_prec)
    if bayes_te is not None:
        metrics["targets"] = {
            "auc_ge_bayes_minus_0.02": bool(metrics["auc"] >= metrics["bayes_auc"] - 0.02),
            "precision_ge_0.95_oracle": bool(metrics["precision_at_k"] >= 0.95 * metrics["oracle_precision_at_k"]),
            "class_shares_within_0.5pt": bool(metrics["max_class_share_gap_points"] <= 0.5),
            "observed_rate_rises_ABCD": bool(_rising(metrics["observed_rate_by_class"])),
        }
    metrics["synthetic"] = bool(bayes_te is not None)
    model.evaluation = {"y": y[te].astype(np.int8), "p": p_te.astype(np.float64),
                        "bayes": bayes_te if bayes_te is not None else np.zeros(0),
                        "indicator": ind_te if indicator is not None else np.zeros(0)}
    metadata = {
        "seed": seed, "candidates": list(candidates), "chosen": chosen, "selection": selection,
        "k_frac": K_FRAC, "class_config": class_config.to_json(), "libraries": library_versions(),
        "data": data_meta or {}, "history_sha256": _hash_frame(history),
        "split": {"train_dates": sorted(set(np.asarray(history["drawn_on"])[tr].tolist())),
                  "validation_dates": sorted(set(np.asarray(history["drawn_on"])[va].tolist())),
                  "test_dates": sorted(set(np.asarray(history["drawn_on"])[te].tolist()))},
    }
    return TrainResult(model=model, metrics=metrics, metadata=metadata)


def _rising(rates: dict) -> bool:
    vals = [rates[c] for c in cls.CLASSES]
    return all(v is not None for v in vals) and all(a < b for a, b in zip(vals, vals[1:]))


def _hash_frame(frame) -> str:
    h = hashlib.sha256()
    for k in sorted(frame):
        h.update(k.encode())
        h.update(np.ascontiguousarray(np.asarray(frame[k])).tobytes())
    return h.hexdigest()


def library_versions() -> dict:
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "skops": skops.__version__}


def train_synthetic(n_entities: int = 200_000, seed: int = 7, params=None, class_config=None,
                    candidates=("logreg_spline", "hgb", "hgb_additive"), selection: str = "ipw",
                    with_indicator: bool = True):
    """Generate a synthetic region and train on its history. Returns ``(TrainResult, region)``."""
    region = generate(n_entities, seed=seed, params=params)
    class_config = class_config or cls.load_class_config()
    indicator = None
    if with_indicator:
        indicator = IndicatorScore.fit(region.entities)
    result = train_model(
        region.history, region.entities, seed=seed, class_config=class_config, candidates=candidates,
        selection=selection, indicator=indicator,
        data_meta={"source": "synthetic", "n_entities": n_entities, "generator_seed": seed,
                   "world": region.params.to_json(), "snapshot_sha256": region.snapshot_hash(),
                   "n_inspections": int(len(region.history["entity_id"]))})
    if indicator is not None:
        result.metadata["indicator_weights"] = indicator.weights_json()
    return result, region

