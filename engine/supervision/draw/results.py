"""Drawing a campaign (once: the result is stored) and reading its stored draw back."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict

from ..campaign_models import CLASSES, Campaign, DrawResult
from .algorithm import draw_population
from .campaigns import DRAWN_STATUSES, get_campaign
from .eligibility import load_population, store_population
from .rawsql import insert_raw


@dataclass
class DrawSummary:
    campaign_id: int
    code: str
    seed: str
    population_hash: str
    algorithm: str
    by_stratum: dict[str, int]
    control: int
    total: int
    shortfall: int
    capacity_cut: dict[str, int]
    created: bool  # False when the stored draw was returned

    def to_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "code": self.code, "seed": self.seed,
                "population_hash": self.population_hash, "algorithm": self.algorithm,
                "by_stratum": self.by_stratum, "control": self.control, "total": self.total,
                "shortfall": self.shortfall, "capacity_cut": self.capacity_cut, "created": self.created}


def _draw_summary(c: Campaign, created: bool) -> DrawSummary:
    s = c.draw_summary
    return DrawSummary(c.id, c.code, c.seed, c.population_hash, c.algorithm,
                       {k: s["drawn"][k] for k in CLASSES}, s["drawn"]["control"], s["total"],
                       s["shortfall"]["D"], s["capacity_cut"], created)


def draw_campaign(session: Session, ref: int | str, now: datetime) -> DrawSummary:
    """Draw an approved campaign (step 4), freezing its population first if needed. Idempotent: a drawn
    campaign returns its stored result."""
    c = get_campaign(session, ref, lock=True)
    if c.status in DRAWN_STATUSES:
        return _draw_summary(c, created=False)
    if c.status != "approved":
        raise Conflict(f"campaign {c.code} is {c.status}; only an approved campaign can be drawn")
    if c.public_value is None:
        raise Conflict(f"campaign {c.code} has no public randomness value recorded")
    if c.population_hash is None:
        pop = store_population(session, c, now)
    else:
        pop = load_population(session, c)
        if pop.sha256 != c.population_hash:
            raise Conflict(f"campaign {c.code}: stored population does not match its hash")
    outcome = draw_population(pop, c.code, c.public_value, c.ratios, c.control_share, c.capacity)
    if outcome.rows:
        if len(outcome.entity_ids) != len(outcome.rows):
            raise Conflict(f"campaign {c.code}: the stored population has no entity ids")
        ids = outcome.entity_ids
        rows = sorted(outcome.rows, key=lambda r: ids[r.uscc])  # in entity id order: the inserts append
        insert_raw(session, DrawResult.__table__,
                   ("campaign_id", "entity_id", "uscc", "stratum", "risk_class", "key_hex", "rank"),
                   [(c.id, ids[r.uscc], r.uscc, r.stratum, r.risk_class, r.key_hex, r.rank) for r in rows])
    c.seed, c.algorithm, c.drawn_at, c.draw_summary = outcome.seed_hex, outcome.algorithm, now, outcome.summary
    c.status = "drawn"
    session.flush()
    return _draw_summary(c, created=True)


_STRATUM_ORDER = {s: i for i, s in enumerate(("control",) + CLASSES)}


def _draw_order(row) -> tuple[int, int]:
    """The stored draw's order: control first then A–D, each by rank."""
    return _STRATUM_ORDER[row.stratum], row.rank


def drawn_rows(session: Session, campaign_id: int) -> list[DrawResult]:
    """The stored draw, control first then A–D, each by rank."""
    return sorted(session.scalars(select(DrawResult).where(DrawResult.campaign_id == campaign_id)), key=_draw_order)


def drawn_entities(session: Session, campaign_id: int) -> list:
    """:func:`drawn_rows` as plain ``(uscc, entity_id, stratum, rank)`` rows, for work over thousands of them
    (a campaign launch) that needs no ORM objects."""
    return sorted(session.execute(select(DrawResult.uscc, DrawResult.entity_id, DrawResult.stratum, DrawResult.rank)
                                  .where(DrawResult.campaign_id == campaign_id)), key=_draw_order)

