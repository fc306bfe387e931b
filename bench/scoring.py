"""Risk-scoring benchmark (synthetic data). Run: ``.venv/bin/python bench/scoring.py [--entities 1000000]``.

Prints: generation time for N entities (registry + 6-campaign history), training time on the 200k reference
registry (all candidates, calibration, cut-offs, evaluation), batch throughput of score + class on N
entities in memory (with and without reasons), the same through the database (``score_all`` on SQLite), and
single-entity latency with reasons (model loaded once) p50/p95.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.db import Base, get_engine, session_factory, transaction  # noqa: E402
from scoring import registry, service  # noqa: E402
from scoring.classes import load_class_config  # noqa: E402
from scoring.features import frame_to_matrix  # noqa: E402
from scoring.generator import generate  # noqa: E402
from scoring.models import Entity, ModelVersion  # noqa: E402
from scoring.service import score_frame  # noqa: E402
from scoring.train import train_synthetic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--train-entities", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db-entities", type=int, default=200_000, help="entities for the score_all round trip (0: skip)")
    ap.add_argument("--single", type=int, default=2000)
    a = ap.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")

    t = time.perf_counter()
    region = generate(a.entities, seed=a.seed)
    gen_s = time.perf_counter() - t
    print(f"generate {a.entities:,} entities + history ({len(region.history['entity_id']):,} inspections): "
          f"{gen_s:.2f} s")

    t = time.perf_counter()
    result, _ = train_synthetic(a.train_entities, a.seed)
    print(f"train on {a.train_entities:,} entities ({result.metrics['n_train']:,} training inspections, "
          f"3 candidates + calibration + cut-offs + evaluation): {time.perf_counter() - t:.2f} s "
          f"-> {result.metrics['chosen']}, auc {result.metrics['auc']} (bayes {result.metrics['bayes_auc']})")
    model = result.model
    cfg = load_class_config()

    frame = region.entities
    t = time.perf_counter()
    X, valid, _ = frame_to_matrix(frame, strict=False)
    p = model.score_matrix(X)
    c = model.classes(p)
    s = time.perf_counter() - t
    print(f"batch score+class (validation included, no reasons) on {a.entities:,}: {s:.2f} s = "
          f"{a.entities / s:,.0f} entities/s; classes {np.bincount(c, minlength=4).tolist()}")
    t = time.perf_counter()
    scores, klass, _, _, _ = score_frame(model, frame, cfg, reasons=False)
    s = time.perf_counter() - t
    print(f"batch score+class+overrides (score_frame, no reasons) on {a.entities:,}: {s:.2f} s = "
          f"{a.entities / s:,.0f} entities/s")
    t = time.perf_counter()
    _, deltas = model.reason_deltas(X)
    s = time.perf_counter() - t
    print(f"batch reason deltas (all 13 inputs, numeric) on {a.entities:,}: {s:.2f} s = "
          f"{a.entities / s:,.0f} entities/s")
    n_r = min(a.entities, 200_000)
    sub = {k: v[:n_r] for k, v in frame.items()}
    t = time.perf_counter()
    score_frame(model, sub, cfg, reasons=True)
    s = time.perf_counter() - t
    print(f"batch score+class+reasons rendered as text (zh+en) on {n_r:,}: {s:.2f} s = {n_r / s:,.0f} entities/s")

    rows = [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in frame.items()}
            for i in range(a.single)]
    for r in rows[:50]:
        model.score_one(r, config=cfg)
    ts = []
    for r in rows:
        t = time.perf_counter()
        model.score_one(r, config=cfg)
        ts.append(time.perf_counter() - t)
    ts = np.array(ts) * 1e3
    print(f"single entity with reasons (model in memory, {a.single} entities): p50 {np.median(ts):.3f} ms, "
          f"p95 {np.quantile(ts, 0.95):.3f} ms")

    if a.db_entities:
        d = tempfile.mkdtemp()
        url = f"sqlite:///{d}/bench.db"
        Base.metadata.create_all(get_engine(url), tables=[ModelVersion.__table__, Entity.__table__])
        factory = session_factory(url)
        small = {k: v[: a.db_entities] for k, v in frame.items()}
        t = time.perf_counter()
        with transaction(factory) as ses:
            service.load_entities(ses, small)
        print(f"load_entities {a.db_entities:,} rows into SQLite: {time.perf_counter() - t:.2f} s")
        with transaction(factory) as ses:
            registry.store_version(ses, model, result.metrics, result.metadata, activate=True)
        for reasons in (False, True):
            t = time.perf_counter()
            with transaction(factory) as ses:
                summ = service.score_all(ses, progress=False, reasons=reasons)
            s = time.perf_counter() - t
            print(f"score_all through SQLite ({a.db_entities:,} rows read + updated, reasons={reasons}): {s:.2f} s "
                  f"= {summ.n_scored / s:,.0f} entities/s")
        ids = np.random.default_rng(0).integers(1, a.db_entities + 1, 500)
        ts = []
        with transaction(factory) as ses:
            for i in ids:
                t = time.perf_counter()
                service.score_entity(ses, int(i))
                ts.append(time.perf_counter() - t)
        ts = np.array(ts) * 1e3
        print(f"score_entity through SQLite (read row, score, reasons, write back): p50 {np.median(ts):.3f} ms, "
              f"p95 {np.quantile(ts, 0.95):.3f} ms")


if __name__ == "__main__":
    main()
