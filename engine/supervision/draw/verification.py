"""``regflow draw verify``: recompute a campaign's draw from its recorded inputs and compare it with the
stored one."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput

from ..campaign_models import DrawResult
from .algorithm import ALGORITHM, DrawnRow, compare_rows, compute_seed, draw_population
from .campaigns import DRAWN_STATUSES, get_campaign
from .eligibility import load_population
from .population import Population
from .rawsql import fetch_raw


@dataclass
class VerifyResult:
    ok: bool
    differences: list[str]
    campaign: str = ""
    seed: str = ""
    population_hash: str = ""
    drawn: int = 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "campaign": self.campaign, "seed": self.seed,
                "population_hash": self.population_hash, "drawn": self.drawn, "differences": self.differences}


def verify(session: Session, ref: int | str) -> VerifyResult:
    """Recompute a campaign's draw from its recorded inputs (stored population list, code, public value,
    ratios, control share, capacity) and compare it with the stored result and summary."""
    c = get_campaign(session, ref)
    if c.status not in DRAWN_STATUSES:
        raise Conflict(f"campaign {c.code} is {c.status}: nothing has been drawn yet")
    diffs: list[str] = []
    pop = load_population(session, c, with_ids=False)
    if pop.sha256 != c.population_hash:
        diffs.append(f"population: the stored list hashes to {pop.sha256}, the campaign records "
                     f"{c.population_hash}")
    if c.algorithm != ALGORITHM:
        diffs.append(f"algorithm: recorded {c.algorithm!r}, this verifier implements {ALGORITHM!r}")
    try:
        seed = compute_seed(c.code, c.population_hash, c.public_value or "").hex()
    except InvalidInput as exc:
        return VerifyResult(False, diffs + [f"seed inputs: {exc}"], c.code, "", c.population_hash or "", 0)
    if seed != c.seed:
        diffs.append(f"seed: recomputed {seed} from code, population hash and public value "
                     f"{c.public_value!r}; the campaign records {c.seed}")
    pop_for_draw = Population(pop.usccs, pop.classes, pop.csv, c.population_hash)
    outcome = draw_population(pop_for_draw, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    if pop.sha256 != c.population_hash:  # the honest result for the stored list, for the record
        outcome = draw_population(pop, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    t = DrawResult.__table__
    stored = [DrawnRow(*r) for r in fetch_raw(session, select(t.c.uscc, t.c.stratum, t.c.risk_class, t.c.key_hex,
                                                                 t.c.rank).where(t.c.campaign_id == c.id))]
    diffs += compare_rows(outcome.rows, stored)
    summary = c.draw_summary or {}
    for k in ("drawn", "total", "shortfall", "capacity_cut", "planned", "population"):
        if summary.get(k) != outcome.summary.get(k):
            diffs.append(f"summary {k}: recorded {summary.get(k)!r}, recomputed {outcome.summary.get(k)!r}")
    return VerifyResult(not diffs, diffs, c.code, seed, c.population_hash or "", len(stored))

