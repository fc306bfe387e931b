"""What the public sees of a campaign's draw, and the files it downloads to check the draw itself.

Which draws are public: a campaign that is drawn (:data:`~.campaigns.DRAWN_STATUSES`) **and** whose plan notice
is published and not withdrawn (the ``plan`` publication with ``ref = "campaign:<id>"`` that the campaign
process writes when it publishes "the plan and the draw"). A campaign drawn but never announced, or whose notice
was withdrawn, shows nothing: the draw's page says no more than the notice would.

What a public draw shows (:func:`public_draw`): the algorithm version, the campaign's code, name and window, the
population hash and size, the public random value, the seed, the ratios, control share and capacity (the inputs
of the draw, needed to recompute it), the time of the draw, and the drawn entities as USCC and registry name
**sorted by USCC** — never in rank or stratum order, and never the stratum: which entity went to the control
stratum is not published (:mod:`engine.supervision.publication`). With the class-publication setting on
(``REGFLOW_PUBLISH_RISK_CLASS=1``) each drawn entity's credit class and the count drawn per class are shown too,
as on the plan notice.

The downloads: the drawn list (:func:`drawn_list_file`, one USCC a line, what the plan notice announces); the
population file (:func:`population_file`: the exact bytes the population hash covers, ``USCC,CLASS`` lines — it
carries each entity's class, so it is public only where classes are, else for auditors:
:func:`engine.policy.check_population_download`); and the standalone verifier (:func:`standalone_verifier_source`,
a pure-stdlib script, :mod:`.standalone_verifier`) that recomputes the draw from those files offline. Anyone holding
the population file can recompute the control stratum too: that is the price of a verifiable draw, and one
more reason the file follows the class-publication setting.

The "verified" line of the page is :func:`engine.supervision.draw.verify` run on the server (recomputing the
draw from the stored inputs, about a second per million entities): its result is kept for
:data:`VERIFY_TTL_S` seconds per campaign (one computation at a time per process), so a crowd of visitors costs
one recomputation, not one each. Functions take a ``Session`` and never commit.
"""
from __future__ import annotations

import threading
import time
import zlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.runtime import clock
from scoring.models import Entity

from ..campaign_models import CLASSES, Campaign, CampaignPopulation, DrawResult
from ..loop_models import Publication
from .campaigns import DRAWN_STATUSES
from .verification import verify

#: seconds a server-side verification result is reused for a campaign's page
VERIFY_TTL_S = 600
#: the most drawn entities one page of a campaign lists (the full list is the download)
PAGE_MAX = 500
VERIFIER_FILE = Path(__file__).with_name("standalone_verifier.py")

_verified: dict[int, tuple[float, dict]] = {}
_verify_lock = threading.Lock()


def _announced_ids(session: Session) -> set[int]:
    """Ids of campaigns whose plan notice is published and not withdrawn."""
    refs = session.scalars(select(Publication.ref).where(
        Publication.kind == "plan", Publication.published_at.is_not(None), Publication.withdrawn_at.is_(None),
        Publication.ref.like("campaign:%")))
    out = set()
    for ref in refs:
        tail = (ref or "")[len("campaign:"):]
        if tail.isdigit():
            out.add(int(tail))
    return out


def _public_campaign(session: Session, campaign_id: int) -> Campaign:
    c = session.get(Campaign, campaign_id)
    if c is None or c.status not in DRAWN_STATUSES or campaign_id not in _announced_ids(session):
        raise NotFound.fmt("No published draw has the number {id}.", id=campaign_id)
    return c


def list_public_draws(session: Session, *, limit: int = 30, offset: int = 0) -> tuple[list[dict], bool]:
    """Public draws, newest first: ``(rows, has_more)``."""
    ids = _announced_ids(session)
    if not ids:
        return [], False
    q = (select(Campaign).where(Campaign.id.in_(sorted(ids)), Campaign.status.in_(DRAWN_STATUSES))
         .order_by(Campaign.drawn_at.desc(), Campaign.id.desc()).limit(limit + 1).offset(offset))
    rows = [{"id": c.id, "code": c.code, "name": c.name, "window_start": c.window_start,
             "window_end": c.window_end, "drawn_at": c.drawn_at, "population_size": c.population_size,
             "total": (c.draw_summary or {}).get("total")} for c in session.scalars(q)]
    return rows[:limit], len(rows) > limit


def public_draw(session: Session, campaign_id: int, *, risk_class: bool = False, limit: int = PAGE_MAX,
                offset: int = 0) -> dict:
    """One public draw (see the module doc): its inputs, and one page of its drawn entities by USCC."""
    c = _public_campaign(session, campaign_id)
    summary = c.draw_summary or {}
    n = session.scalar(select(func.count()).select_from(DrawResult).where(DrawResult.campaign_id == c.id)) or 0
    t = DrawResult.__table__
    rows = session.execute(select(t.c.uscc, t.c.risk_class).where(t.c.campaign_id == c.id)
                           .order_by(t.c.uscc).limit(limit).offset(offset)).all()
    names = dict(session.execute(select(Entity.uscc, Entity.name).where(Entity.uscc.in_([r.uscc for r in rows]))).all())
    drawn = [{"uscc": r.uscc, "name": names.get(r.uscc), **({"risk_class": r.risk_class} if risk_class else {})}
             for r in rows]
    out = {"id": c.id, "code": c.code, "name": c.name, "algorithm": c.algorithm, "status": c.status,
           "window_start": c.window_start.isoformat(), "window_end": c.window_end.isoformat(),
           "population_hash": c.population_hash, "population_size": c.population_size,
           "public_value": c.public_value, "seed": c.seed, "ratios": dict(c.ratios or {}),
           "control_share": c.control_share, "capacity": c.capacity,
           "drawn_at": c.drawn_at.isoformat() if c.drawn_at else None, "total": n, "drawn": drawn,
           "offset": offset, "has_more": offset + len(rows) < n}
    if risk_class:
        out["by_stratum"] = {k: (summary.get("drawn") or {}).get(k) for k in CLASSES}
    return out


def drawn_list_file(session: Session, campaign_id: int) -> bytes:
    """The drawn USCCs, sorted, one a line (LF): the ``--drawn`` file of the standalone verifier."""
    c = _public_campaign(session, campaign_id)
    usccs = session.scalars(select(DrawResult.uscc).where(DrawResult.campaign_id == c.id).order_by(DrawResult.uscc))
    return "".join(u + "\n" for u in usccs).encode("ascii")


def population_file(session: Session, campaign_id: int) -> tuple[str, bytes]:
    """``(code, bytes)``: the frozen population list exactly as hashed (the caller checks who may have it)."""
    c = _public_campaign(session, campaign_id)
    row = session.get(CampaignPopulation, c.id)
    if row is None:
        raise NotFound.fmt("No published draw has the number {id}.", id=campaign_id)
    return c.code, zlib.decompress(row.data)


def standalone_verifier_source() -> bytes:
    return VERIFIER_FILE.read_bytes()


def verifier_command(draw: dict) -> str:
    """The command line that checks ``draw`` (a :func:`public_draw`) with the downloaded files."""
    ratios = ",".join(f"{k}={draw['ratios'][k]}" for k in CLASSES if k in draw["ratios"])

    def q(text: str) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'

    parts = ["python3 verifier.py", "--population population.csv", f"--code {q(draw['code'])}",
             f"--public-value {q(draw['public_value'])}", f"--ratios {ratios}",
             f"--control-share {draw['control_share']}", "--drawn drawn.txt",
             f"--population-hash {draw['population_hash']}", f"--seed {draw['seed']}"]
    if draw["capacity"] is not None:
        parts.insert(-3, f"--capacity {int(draw['capacity'])}")
    return " ".join(parts)


def verification(session: Session, campaign_id: int, now: datetime | None = None) -> dict:
    """The server's check of a public draw (:func:`engine.supervision.draw.verify`), reused for
    :data:`VERIFY_TTL_S` seconds: ``{"ok", "differences", "checked_at"}``."""
    c = _public_campaign(session, campaign_id)
    with _verify_lock:
        hit = _verified.get(c.id)
        if hit is not None and time.monotonic() - hit[0] < VERIFY_TTL_S:
            return hit[1]
        result = verify(session, c.id)
        doc = {"ok": result.ok, "differences": result.differences[:20],
               "checked_at": (now or clock.now()).isoformat()}
        if len(_verified) > 1000:
            _verified.clear()
        _verified[c.id] = (time.monotonic(), doc)
        return doc


def forget_verifications() -> None:
    """Drop the kept results (tests; after a repair of a campaign's stored draw)."""
    with _verify_lock:
        _verified.clear()
