"""Joint checks: an entity drawn by several campaigns whose windows overlap gets one visit, with the union of
their departments and check items, on a day every window covers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import chunks
from engine.errors import NotFound

from ..campaign_models import Campaign, DrawResult


@dataclass
class JointCheck:
    """One visit for an entity drawn by campaigns whose windows share at least one day."""

    entity_id: int
    uscc: str
    campaign_ids: list[int]
    campaign_codes: list[str]
    departments: list[str]
    items: list[str]
    window_start: date  # the days every member campaign's window covers
    window_end: date

    @property
    def lead_campaign_id(self) -> int:
        """The campaign whose inspection carries the visit (the lowest id); the others join it."""
        return self.campaign_ids[0]

    @property
    def joint(self) -> bool:
        return len(self.campaign_ids) > 1

    def to_dict(self) -> dict:
        return {"entity_id": self.entity_id, "uscc": self.uscc, "campaign_ids": self.campaign_ids,
                "campaign_codes": self.campaign_codes, "lead_campaign_id": self.lead_campaign_id,
                "departments": self.departments, "items": self.items, "window_start": self.window_start,
                "window_end": self.window_end, "joint": self.joint}


def _group_windows(members: list[tuple[int, str, date, date, list, list]]) -> list[list]:
    """Greedy interval stabbing: sort by window end, group everything that contains the earliest end.
    Every group has a common day and the number of visits is the fewest possible; campaigns whose
    windows do not overlap stay in separate visits (the later one is deferred, ``no_disturbance``)."""
    rest = sorted(members, key=lambda m: (m[3], m[2], m[0]))
    groups = []
    while rest:
        point = rest[0][3]
        group = [m for m in rest if m[2] <= point]
        rest = [m for m in rest if m[2] > point]
        groups.append(sorted(group, key=lambda m: m[0]))
    return groups


def joint_checks(session: Session, window_start: date | None = None, window_end: date | None = None,
                 entity_ids: Sequence[int] | None = None) -> list[JointCheck]:
    """Visits for drawn entities of campaigns whose windows intersect [window_start, window_end]:
    an entity drawn by several campaigns with overlapping windows gets one visit with the union of
    their departments and items (step 5)."""
    # the campaigns first (a few), then their drawn entities (thousands): each campaign's JSON and dates are
    # decoded once, not once per drawn entity
    cq = (select(Campaign.id, Campaign.code, Campaign.window_start, Campaign.window_end, Campaign.departments,
                 Campaign.items).where(Campaign.status.in_(("drawn", "published"))))
    if window_start is not None:
        cq = cq.where(Campaign.window_end >= window_start)
    if window_end is not None:
        cq = cq.where(Campaign.window_start <= window_end)
    campaigns = {row[0]: tuple(row) for row in session.execute(cq)}
    by_entity: dict[int, list] = {}
    usccs: dict[int, str] = {}
    if not campaigns:
        return []
    q = select(DrawResult.entity_id, DrawResult.uscc, DrawResult.campaign_id).where(
        DrawResult.campaign_id.in_(list(campaigns)))
    if entity_ids is not None:
        q = q.where(DrawResult.entity_id.in_(list(entity_ids)))
    for eid, uscc, cid in session.execute(q):
        by_entity.setdefault(eid, []).append(campaigns[cid])
        usccs[eid] = uscc
    out = []
    for eid in sorted(by_entity):
        for g in _group_windows(by_entity[eid]):
            out.append(JointCheck(
                eid, usccs[eid], [m[0] for m in g], [m[1] for m in g],
                list(dict.fromkeys(d for m in g for d in m[4])), sorted({i for m in g for i in m[5]}),
                max(m[2] for m in g), min(m[3] for m in g)))
    return out


_JOINT = "draw.joint_checks"


def prefetch_joint_checks(session: Session, entity_ids: Sequence[int]) -> None:
    """The visits of many entities (a campaign launch: every child asks for its own) in a few queries,
    kept for the transaction (:mod:`engine.txcache`; dropped when a draw result or a campaign is written)."""
    ids = sorted(set(entity_ids))
    known: dict[int, list[JointCheck]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        for jc in joint_checks(session, entity_ids=chunk):
            known[jc.entity_id].append(jc)
    prior = txcache.peek(session, _JOINT) or {}
    txcache.put(session, _JOINT, (DrawResult.__tablename__, Campaign.__tablename__), {**prior, **known})


def joint_check_for(session: Session, campaign_id: int, entity_id: int) -> JointCheck:
    """The visit that covers ``entity_id`` drawn by ``campaign_id``."""
    known = txcache.peek(session, _JOINT)
    checks = known.get(entity_id) if known is not None else None
    for jc in checks if checks is not None else joint_checks(session, entity_ids=[entity_id]):
        if campaign_id in jc.campaign_ids:
            return jc
    raise NotFound(f"entity {entity_id} is not drawn by campaign {campaign_id}")
