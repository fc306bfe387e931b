"""From factor columns to the model matrix, input validation, and the candidate pipelines.

A *frame* is any mapping of column name → sequence (a dict of numpy arrays as the generator returns, a
pandas DataFrame, or rows read from the ``entity`` table). The model matrix has the columns
``factors.MODEL_INPUTS``: ten numeric factors, then integer codes for industry, entity type and district.

Validation (no silent imputation of the twelve factors):

* a missing (``None``/NaN) or out-of-range numeric factor, a non-integer count, an unknown industry section
  or entity type → :class:`~scoring.errors.InvalidFactors` naming entity, field and value;
* a district code outside the training region is *imputed* to the "other district" bucket (code -1: every
  district indicator is zero for the logistic model, "missing" for gradient boosting) — documented, since
  entities move in from other regions;
* ``subscribed_capital = 0`` is valid (not yet paid in) and treated as ¥100 (0.01 × ¥10k) by the log.
"""
from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, SplineTransformer

from scoring.errors import InvalidFactors
from scoring.factors import CATEGORICAL_INPUTS, CATEGORIES, FACTOR_BY_NAME, MODEL_INPUTS, NUMERIC_FACTORS

N_NUM = len(NUMERIC_FACTORS)
COL = {name: i for i, name in enumerate(MODEL_INPUTS)}
CONTINUOUS = ("years_in_business", "subscribed_capital")
COUNTS = tuple(f for f in NUMERIC_FACTORS if f not in CONTINUOUS and f != "abnormal_list_ever")
#: Knots on the log1p scale for count factors (0, 1, 2, 3, 5, 10, 30, 100 …): the interesting range is small.
COUNT_KNOTS = np.log1p(np.array([0, 1, 2, 3, 5, 10, 30, 100, 3000], float))


_HASH_BASE = np.uint64(1_000_003)


def _string_keys(v: np.ndarray, width: int) -> np.ndarray:
    """64-bit polynomial hash of each string's code points (vectorised; unicode arrays of ``width`` chars)."""
    cp = np.ascontiguousarray(v).view(np.uint32).reshape(len(v), width).astype(np.uint64)
    key = np.zeros(len(v), np.uint64)
    for k in range(width):
        key = key * _HASH_BASE + cp[:, k]
    return key


def _codes_fast(values, field: str) -> np.ndarray:
    """Vectorised category coding: -1 for values outside the list (hash, then exact check on the hits)."""
    v = np.asarray(values)
    if v.dtype.kind != "U":
        v = v.astype(str)
    width = v.dtype.itemsize // 4
    cats = [c for c in CATEGORIES[field] if len(c) <= width]
    if not cats or len(v) == 0:
        return np.full(len(v), -1.0)
    ckeys = _string_keys(np.array(cats, dtype=v.dtype), width)
    order = np.argsort(ckeys)
    keys = _string_keys(v, width)
    pos = np.clip(np.searchsorted(ckeys[order], keys), 0, len(cats) - 1)
    hit = ckeys[order][pos] == keys
    codes = np.array([CATEGORIES[field].index(c) for c in cats], np.int64)[order][pos]
    hit &= np.array(CATEGORIES[field])[codes] == v  # exact check: a hash collision can never pass
    return np.where(hit, codes, -1).astype(np.float64)


def _entity(ids, i):
    return _plain(ids[i]) if ids is not None else f"row {i}"


def check_numeric(name: str, col: np.ndarray) -> np.ndarray:
    """Boolean mask of valid values for numeric factor ``name``."""
    f = FACTOR_BY_NAME[name]
    ok = np.isfinite(col) & (col >= f.lo) & (col <= f.hi)
    if f.kind in ("int", "bool"):
        ok &= col == np.round(col)
    return ok


def _to_float(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    return arr.astype(np.float64)


_NONES = object()  # marker: the offending value is missing (reported as None)


def frame_to_matrix(frame, ids=None, strict: bool = True) -> tuple[np.ndarray, np.ndarray, list[InvalidFactors]]:
    """Validate ``frame`` and build the model matrix.

    Returns ``(X, valid_mask, errors)``. With ``strict`` the first problem raises :class:`InvalidFactors`;
    otherwise invalid rows are flagged in ``valid_mask`` and described in ``errors`` (one per row).
    """
    n = None
    for name in MODEL_INPUTS:
        if name not in frame:
            raise InvalidFactors(_entity(ids, 0) if ids is not None and len(ids) == 1 else "*", name, None,
                                 "column missing")
        n = len(frame[name]) if n is None else n
    X = np.empty((n, len(MODEL_INPUTS)), np.float64, order="F")  # column writes stay contiguous
    valid = np.ones(n, bool)
    errors: list[InvalidFactors] = []
    reported: set[int] = set()

    def flag(bad: np.ndarray, name: str, values, why: str):
        nonlocal valid
        if not bad.any():
            return
        idx = np.flatnonzero(bad)
        if values is _NONES:
            values = np.full(n, None, dtype=object)
        if strict:
            i = idx[0]
            raise InvalidFactors(_entity(ids, i), name, _plain(np.asarray(values, dtype=object)[i]), why)
        valid &= ~bad
        values = np.asarray(values, dtype=object)
        for i in idx:
            if i not in reported:
                reported.add(int(i))
                errors.append(InvalidFactors(_entity(ids, i), name, _plain(values[i]), why))

    for j, name in enumerate(NUMERIC_FACTORS):
        raw = frame[name]
        try:
            col = _to_float(raw)
        except (TypeError, ValueError):
            col = np.array([_safe_float(v) for v in raw], np.float64)
        f = FACTOR_BY_NAME[name]
        missing = ~np.isfinite(col)
        flag(missing, name, _NONES, "missing value (no imputation for the 12 factors)")
        bad = ~missing & ~check_numeric(name, col)
        kind = "an integer" if f.kind == "int" else "0 or 1" if f.kind == "bool" else "a number"
        flag(bad, name, raw, f"must be {kind} in [{f.lo:g}, {f.hi:g}]")
        X[:, j] = np.where(np.isfinite(col), col, 0.0)
    for k, name in enumerate(CATEGORICAL_INPUTS):
        values = np.asarray(frame[name])
        codes = _codes_fast(np.array([("" if v is None else str(v)) for v in values]) if values.dtype == object
                            else values, name)
        unknown = codes < 0
        if name == "district":
            empty = np.array([v is None or str(v) == "" for v in values]) if unknown.any() else unknown
            flag(empty, name, values, "missing district")
        else:
            flag(unknown, name, values, f"unknown {name} (known: {', '.join(CATEGORIES[name])})")
        X[:, N_NUM + k] = codes
    return X, valid, errors


def _safe_float(v) -> float:
    try:
        return float(v) if v is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------------------------------------
# Candidate pipelines: one ColumnTransformer + one estimator each.


def log10_capital(x):
    """log10 of subscribed capital in ¥10k, floored at 0.01 (¥100)."""
    return np.log10(np.maximum(x, 0.01))


def log1p_clipped(x):
    """log1p of a non-negative count."""
    return np.log1p(np.maximum(x, 0.0))


def _spline_knots(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 1)


def logistic_pipeline(C: float = 1.0, seed: int = 0) -> Pipeline:
    """Regularised logistic regression on per-factor spline bases (U-shapes learnable) and one-hot codes.

    Every transformer reads one column, so the model is additive in the logit: exact per-factor contributions.
    """
    transformers = [
        ("years_in_business", make_pipeline(FunctionTransformer(log1p_clipped),
                                            SplineTransformer(n_knots=7, degree=3, knots="quantile",
                                                              extrapolation="constant")),
         [COL["years_in_business"]]),
        ("subscribed_capital", make_pipeline(FunctionTransformer(log10_capital),
                                             SplineTransformer(n_knots=7, degree=3, knots="quantile",
                                                               extrapolation="constant")),
         [COL["subscribed_capital"]]),
        ("abnormal_list_ever", "passthrough", [COL["abnormal_list_ever"]]),
    ]
    for name in COUNTS:
        transformers.append((name, make_pipeline(
            FunctionTransformer(log1p_clipped),
            SplineTransformer(degree=1, knots=_spline_knots(COUNT_KNOTS), extrapolation="constant")),
            [COL[name]]))
    for name in CATEGORICAL_INPUTS:
        transformers.append((name, OneHotEncoder(categories=[list(range(len(CATEGORIES[name])))],
                                                 handle_unknown="ignore", drop=None),
                             [COL[name]]))
    pre = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    est = LogisticRegression(C=C, solver="newton-cholesky", max_iter=100, tol=1e-6)
    return Pipeline([("features", pre), ("model", est)])


def hgb_pipeline(additive: bool = False, seed: int = 0) -> Pipeline:
    """Histogram gradient boosting; ``additive`` forbids interactions (one factor per tree: a GA2M-like model)."""
    pre = ColumnTransformer([("factors", "passthrough", list(range(len(MODEL_INPUTS))))], remainder="drop",
                            sparse_threshold=0.0)
    est = HistGradientBoostingClassifier(
        learning_rate=0.2 if additive else 0.1, max_iter=300, max_leaf_nodes=15, min_samples_leaf=80,
        l2_regularization=1.0, categorical_features=[COL[c] for c in CATEGORICAL_INPUTS], early_stopping=True,
        validation_fraction=0.15, n_iter_no_change=15, random_state=seed,
        interaction_cst="no_interactions" if additive else None)
    return Pipeline([("features", pre), ("model", est)])


CANDIDATES = {
    "logreg_spline": lambda seed: logistic_pipeline(C=0.5, seed=seed),
    "hgb": lambda seed: hgb_pipeline(additive=False, seed=seed),
    "hgb_additive": lambda seed: hgb_pipeline(additive=True, seed=seed),
}
#: Candidates whose logit is a sum of one-factor functions (exact reasons, table-driven fast scoring).
ADDITIVE = {"logreg_spline", "hgb_additive"}
