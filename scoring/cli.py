"""``regflow model …`` and ``regflow score …``. Exit codes: 0 ok, 2 invalid input, 3 not found.

The commands open one transaction each (``engine.db.transaction``) on ``load_settings().database_url`` and
call the same services as the web app. All figures come from a **synthetic** registry unless the model was
retrained from recorded outcomes.
"""
from __future__ import annotations

import json
import sys
import time
from functools import wraps
from pathlib import Path

import click
from sqlalchemy import func, select

from engine.config import PROJECT_ROOT, load_settings
from engine.db import session_factory, transaction
from scoring.errors import ScoringError
from scoring.models import Entity

#: Keys printed by ``model train`` (the issue's "must show" list first).
TRAIN_KEYS = ("auc", "bayes_auc", "base_rate", "precision_at_k", "oracle_precision_at_k", "precision_at_k_ci95",
              "visits_avoided_per_100", "relative_reduction_lawabiding_visits", "brier", "class_shares",
              "class_shares_after_overrides", "observed_rate_by_class", "model_version", "k", "n_test",
              "n_train", "chosen", "validation_auc", "indicator_auc", "indicator_precision_at_k", "targets",
              "synthetic", "activated", "entities_loaded", "seconds")


def _factory():
    return session_factory(load_settings().database_url)


def _errors_to_exit(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScoringError as exc:  # each carries its exit code
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    return wrapper


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


@click.group("model")
def model_group():
    """Risk models: train on the synthetic registry, list, activate, report."""


@model_group.command("train")
@click.option("--entities", "n_entities", type=click.IntRange(1000, 10_000_000), default=200_000, show_default=True,
              help="Size of the synthetic registry to generate.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--activate/--no-activate", default=None, help="Activate the new version (default: only if none is).")
@click.option("--load/--no-load", "load_registry", default=True, show_default=True,
              help="Load the generated entities into the entity table when it is empty.")
@_errors_to_exit
def train_cmd(n_entities, seed, as_json, activate, load_registry):
    """Generate a synthetic registry, train, evaluate, store (and maybe activate) a model version."""
    from scoring import registry, service  # noqa: PLC0415  (scikit-learn: only the commands that need it)
    from scoring.train import train_synthetic  # noqa: PLC0415  (scikit-learn)

    t0 = time.perf_counter()
    result, region = train_synthetic(n_entities, seed)
    factory = _factory()
    loaded = 0
    with transaction(factory) as s:
        row = registry.store_version(s, result.model, result.metrics, result.metadata, activate=activate)
        if load_registry and not s.scalar(select(func.count()).select_from(Entity)):
            loaded = service.load_entities(s, region.entities)
        out = {**row.metrics, "activated": bool(row.active), "entities_loaded": loaded,
               "seconds": round(time.perf_counter() - t0, 2)}
    out = {k: out[k] for k in TRAIN_KEYS if k in out}
    if as_json:
        click.echo(_dump(out))
    else:
        click.echo(f"model {out['model_version']} (synthetic registry, {n_entities} entities, seed {seed})"
                   f"{' — active' if out['activated'] else ''}")
        for k in TRAIN_KEYS[:13]:
            click.echo(f"  {k:34s} {out.get(k)}")


@model_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@_errors_to_exit
def list_cmd(as_json):
    """List stored model versions (the active one marked *)."""
    from scoring import registry  # noqa: PLC0415  (scikit-learn, skops)

    with transaction(_factory()) as s:
        rows = [{"version": r.version, "active": r.active, "created_at": r.created_at.isoformat(), "kind": r.kind,
                 "auc": r.metrics.get("auc"), "bayes_auc": r.metrics.get("bayes_auc"),
                 "precision_at_k": r.metrics.get("precision_at_k"),
                 "source": (r.meta.get("data") or {}).get("source")} for r in registry.list_versions(s)]
    if as_json:
        click.echo(_dump(rows))
        return
    if not rows:
        click.echo("no model versions stored")
    for r in rows:
        click.echo(f"{'*' if r['active'] else ' '} {r['version']}  {r['created_at'][:19]}  {r['kind']:14s} "
                   f"auc={r['auc']}  bayes_auc={r['bayes_auc']}  p@k={r['precision_at_k']}  {r['source']}")


@model_group.command("activate")
@click.argument("version")
@_errors_to_exit
def activate_cmd(version):
    """Make VERSION the active model (its artifact must load)."""
    from scoring import registry  # noqa: PLC0415  (scikit-learn, skops)

    with transaction(_factory()) as s:
        registry.activate_version(s, version)
    click.echo(f"active model: {version}")


@model_group.command("report")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics JSON instead of writing HTML.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="HTML file to write (default var/reports/model-<version>.html).")
@click.option("--version", "version", default=None, help="Version to report (default: the active one).")
@_errors_to_exit
def report_cmd(as_json, out_path, version):
    """Write a self-contained HTML report (ROC with Bayes curve, calibration, lift, classes, factor effects)."""
    from scoring import registry  # noqa: PLC0415  (scikit-learn)
    from scoring.report import render_report  # noqa: PLC0415  (scikit-learn)

    with transaction(_factory()) as s:
        row = registry.get_version(s, version) if version else registry.get_active(s)
        model = registry.load_row(row)
        metrics, meta, ver = dict(row.metrics), dict(row.meta), row.version
    if as_json:
        click.echo(_dump(metrics))
        return
    path = Path(out_path) if out_path else PROJECT_ROOT / "var" / "reports" / f"model-{ver}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(model, metrics, meta, ver), encoding="utf-8")
    click.echo(str(path))


@click.command("score")
@click.argument("entity_id", required=False, type=int)
@click.option("--all", "score_all", is_flag=True, help="Score the whole registry.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-reasons", is_flag=True, help="With --all: skip reasons (faster).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@_errors_to_exit
def score_cmd(entity_id, score_all, as_json, no_reasons, lang):
    """Score one entity (ENTITY_ID) or all of them (--all) with the active model."""
    from scoring import service  # noqa: PLC0415  (scikit-learn)

    if score_all == (entity_id is not None):
        click.echo("error: give either ENTITY_ID or --all", err=True)
        sys.exit(2)
    with transaction(_factory()) as s:
        if score_all:
            summary = service.score_all(s, progress=not as_json, reasons=not no_reasons)
            out = summary.to_json()
        else:
            r = service.score_entity(s, entity_id)
            out = {"entity_id": r.entity_id, "score": r.score, "risk_class": r.risk_class,
                   "reasons": r.reasons, "model_version": r.model_version}
    if as_json:
        click.echo(_dump(out))
    elif score_all:
        click.echo(f"scored {out['n_scored']} entities with {out['model_version']} in {out['seconds']} s; "
                   f"invalid {out['n_invalid']}; classes {out['class_counts']}")
        for e in out["errors"][:5]:
            click.echo(f"  invalid: {e}")
    else:
        click.echo(f"entity {out['entity_id']}: score {out['score']:.4f}  class {out['risk_class']}  "
                   f"({out['model_version']})")
        for reason in out["reasons"]:
            click.echo(f"  - {reason[lang]}")


#: Names the main ``regflow`` group attaches (engine/cli.py).
model = model_group
score = score_cmd
