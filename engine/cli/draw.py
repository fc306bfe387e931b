"""``regflow draw``: verify, show and replay verifiable draws (the package engine/supervision/draw/).

``verify CAMPAIGN`` exits 0 and prints ``verified`` when the stored draw is what the recorded inputs give,
and exits 1 with the differences when it is not. Other exit codes follow :mod:`engine.cli`: 2 invalid input,
3 campaign not found, 4 not drawn yet.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.errors import InvalidInput
from engine.supervision import draw as drawing

from .support import emit, handle_errors, json_option, tx


@click.group(name="draw")
def draw() -> None:
    """Verifiable random draws of campaigns: verify, show, export the population, replay."""


@draw.command()
@click.argument("campaign")
@json_option
@handle_errors
def verify(campaign: str, as_json: bool) -> None:
    """Recompute CAMPAIGN's draw (id or code) from its recorded inputs and compare it with the stored one."""
    with tx() as s:
        result = drawing.verify(s, campaign)
    doc = result.to_dict()

    def human(d):
        if d["ok"]:
            return (f"verified: campaign {d['campaign']}, {d['drawn']} drawn, seed {d['seed']}, "
                    f"population {d['population_hash']}")
        return "\n".join([f"NOT verified: campaign {d['campaign']} ({len(d['differences'])} differences)"]
                         + [f"  {x}" for x in d["differences"]])

    emit(doc, as_json, human)
    if not result.ok:
        sys.exit(1)


def _show_doc(c, rows) -> dict:
    return {
        "id": c.id, "code": c.code, "name": c.name, "status": c.status, "departments": c.departments,
        "items": c.items, "target_industries": c.target_industries, "jurisdiction": c.jurisdiction,
        "window": [c.window_start, c.window_end], "ratios": c.ratios, "control_share": c.control_share,
        "capacity": c.capacity, "public_value": c.public_value, "approved_by": c.approved_by,
        "approved_at": c.approved_at, "population_hash": c.population_hash, "population_size": c.population_size,
        "population": c.population_summary, "seed": c.seed, "algorithm": c.algorithm, "drawn_at": c.drawn_at,
        "draw": c.draw_summary,
        "drawn": [{"uscc": r.uscc, "entity_id": r.entity_id, "stratum": r.stratum, "risk_class": r.risk_class,
                   "rank": r.rank, "key": r.key_hex} for r in rows],
    }


@draw.command()
@click.argument("campaign")
@click.option("--limit", default=20, show_default=True, help="Drawn entities to list (0: none, -1: all).")
@json_option
@handle_errors
def show(campaign: str, limit: int, as_json: bool) -> None:
    """A campaign's plan, seed inputs, population, quotas and drawn entities."""
    with tx() as s:
        c = drawing.get_campaign(s, campaign)
        rows = drawing.drawn_rows(s, c.id) if c.status in drawing.DRAWN_STATUSES else []
        doc = _show_doc(c, rows if limit < 0 else rows[:limit])
        doc["drawn_total"] = len(rows)

    def human(d):
        lines = [f"campaign {d['code']} ({d['id']}): {d['name']} [{d['status']}]",
                 f"  departments {', '.join(d['departments'])}; items {', '.join(d['items'])}",
                 f"  window {d['window'][0]} – {d['window'][1]}; ratios {d['ratios']}; control share "
                 f"{d['control_share']}; capacity {d['capacity'] if d['capacity'] is not None else 'none'}",
                 f"  public value {d['public_value']!r} (approved by {d['approved_by']} at {d['approved_at']})"]
        if d["population_hash"]:
            p = d["population"] or {}
            lines.append(f"  population {d['population_size']} eligible {p.get('by_stratum')}, "
                         f"{p.get('excluded', 0)} excluded {p.get('exclusions_by_reason')}; "
                         f"hash {d['population_hash']}")
        if d["seed"]:
            s = d["draw"]
            lines.append(f"  {d['algorithm']} seed {d['seed']}")
            lines.append(f"  planned {s['planned']}, drawn {s['drawn']}, total {s['total']}")
            if s["shortfall"]["D"] or any(s["capacity_cut"].values()):
                lines.append(f"  shortfall {s['shortfall']}, capacity cut {s['capacity_cut']}")
            for r in d["drawn"]:
                lines.append(f"    {r['stratum']:<7} #{r['rank']:<6} {r['uscc']} (class {r['risk_class']}) "
                             f"{r['key'][:16]}…")
            if len(d["drawn"]) < d["drawn_total"]:
                lines.append(f"    … {d['drawn_total'] - len(d['drawn'])} more (--limit -1 for all)")
        return "\n".join(lines)

    emit(doc, as_json, human)


@draw.command()
@click.argument("campaign")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="File to write the population list to (USCC,CLASS lines; its sha256 is the population hash).")
@handle_errors
def population(campaign: str, output: str) -> None:
    """Export CAMPAIGN's frozen eligible population: the list to publish with the draw."""
    with tx() as s:
        c = drawing.get_campaign(s, campaign)
        pop = drawing.load_population(s, c, with_ids=False)
    Path(output).write_bytes(pop.csv)
    click.echo(f"{pop.size} entities written to {output}; sha256 {pop.sha256}")


@draw.command()
@click.option("--population", "population_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The published population list (USCC,CLASS lines).")
@click.option("--code", required=True, help="The campaign's code.")
@click.option("--public-value", required=True, help="The public randomness value recorded at approval.")
@click.option("--ratios", help='Per-class ratios as JSON, e.g. {"A": "0.01", "B": "0.04", "C": "0.12", "D": "0.30"}.')
@click.option("--control-share", default=drawing.DEFAULT_CONTROL_SHARE, show_default=True)
@click.option("--capacity", type=int)
@json_option
@handle_errors
def replay(population_file: str, code: str, public_value: str, ratios: str | None, control_share: str,
           capacity: int | None, as_json: bool) -> None:
    """Recompute a draw from published inputs alone (no database): what an outsider runs."""
    try:
        parsed = json.loads(ratios) if ratios else None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--ratios is not valid JSON: {exc.msg}") from exc
    pop = drawing.Population.from_csv(Path(population_file).read_bytes())
    outcome = drawing.draw_population(pop, code, public_value, parsed, control_share, capacity)
    doc = {"seed": outcome.seed_hex, "population_hash": outcome.population_hash, "summary": outcome.summary,
           "drawn": [{"uscc": r.uscc, "stratum": r.stratum, "risk_class": r.risk_class, "rank": r.rank,
                      "key": r.key_hex} for r in outcome.rows]}
    emit(doc, as_json, lambda d: "\n".join(
        [f"population {d['population_hash']}", f"seed {d['seed']}", f"drawn {d['summary']['drawn']}"]
        + [f"{r['stratum']},{r['rank']},{r['uscc']}" for r in d["drawn"]]))
