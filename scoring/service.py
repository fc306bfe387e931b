"""Services over the entity registry. Each takes a ``Session`` and never commits (the caller owns the transaction).

* :func:`load_entities` — bulk insert a frame (Core ``INSERT`` executemany, in chunks);
* :func:`score_entity` — one entity with reasons, recorded on its row;
* :func:`score_all` — the whole registry, vectorised, in chunks (progress bar optional);
* :func:`retrain_from_outcomes` — train a new version from recorded inspection outcomes.

Overrides come from the current ``config/classes.yaml`` (a policy change applies without retraining); the
cut-offs and the target mix come from the model that scores.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import click
import numpy as np
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine import txcache
from engine.db import RowUpdater, utcnow
from scoring import classes as cls
from scoring.errors import EntityNotFound, InvalidFactors
from scoring.factors import CATEGORIES, MODEL_INPUTS, NUMERIC_FACTORS, STATUSES
from scoring.features import check_numeric, frame_to_matrix
from scoring.models import Entity, ModelVersion
from scoring.predict import reason_text
from scoring.registry import load_active, store_version
from scoring.train import train_model
from scoring.uscc import valid_usccs

INSERT_CHUNK = 50_000
SCORE_CHUNK = 100_000
FLAG_COLUMNS = ("abnormal_list", "serious_list")
_READ_COLUMNS = ("id",) + tuple(MODEL_INPUTS) + FLAG_COLUMNS


@dataclass(frozen=True)
class ScoreResult:
    entity_id: int
    score: float
    risk_class: str
    reasons: list[dict]
    model_version: str


@dataclass
class BatchSummary:
    model_version: str
    n_scored: int = 0
    n_invalid: int = 0
    class_counts: dict = field(default_factory=lambda: {c: 0 for c in cls.CLASSES})
    errors: list[str] = field(default_factory=list)  # first 20 invalid rows, in words
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"model_version": self.model_version, "n_scored": self.n_scored, "n_invalid": self.n_invalid,
                "class_counts": self.class_counts, "errors": self.errors, "seconds": round(self.seconds, 3)}


_config_cache: dict = {}


def class_config() -> cls.ClassConfig:
    cfg = _config_cache.get("cfg")
    if cfg is None:
        cfg = _config_cache["cfg"] = cls.load_class_config()
    return cfg


# ---------------------------------------------------------------------------------------------------------
def load_entities(session: Session, frame) -> int:
    """Validate and bulk-insert entities from ``frame`` (mapping of column → sequence). Returns the row count.

    Required: ``uscc`` (valid GB 32100 check digit, unique), ``name``, ``industry_section``, ``district``,
    ``entity_type``. Optional: ``id``, ``status`` (default active), the factors (missing → NULL, scored as
    invalid until known), ``abnormal_list``, ``serious_list``, ``factors_as_of``. Known-but-wrong values
    raise :class:`InvalidFactors`; nothing is inserted then (the caller's transaction rolls back).
    """
    n = len(frame["uscc"])
    ids = np.asarray(frame["id"]) if "id" in frame else None

    def label(i):
        return int(ids[i]) if ids is not None else f"row {i}"

    uscc = np.asarray(frame["uscc"], dtype=object).astype(str)
    bad = ~valid_usccs(uscc)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidFactors(label(i), "uscc", uscc[i], "not a valid unified social credit code (check digit)")
    uniq, first, counts = np.unique(uscc, return_index=True, return_counts=True)
    if (counts > 1).any():
        raise InvalidFactors("*", "uscc", str(uniq[counts > 1][0]), "duplicate in input")
    for name in ("industry_section", "entity_type"):
        values = np.asarray(frame[name], dtype=object).astype(str)
        unknown = ~np.isin(values, CATEGORIES[name])
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise InvalidFactors(label(i), name, values[i], f"unknown {name}")
    status = np.asarray(frame["status"], dtype=object).astype(str) if "status" in frame else np.full(n, "active")
    if (~np.isin(status, STATUSES)).any():
        i = int(np.flatnonzero(~np.isin(status, STATUSES))[0])
        raise InvalidFactors(label(i), "status", status[i], f"must be one of {', '.join(STATUSES)}")
    columns: dict[str, list] = {"uscc": uscc.tolist(), "name": np.asarray(frame["name"]).astype(str).tolist(),
                                "industry_section": np.asarray(frame["industry_section"]).astype(str).tolist(),
                                "district": np.asarray(frame["district"]).astype(str).tolist(),
                                "entity_type": np.asarray(frame["entity_type"]).astype(str).tolist(),
                                "status": status.tolist()}
    if ids is not None:
        columns["id"] = [int(v) for v in ids]
    for name in NUMERIC_FACTORS:
        if name not in frame:
            continue
        raw = np.asarray(frame[name], dtype=object)
        present = np.array([v is not None for v in raw]) if raw.dtype == object else np.ones(n, bool)
        col = np.array([np.nan if v is None else v for v in raw], float)
        present &= ~np.isnan(col)
        bad = present & ~check_numeric(name, np.where(present, col, 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidFactors(label(i), name, raw[i], "out of range")
        if name == "abnormal_list_ever":
            columns[name] = [bool(v) if p else None for v, p in zip(col, present)]
        elif name in ("years_in_business", "subscribed_capital"):
            columns[name] = [float(v) if p else None for v, p in zip(col, present)]
        else:
            columns[name] = [int(v) if p else None for v, p in zip(col, present)]
    for name in FLAG_COLUMNS:
        if name in frame:
            columns[name] = [bool(v) for v in np.asarray(frame[name])]
    if "factors_as_of" in frame:
        columns["factors_as_of"] = [_as_datetime(v) for v in frame["factors_as_of"]] if n < 1000 else \
            _dates_fast(frame["factors_as_of"])
    keys = list(columns)
    conn = session.connection()
    table = Entity.__table__
    for start in range(0, n, INSERT_CHUNK):
        stop = min(start + INSERT_CHUNK, n)
        rows = [dict(zip(keys, vals)) for vals in zip(*(columns[k][start:stop] for k in keys))]
        conn.execute(insert(table), rows)
    return n


def _as_datetime(v) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    d = date.fromisoformat(str(v)[:10])
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def _dates_fast(values) -> list:
    arr = np.asarray(values).astype(str)
    uniq, inv = np.unique(arr, return_inverse=True)
    conv = [_as_datetime(u) if u not in ("None", "") else None for u in uniq]
    return [conv[i] for i in inv]


# ---------------------------------------------------------------------------------------------------------
def _row_dict(entity: Entity) -> dict:
    d = {c: getattr(entity, c) for c in MODEL_INPUTS}
    d.update(id=entity.id, abnormal_list=bool(entity.abnormal_list), serious_list=bool(entity.serious_list))
    return d


_MEMO = "scoring.memo"
_MEMO_FIELDS = tuple(MODEL_INPUTS) + FLAG_COLUMNS


def _memo_key(version: str, row: dict) -> tuple:
    return (version, id(class_config()), tuple(row[k] for k in _MEMO_FIELDS))


def prefetch_scores(session: Session, entities: list[Entity]) -> int:
    """Score many entities in one matrix and remember the results for this transaction, keyed by the model
    version and every input value: a later :func:`score_entity` of an entity whose inputs are unchanged
    takes its result from here (the same model on the same inputs; a batch and a single row may differ in
    the last bits of a float, far below the six decimals a score keeps). For batch work such as a campaign
    launch, where every child instance scores its entity. Rows that do not validate are left out
    (scoring them one by one raises the error). Returns how many were remembered."""
    if not entities:
        return 0
    version, model = load_active(session)
    rows = [_row_dict(e) for e in entities]
    results = model.score_many(rows, [e.id for e in entities], class_config())
    memo = txcache.get(session, _MEMO, (ModelVersion.__tablename__,), dict)
    n = 0
    for row, res in zip(rows, results):
        if res is not None:
            memo[_memo_key(version, row)] = res
            n += 1
    return n


#: a launch scores thousands of entities, one row each: a driver-level UPDATE (a Core ``update`` costs several
#: times SQLite's work), held back and written together inside :func:`engine.db.deferred_writes`
RECORD_SCORE = RowUpdater(Entity.__table__, "id", ["risk_score", "risk_class", "risk_reasons", "model_version",
                                                   "scored_at"], deferrable=True)


def record_score(session: Session, entity: Entity, values: dict) -> None:
    """Store a score on the entity's row without the unit of work (its flush of one changed object costs
    several times the write) and give the loaded object the same values as its committed state. A caller
    that rolls back a savepoint around this must expire the session's objects (the engine's service dispatch
    does), since the object was not marked changed."""
    RECORD_SCORE.update(session, [{"id": entity.id, **values}])
    for key, value in values.items():
        set_committed_value(entity, key, value)
    txcache.invalidate(session, (Entity.__tablename__,))


def score_entity(session: Session, entity_id: int, record: bool = True) -> ScoreResult:
    """Score one entity with the active model; store the result on its row unless ``record`` is false.

    Raises :class:`EntityNotFound`, :class:`InvalidFactors` (missing/out-of-range factor, unknown code),
    :class:`~scoring.errors.NoActiveModel` or :class:`~scoring.errors.ModelLoadError`.
    """
    entity = session.get(Entity, entity_id)
    if entity is None:
        raise EntityNotFound(entity_id)
    version, model = load_active(session)
    row = _row_dict(entity)
    memo = txcache.peek(session, _MEMO)
    hit = memo.get(_memo_key(version, row)) if memo else None
    if hit is not None:
        score, klass, reasons = hit[0], hit[1], [dict(r) for r in hit[2]]
    else:
        score, klass, reasons = model.score_one(row, entity_id=entity_id, config=class_config())
    if record:
        record_score(session, entity, {"risk_score": score, "risk_class": klass, "risk_reasons": reasons,
                                       "model_version": version, "scored_at": utcnow()})
    return ScoreResult(entity_id=entity_id, score=round(score, 6), risk_class=klass, reasons=reasons,
                       model_version=version)


def score_frame(model, frame, config: cls.ClassConfig | None = None, reasons: bool = True):
    """Vectorised scoring of a frame: ``(scores, class_idx, reasons_or_None, valid, errors)``.

    Invalid rows get NaN scores and class -1; ``errors`` describes them.
    """
    config = config or class_config()
    X, valid, errors = frame_to_matrix(frame, ids=np.asarray(frame["id"]) if "id" in frame else None,
                                       strict=False)
    n = len(valid)
    scores = np.full(n, np.nan)
    klass = np.full(n, -1, np.int8)
    out_reasons = None
    Xv = X[valid]
    if reasons:
        p, deltas = model.reason_deltas(Xv)
    else:
        p = model.score_matrix(Xv)
    scores[valid] = p
    c = model.classes(p)
    sub = {k: np.asarray(frame[k])[valid] for k in list(MODEL_INPUTS) + [f for f in FLAG_COLUMNS if f in frame]}
    after, rule = cls.apply_overrides(c, sub, config) if config.overrides else (c, np.full(len(c), -1))
    klass[valid] = after
    if reasons:
        out_reasons = [None] * n
        vidx = np.flatnonzero(valid)
        k = config.max_reasons
        top = np.argsort(-deltas, axis=1)[:, :k]
        for r, i in enumerate(vidx):
            row = []
            if rule[r] >= 0:
                row.append(cls.override_reason(config, int(rule[r]), cls.CLASSES[after[r]]))
            for j in top[r]:
                dlt = deltas[r, j]
                if dlt < config.min_reason_delta:
                    break
                row.append(_reason(j, Xv[r, j], float(dlt), frame, i))
            out_reasons[i] = row
    return scores, klass, out_reasons, valid, errors


def _reason(j, x, delta, frame, i):
    name = MODEL_INPUTS[j]
    raw = {name: frame[name][i]} if name == "district" else None
    return reason_text(name, x, delta, raw)


_T = Entity.__table__
_UPDATE_SCORE = (update(_T).where(_T.c.id == bindparam("b_id"))
                 .values(risk_score=bindparam("b_score"), risk_class=bindparam("b_class"),
                         risk_reasons=bindparam("b_reasons", type_=_T.c.risk_reasons.type)))
_UPDATE_INVALID = (update(_T).where(_T.c.id == bindparam("b_id"))
                   .values(risk_score=None, risk_class=None, model_version=None,
                           risk_reasons=bindparam("b_reasons", type_=_T.c.risk_reasons.type)))


def score_all(session: Session, progress: bool = True, reasons: bool = True,
              chunk: int = SCORE_CHUNK) -> BatchSummary:
    """Score every entity with the active model, in chunks of ``chunk`` rows, and store the results.

    Rows with invalid factors are not scored: their score, class and version are cleared and their reasons
    hold the error (``{"error": ...}``), so no stale or silently wrong score remains.
    """
    t0 = time.perf_counter()
    version, model = load_active(session)
    config = class_config()
    summary = BatchSummary(model_version=version)
    total = session.scalar(select(func.count()).select_from(Entity)) or 0
    cols = [getattr(Entity, c) for c in _READ_COLUMNS]
    now = utcnow()
    bar = None
    if progress:
        bar = click.progressbar(length=total, label="scoring", file=sys.stderr)
        bar.__enter__()
    try:
        last_id = None
        while True:
            q = select(*cols).order_by(Entity.id).limit(chunk)
            if last_id is not None:
                q = q.where(Entity.id > last_id)
            rows = session.execute(q).all()
            if not rows:
                break
            last_id = rows[-1][0]
            frame = {c: np.array(v, dtype=object) for c, v in zip(_READ_COLUMNS, zip(*rows))}
            for c in NUMERIC_FACTORS:
                frame[c] = np.array([np.nan if v is None else v for v in frame[c]], float)
            frame["id"] = frame["id"].astype(np.int64)
            scores, klass, rsn, valid, errors = score_frame(model, frame, config, reasons=reasons)
            ids = frame["id"].tolist()
            score_list = scores.tolist()
            class_list = [cls.CLASSES[k] if k >= 0 else None for k in klass.tolist()]
            conn = session.connection()
            # version and time are the same for the whole chunk (ids are contiguous by keyset pagination)
            conn.execute(update(_T).where(_T.c.id >= ids[0], _T.c.id <= ids[-1])
                         .values(model_version=version, scored_at=now))
            params = [{"b_id": ids[i], "b_score": score_list[i], "b_class": class_list[i],
                       "b_reasons": rsn[i] if rsn is not None else None}
                      for i in np.flatnonzero(valid).tolist()]
            bad = {e.entity: str(e) for e in errors}
            if params:
                conn.execute(_UPDATE_SCORE, params)
            if bad:
                conn.execute(_UPDATE_INVALID, [{"b_id": int(eid), "b_reasons": [{"error": msg}]}
                                               for eid, msg in bad.items()])
            summary.n_scored += int(valid.sum())
            summary.n_invalid += int((~valid).sum())
            counts = np.bincount(klass[valid].astype(np.int64), minlength=4)
            for j, c in enumerate(cls.CLASSES):
                summary.class_counts[c] += int(counts[j])
            summary.errors.extend(list(bad.values())[: max(0, 20 - len(summary.errors))])
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    session.flush()
    summary.seconds = time.perf_counter() - t0
    return summary


# ---------------------------------------------------------------------------------------------------------
def _outcome_columns(outcomes) -> dict[str, np.ndarray]:
    """Accept a list of tuples/dicts or a mapping of columns; return columns."""
    if hasattr(outcomes, "keys") and "entity_id" in outcomes:
        return {k: np.asarray(outcomes[k]) for k in outcomes.keys()}
    rows = list(outcomes)
    if not rows:
        raise ValueError("no outcomes given")
    if isinstance(rows[0], dict):
        keys = rows[0].keys()
        return {k: np.asarray([r.get(k) for r in rows], dtype=object) for k in keys}
    names = ("entity_id", "inspected_at", "found_problem", "was_control")
    return {k: np.asarray([r[i] for r in rows], dtype=object) for i, k in enumerate(names)}


def retrain_from_outcomes(session: Session, outcomes, *, seed: int = 0, activate: bool | None = None,
                          candidates=("logreg_spline", "hgb")) -> ModelVersion:
    """Train a new model version from recorded inspection outcomes and store it.

    ``outcomes``: rows ``(entity_id, inspected_at, found_problem, was_control)`` — a list of tuples or dicts, or
    a mapping of columns. Optional columns: ``inclusion_prob`` (probability the draw had of selecting the
    entity; enables inverse-probability weighting, else every row weighs 1) and any factor columns *as of the
    draw date*. Missing factor columns are taken from the entity's current row, with ``years_in_business``
    moved back to the inspection date; the other factors are then "as of now", a leak the draw should avoid by
    recording its snapshot. The latest inspection date is the test set (control rows only), the one before
    validation. ``activate=None`` activates the new version only if none is active.
    """
    cols = _outcome_columns(outcomes)
    for k in ("entity_id", "inspected_at", "found_problem", "was_control"):
        if k not in cols:
            raise ValueError(f"outcomes need the column {k!r}")
    ids = cols["entity_id"].astype(np.int64)
    reg_rows = session.execute(select(*[getattr(Entity, c) for c in _READ_COLUMNS + ("factors_as_of",)])
                               .order_by(Entity.id)).all()
    names = _READ_COLUMNS + ("factors_as_of",)
    registry = {c: np.array(v, dtype=object) for c, v in zip(names, zip(*reg_rows))} if reg_rows else {}
    if not registry:
        raise ValueError("the entity registry is empty")
    reg_ids = registry["id"].astype(np.int64)
    pos = np.searchsorted(reg_ids, ids)
    pos = np.clip(pos, 0, len(reg_ids) - 1)
    missing = reg_ids[pos] != ids
    if missing.any():
        raise EntityNotFound(int(ids[np.flatnonzero(missing)[0]]))
    inspected = [_as_datetime(v) for v in cols["inspected_at"]]
    history = {"entity_id": ids, "drawn_on": np.array([d.date().isoformat() for d in inspected]),
               "stratum": np.where(cols["was_control"].astype(bool), "control", "risk"),
               "found_problem": cols["found_problem"].astype(bool)}
    if "inclusion_prob" in cols:
        history["pi_overall"] = cols["inclusion_prob"].astype(float)
    for c in MODEL_INPUTS:
        if c in cols:
            history[c] = cols[c]
        else:
            history[c] = registry[c][pos]
    if "years_in_business" not in cols:
        as_of = [registry["factors_as_of"][p] or utcnow() for p in pos]
        shift = np.array([(a - d).days / 365.25 for a, d in zip(as_of, inspected)])
        history["years_in_business"] = np.array(history["years_in_business"], float) - shift
    for c in NUMERIC_FACTORS:
        history[c] = np.array([np.nan if v is None else v for v in history[c]], float)
    for c in NUMERIC_FACTORS:
        registry[c] = np.array([np.nan if v is None else v for v in registry[c]], float)
    result = train_model(history, registry, seed=seed, class_config=class_config(), candidates=candidates,
                         selection="ipw" if "pi_overall" in history else "none",
                         data_meta={"source": "inspection_outcomes", "n_outcomes": int(len(ids)),
                                    "n_registry": int(len(reg_ids)),
                                    "factors_from_outcomes": sorted(set(MODEL_INPUTS) & set(cols))})
    return store_version(session, result.model, result.metrics, result.metadata, activate=activate)
