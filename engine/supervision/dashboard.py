"""The supervisor's numbers: the hazard registry (open by grade, overdue rectification orders, stranded orders
and cases, recurrence leaders), open incidents, the overview of the dashboard and entity lookups (who may act on one
item: :func:`engine.policy.check_stranded`). Campaign progress, plans in preparation, hit rates and
the daily series are in :mod:`.dashboard_campaigns` and re-exported here, with :func:`in_districts`.

Every figure is an SQL aggregate or an indexed, bounded list; nothing loads a workflow state.

**Districts.** Every read model takes ``districts`` (district codes; empty = no restriction, the default) and
counts and lists only rows whose entity is registered in one of those districts (:mod:`.dashboard_districts`);
rows with no registered entity are city-wide: they are shown only to users without a jurisdiction restriction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.runtime.models import HumanTask, Incident, ProcessInstance
from scoring.models import Entity

from .dashboard_campaigns import (
    CAMPAIGN_PROCESS,
    CLASSES,
    CONTROL,
    DAY_ZONE,
    CampaignProgress,
    HitRates,
    PlanInPreparation,
    Rate,
    Series,
    campaign_progress,
    daily_series,
    day_starts,
    hit_rates,
    plans_in_preparation,
)
from .dashboard_districts import in_districts, instance_in_districts, scope
from .enforcement import case_hazard_ids
from .loop_models import (
    CASE_DONE,
    HAZARD_GRADES,
    HAZARD_STATUSES,
    OPEN_HAZARD_STATUSES,
    OPEN_ORDER_STATUSES,
    EnforcementCase,
    EntityHazardStats,
    Hazard,
    Publication,
    RectificationOrder,
)

__all__ = ["CAMPAIGN_PROCESS", "CLASSES", "CONTROL", "DAY_ZONE", "MAX_LIST", "CampaignProgress",
           "HazardPage", "HitRates", "Leader", "Overview", "PlanInPreparation", "PublicationDeadlines", "Rate",
           "Series", "Stranded", "campaign_progress", "daily_series", "day_starts", "entity_keys", "entity_names",
           "hazards_by_grade", "hit_rates", "in_districts", "keys_outside", "list_hazards", "open_incidents",
           "overdue_orders", "overview", "plans_in_preparation", "publication_deadlines", "recurrence_leaders",
           "stranded"]

MAX_LIST = 200


# ------------------------------------------------------------------------------------------- hazards
def hazards_by_grade(session: Session, *, districts: Sequence[str] = ()) -> dict[str, dict[str, int]]:
    """``{grade: {"open": n, "rectification_verified": n, "total": n}}`` over the hazards still listed."""
    out = {g: {s: 0 for s in OPEN_HAZARD_STATUSES} | {"total": 0} for g in HAZARD_GRADES}
    for grade, status, n in session.execute(select(Hazard.grade, Hazard.status, func.count())
                                            .where(Hazard.status.in_(OPEN_HAZARD_STATUSES),
                                                   *scope(Hazard.uscc, districts))
                                            .group_by(Hazard.grade, Hazard.status)):
        out.setdefault(grade, {s: 0 for s in OPEN_HAZARD_STATUSES} | {"total": 0})
        out[grade][status] = n
        out[grade]["total"] += n
    return out


def overdue_orders(session: Session, now: datetime, limit: int = 50, *, districts: Sequence[str] = ()
                   ) -> tuple[int, list[RectificationOrder]]:
    """Open rectification orders past their deadline: the count and the most overdue first."""
    where = (RectificationOrder.status.in_(OPEN_ORDER_STATUSES), RectificationOrder.deadline < now,
             *scope(RectificationOrder.uscc, districts))
    n = session.scalar(select(func.count()).select_from(RectificationOrder).where(*where)) or 0
    rows = list(session.scalars(select(RectificationOrder).where(*where)
                                .order_by(RectificationOrder.deadline, RectificationOrder.id).limit(limit)))
    return n, rows


@dataclass
class Stranded:
    """An unsettled rectification order or enforcement case whose process an administrator terminated."""

    kind: str  # "order" | "case"
    id: int
    uscc: str
    status: str
    instance_id: int
    terminated_at: datetime | None
    reason: str | None  # the instance's status reason: "<user>: <why>"
    hazard_ids: list[int]


def stranded(session: Session, limit: int = 100, *, districts: Sequence[str] = ()) -> tuple[int, list[Stranded]]:
    """Unsettled orders and cases that no running process follows any more (its instance was terminated,
    ``hazards.note_terminated_instance``): the count and the most recently stranded first. The entity's
    problem is not fixed by stopping a process; a supervisor starts a new one or closes them."""
    pi = ProcessInstance
    orders = (select(RectificationOrder, pi.ended_at, pi.status_reason)
              .join(pi, pi.id == RectificationOrder.instance_id)
              .where(RectificationOrder.status.in_(OPEN_ORDER_STATUSES), pi.status == "terminated",
                     *scope(RectificationOrder.uscc, districts)))
    cases = (select(EnforcementCase, pi.ended_at, pi.status_reason)
             .join(pi, pi.id == EnforcementCase.instance_id)
             .where(EnforcementCase.status.not_in(CASE_DONE), pi.status == "terminated",
                    *scope(EnforcementCase.uscc, districts)))
    n = (session.scalar(select(func.count()).select_from(orders.subquery())) or 0) + \
        (session.scalar(select(func.count()).select_from(cases.subquery())) or 0)
    rows = [Stranded("order", o.id, o.uscc, o.status, o.instance_id, at, why, list(o.hazard_ids or []))
            for o, at, why in session.execute(orders.order_by(pi.ended_at.desc(), RectificationOrder.id).limit(limit))]
    case_rows = session.execute(cases.order_by(pi.ended_at.desc(), EnforcementCase.id).limit(limit)).all()
    if case_rows:
        rows += [Stranded("case", c.id, c.uscc, c.status, c.instance_id, at, why, case_hazard_ids(session, c.id))
                 for c, at, why in case_rows]
    rows.sort(key=lambda r: r.terminated_at.timestamp() if r.terminated_at else 0.0, reverse=True)
    return n, rows[:limit]


@dataclass
class Leader:
    uscc: str
    name: str | None
    recurrence_count: int
    hazards_total: int
    open_hazards: int
    last_recorded_at: datetime


def recurrence_leaders(session: Session, limit: int = 10, *, districts: Sequence[str] = ()) -> list[Leader]:
    """Entities that came back into the registry most often (then most hazards, most recent)."""
    rows = session.execute(select(EntityHazardStats, Entity.name)
                           .outerjoin(Entity, Entity.uscc == EntityHazardStats.uscc)
                           .where(*scope(EntityHazardStats.uscc, districts))
                           .order_by(EntityHazardStats.recurrence_count.desc(), EntityHazardStats.hazards_total.desc(),
                                     EntityHazardStats.last_recorded_at.desc())
                           .limit(limit)).all()
    keys = [st.uscc for st, _n in rows]
    open_n = dict(session.execute(select(Hazard.uscc, func.count()).where(
        Hazard.uscc.in_(keys), Hazard.status.in_(OPEN_HAZARD_STATUSES)).group_by(Hazard.uscc)).all()) if keys else {}
    return [Leader(st.uscc, name, st.recurrence_count, st.hazards_total, open_n.get(st.uscc, 0), st.last_recorded_at)
            for st, name in rows]


@dataclass
class HazardPage:
    rows: list[tuple[Hazard, str | None]]
    total: int
    limit: int
    offset: int


def list_hazards(session: Session, *, status: str | None = "listed", grade: str | None = None,
                 uscc: str | None = None, limit: int = 50, offset: int = 0, districts: Sequence[str] = ()
                 ) -> HazardPage:
    """The registry, newest first. ``status``: one of the hazard statuses, ``listed`` (still in the
    registry) or ``None`` (all)."""
    if status not in (None, "listed", *HAZARD_STATUSES):
        raise InvalidInput(f"hazard status must be listed or one of {', '.join(HAZARD_STATUSES)}, not {status!r}")
    if grade not in (None, *HAZARD_GRADES):
        raise InvalidInput(f"hazard grade must be one of {', '.join(HAZARD_GRADES)}, not {grade!r}")
    if not 1 <= limit <= MAX_LIST or offset < 0:
        raise InvalidInput(f"page size must be between 1 and {MAX_LIST} and the offset not negative")
    where = scope(Hazard.uscc, districts)
    if status == "listed":
        where.append(Hazard.status.in_(OPEN_HAZARD_STATUSES))
    elif status:
        where.append(Hazard.status == status)
    if grade:
        where.append(Hazard.grade == grade)
    if uscc:
        where.append(Hazard.uscc == uscc.strip().upper())
    total = session.scalar(select(func.count()).select_from(Hazard).where(*where)) or 0
    rows = session.execute(select(Hazard, Entity.name).outerjoin(Entity, Entity.uscc == Hazard.uscc).where(*where)
                           .order_by(Hazard.found_at.desc(), Hazard.id.desc()).limit(limit).offset(offset)).all()
    return HazardPage([(h, n) for h, n in rows], total, limit, offset)


# ------------------------------------------------------------------------------------------ incidents
def open_incidents(session: Session, limit: int = 100, *, districts: Sequence[str] = ()
                   ) -> tuple[int, list[Incident]]:
    """Open incidents, newest first (with ``districts``: of instances whose business key is an entity in
    those districts)."""
    where = (Incident.status == "open", *instance_in_districts(Incident.instance_id, districts))
    n = session.scalar(select(func.count()).select_from(Incident).where(*where)) or 0
    rows = list(session.scalars(select(Incident).where(*where)
                                .order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit)))
    return n, rows


# ---------------------------------------------------------------------------------- publication deadlines
@dataclass
class PublicationDeadlines:
    """Publications past their deadline: not published though due (``overdue``), published after it (``late``),
    a withdrawal (a revoked penalty) not done though due (``withdrawal_overdue``)."""
    overdue: int
    late: int
    withdrawal_overdue: int

    @property
    def total(self) -> int:
        return self.overdue + self.late + self.withdrawal_overdue


def publication_deadlines(session: Session, now: datetime, *, districts: Sequence[str] = ()) -> PublicationDeadlines:
    """The 20-working-day publication deadline (and the 3-working-day withdrawal) as the supervisor's figure;
    with ``districts``, the publications about entities in them."""
    overdue, late, withdrawal = session.execute(select(
        func.sum(case(((Publication.published_at.is_(None)) & (Publication.due_by < now), 1), else_=0)),
        func.sum(case((Publication.published_at > Publication.due_by, 1), else_=0)),
        func.sum(case(((Publication.withdraw_due < now) & (Publication.withdrawn_at.is_(None)), 1), else_=0)))
        .where(*scope(Publication.uscc, districts))).one()
    return PublicationDeadlines(int(overdue or 0), int(late or 0), int(withdrawal or 0))


# ------------------------------------------------------------------------------------------ overview
@dataclass
class Overview:
    hazards: dict[str, dict[str, int]]
    hazards_listed: int
    overdue_orders: int
    open_incidents: int
    overdue_tasks: int
    open_tasks: int
    running_instances: int
    hit_rates: HitRates
    series: Series
    campaigns: list[CampaignProgress]
    leaders: list[Leader]
    publications: PublicationDeadlines


def overview(session: Session, now: datetime, *, districts: Sequence[str] = ()) -> Overview:
    """The dashboard's figures; with ``districts``, each restricted to those districts."""
    hz = hazards_by_grade(session, districts=districts)
    n_overdue_orders, _rows = overdue_orders(session, now, limit=0, districts=districts)
    n_incidents, _rows = open_incidents(session, limit=0, districts=districts)
    open_tasks, overdue_tasks = session.execute(
        select(func.count(), func.sum(case((HumanTask.due_at < now, 1), else_=0)))
        .where(HumanTask.status == "open", *scope(HumanTask.business_key, districts))).one()
    running = session.scalar(select(func.count()).select_from(ProcessInstance)
                             .where(ProcessInstance.status == "running",
                                    *scope(ProcessInstance.business_key, districts))) or 0
    return Overview(hz, sum(v["total"] for v in hz.values()), n_overdue_orders, n_incidents, int(overdue_tasks or 0),
                    int(open_tasks or 0), running, hit_rates(session, districts=districts),
                    daily_series(session, now, districts=districts),
                    campaign_progress(session, limit=10, districts=districts),
                    recurrence_leaders(session, limit=10, districts=districts),
                    publication_deadlines(session, now, districts=districts))


# --------------------------------------------------------------------- entity lookups for the areas
def entity_keys(session: Session, text: str, limit: int = 500) -> list[str]:
    """USCCs matching a search text: an exact USCC, or entities whose name contains the text."""
    text = (text or "").strip()
    if len(text) == 18 and text.isalnum():
        q = select(Entity.uscc).where(Entity.uscc == text.upper())
    else:
        q = select(Entity.uscc).where(Entity.name.contains(text, autoescape=True))
    found = list(session.scalars(q.limit(limit)))
    # a business key need not be a registered entity (a test or manual instance): keep the exact text too
    return found if found or len(text) != 18 else [text.upper()]


def keys_outside(jurisdiction: Sequence[str]):
    """A subquery of the USCCs registered outside ``jurisdiction`` (for ``NOT IN`` filters)."""
    return select(Entity.uscc).where(Entity.district.not_in(list(jurisdiction)))


def entity_names(session: Session, usccs: Sequence[str], *, districts: Sequence[str] = ()
                 ) -> dict[str, tuple[str, str]]:
    """``{uscc: (name, district)}`` for the given keys (one indexed query); with ``districts``, only the
    entities registered in those districts."""
    keys = sorted({k for k in usccs if k})
    if not keys:
        return {}
    q = select(Entity.uscc, Entity.name, Entity.district).where(Entity.uscc.in_(keys))
    if districts:
        q = q.where(Entity.district.in_(sorted(set(districts))))
    return {u: (n, d) for u, n, d in session.execute(q)}


