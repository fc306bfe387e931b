"""``regflow simulate --entities N --seed S [--json]``: the full supervision loop on a fresh registry
(:mod:`engine.simulation`), as the designer's what-if runs start it in a child process:
``python -m engine.cli simulate --entities N --seed S --json``.
"""
from __future__ import annotations

import json
import sys

import click

from engine.config import PROJECT_ROOT
from engine.runtime.deploy import read_paths

from .support import handle_errors

#: The summary keys the issue fixes, in order.
SUMMARY_KEYS = ("entities", "drawn", "instances", "paths", "inspections", "hazards", "rectifications",
                "enforcement_cases", "summary_procedures",
                "decision_clock_pauses", "published", "publication_overdue", "provisional_deadlines", "lists",
                "transfers", "incidents", "hit_rate", "audit_chain_ok", "documents", "documents_verified",
                "elapsed_s")


def _ratios(text: str | None) -> dict:
    out = {"A": 1.0, "B": 4.0, "C": 12.0, "D": 30.0}
    for part in filter(None, (text or "").split(",")):
        k, _, v = part.partition("=")
        if k.strip().upper() not in out:
            raise click.BadParameter(f"{part!r}: expected CLASS=PERCENT with CLASS in A-D", param_hint="--ratios")
        try:
            out[k.strip().upper()] = float(v)
        except ValueError:
            raise click.BadParameter(f"{part!r}: {v!r} is not a number", param_hint="--ratios") from None
    return out


@click.command("simulate")
@click.option("--entities", "entities", type=click.IntRange(50, None), default=5000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--database-url", default=None, help="default: a temporary SQLite file, removed afterwards")
@click.option("--ratios", default=None, help="per-class draw ratios in percent, e.g. 'A=1,B=4,C=12,D=30'")
@click.option("--control-share", type=click.FloatRange(0, 50), default=10.0, show_default=True)
@click.option("--training-entities", type=click.IntRange(2000, None), default=20_000, show_default=True)
@click.option("--decisions", "decision_files", multiple=True, type=click.Path(dir_okay=False),
              help="what-if DMN file (repeatable): replaces the process library's table with the same decision "
                   "ids for this run, e.g. a route_by_risk.dmn that sends B to the heavy path too")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def simulate(entities, seed, database_url, ratios, control_share, training_entities, decision_files, as_json):
    """Run a campaign through the real processes with simulated officers and a simulated clock."""
    # deferred: the simulation trains a model (scikit-learn, seconds to import), which no other command needs
    from engine import simulation  # noqa: PLC0415

    simulation.library_with(read_paths([PROJECT_ROOT / "processes"]), decision_files)  # bad files fail first
    summary = simulation.simulate(simulation.Options(
        entities=entities, seed=seed, database_url=database_url, ratios=_ratios(ratios), control_share=control_share,
        training_entities=training_entities, decision_files=tuple(decision_files)))
    doc = {k: summary[k] for k in SUMMARY_KEYS}
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for k in SUMMARY_KEYS:
            click.echo(f"{k}: {json.dumps(doc[k], ensure_ascii=False)}")
    ok = doc["instances"]["open"] == 0 and doc["incidents"] == 0 and doc["audit_chain_ok"]
    sys.exit(0 if ok else 1)
