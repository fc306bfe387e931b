"""Campaign plans up to the draw: find a campaign, create a draft, approve it, record its public value.

A campaign plans one round of random inspections: departments, check items, window, target industries and
jurisdiction, and the per-class ratios, control share and capacity that its draw uses.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound

from ..campaign_models import Campaign
from ..registry_models import CheckItem
from .algorithm import DEFAULT_CONTROL_SHARE, normalize_ratios, parse_decimal, text_field

#: A campaign in one of these statuses has its draw written: it never changes again.
DRAWN_STATUSES = ("drawn", "published", "closed")


def get_campaign(session: Session, ref: int | str, lock: bool = False) -> Campaign:
    """A campaign by id or code; ``lock`` takes a row lock (PostgreSQL) so concurrent draws queue."""
    q = select(Campaign)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        q = q.where(Campaign.id == int(ref))
    else:
        q = q.where(Campaign.code == ref)
    if lock:
        q = q.with_for_update()
    c = session.scalars(q).first()
    if c is None and isinstance(ref, str) and ref.isdigit():  # a purely numeric code
        c = session.scalars(select(Campaign).where(Campaign.code == ref)).first()
    if c is None:
        raise NotFound(f"campaign {ref!r} not found")
    return c


def create_campaign(session: Session, *, code: str, name: str, departments: Sequence[str], items: Sequence[str],
                    window_start: date, window_end: date, created_by: str, now: datetime,
                    ratios: dict[str, Any] | None = None, control_share: Any = DEFAULT_CONTROL_SHARE,
                    capacity: int | None = None, target_industries: Sequence[str] | None = None,
                    jurisdiction: Sequence[str] | None = None, lookback_months: int = 12) -> Campaign:
    """A draft plan (step 1 of a campaign). ``jurisdiction``: district code prefixes (None = all).
    ``target_industries`` defaults to the union of the check items' industries (``check_item``; an item
    with no industries targets every section, and so does the campaign)."""
    text_field(code, "campaign code")
    if len(code) > 64:
        raise InvalidInput("campaign code is longer than 64 characters")
    if not departments:
        raise InvalidInput("a campaign needs at least one department")
    if not items:
        raise InvalidInput("a campaign needs at least one check item")
    if window_end < window_start:
        raise InvalidInput(f"window ends ({window_end}) before it starts ({window_start})")
    if capacity is not None and (not isinstance(capacity, int) or capacity < 0):
        raise InvalidInput(f"capacity must be a non-negative integer, got {capacity!r}")
    if session.scalars(select(Campaign.id).where(Campaign.code == code)).first() is not None:
        raise Conflict(f"campaign code {code!r} already exists")
    if target_industries is None:
        target_industries = _item_industries(session, list(items))
    c = Campaign(code=code, name=name, departments=list(departments), items=list(dict.fromkeys(items)),
                 target_industries=None if target_industries is None else sorted(set(target_industries)),
                 jurisdiction=None if jurisdiction is None else sorted(set(jurisdiction)),
                 window_start=window_start, window_end=window_end, ratios=normalize_ratios(ratios),
                 control_share=parse_decimal(control_share, "control share", upper_inclusive=False),
                 capacity=capacity, lookback_months=lookback_months, status="draft", created_by=created_by,
                 created_at=now)
    session.add(c)
    session.flush()
    return c


def _item_industries(session: Session, codes: list[str]) -> list[str] | None:
    found = {i.code: i for i in session.scalars(select(CheckItem).where(CheckItem.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise InvalidInput(f"unknown check item(s): {', '.join(unknown)}")
    if any(not found[c].industries for c in codes):
        return None
    return sorted({s for c in codes for s in found[c].industries})


def approve_campaign(session: Session, ref: int | str, *, approver: str, now: datetime,
                     public_value: str | None = None) -> Campaign:
    """Approve a draft (step 2) and record the public randomness value if given."""
    c = get_campaign(session, ref, lock=True)
    if c.status != "draft":
        raise Conflict(f"campaign {c.code} is {c.status}, only a draft can be approved")
    if public_value is not None:
        c.public_value = text_field(public_value, "public value")
    c.status, c.approved_by, c.approved_at = "approved", approver, now
    return c


def record_public_value(session: Session, ref: int | str, public_value: str) -> Campaign:
    """Record the public value later (e.g. a lottery drawn after the population hash was published)."""
    c = get_campaign(session, ref, lock=True)
    if c.status in DRAWN_STATUSES:
        raise Conflict(f"campaign {c.code} is already drawn; its public value cannot change")
    if c.public_value is not None and c.public_value != public_value:
        raise Conflict(f"campaign {c.code} already has a public value")
    c.public_value = text_field(public_value, "public value")
    return c
