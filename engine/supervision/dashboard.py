"""The supervisor's numbers: the hazard registry (open by grade, overdue rectification orders, recurrence
leaders), campaign progress, hit rate by risk class against the control stratum, daily throughput and
overdue open tasks, open incidents.

Every figure is an SQL aggregate or an indexed, bounded list; nothing loads a workflow state. Hit rates
count recorded inspection results (``publication`` rows of kind ``result``, whose payload carries the
result code, the stratum the entity was drawn in and its risk class) with the same definition of a hit
as the simulator: a result code in :data:`engine.supervision.inspection.VIOLATION_CODES`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.runtime.models import HumanTask, Incident, ProcessInstance

from .campaign_models import Campaign, DrawResult
from .inspection import VIOLATION_CODES
from .loop_models import (CASE_DONE, HAZARD_GRADES, HAZARD_STATUSES, OPEN_HAZARD_STATUSES, OPEN_ORDER_STATUSES,
                          EnforcementCase, EntityHazardStats, Hazard, Publication, RectificationOrder)

CLASSES = ("A", "B", "C", "D")
CONTROL = "control"
#: days are cut at midnight in this zone (the workbench's display zone)
DAY_ZONE = ZoneInfo("Asia/Shanghai")
MAX_LIST = 200


def _wilson(hits: int, n: int) -> tuple[float, float] | None:
    if not n:
        return None
    from scoring.train import wilson_interval

    lo, hi = wilson_interval(hits, n)
    return round(lo, 4), round(hi, 4)


# ------------------------------------------------------------------------------------------- hazards
def hazards_by_grade(session: Session) -> dict[str, dict[str, int]]:
    """``{grade: {"open": n, "rectification_verified": n, "total": n}}`` over the hazards still listed."""
    out = {g: {s: 0 for s in OPEN_HAZARD_STATUSES} | {"total": 0} for g in HAZARD_GRADES}
    for grade, status, n in session.execute(select(Hazard.grade, Hazard.status, func.count())
                                            .where(Hazard.status.in_(OPEN_HAZARD_STATUSES))
                                            .group_by(Hazard.grade, Hazard.status)):
        out.setdefault(grade, {s: 0 for s in OPEN_HAZARD_STATUSES} | {"total": 0})
        out[grade][status] = n
        out[grade]["total"] += n
    return out


def overdue_orders(session: Session, now: datetime, limit: int = 50) -> tuple[int, list[RectificationOrder]]:
    """Open rectification orders past their deadline: the count and the most overdue first."""
    where = (RectificationOrder.status.in_(OPEN_ORDER_STATUSES), RectificationOrder.deadline < now)
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


def stranded(session: Session, limit: int = 100) -> tuple[int, list[Stranded]]:
    """Unsettled orders and cases that no running process follows any more (its instance was terminated,
    ``hazards.note_terminated_instance``): the count and the most recently stranded first. The entity's
    problem is not fixed by stopping a process; a supervisor starts a new one or closes them."""
    pi = ProcessInstance
    orders = (select(RectificationOrder, pi.ended_at, pi.status_reason)
              .join(pi, pi.id == RectificationOrder.instance_id)
              .where(RectificationOrder.status.in_(OPEN_ORDER_STATUSES), pi.status == "terminated"))
    cases = (select(EnforcementCase, pi.ended_at, pi.status_reason)
             .join(pi, pi.id == EnforcementCase.instance_id)
             .where(EnforcementCase.status.not_in(CASE_DONE), pi.status == "terminated"))
    n = (session.scalar(select(func.count()).select_from(orders.subquery())) or 0) + \
        (session.scalar(select(func.count()).select_from(cases.subquery())) or 0)
    rows = [Stranded("order", o.id, o.uscc, o.status, o.instance_id, at, why, list(o.hazard_ids or []))
            for o, at, why in session.execute(orders.order_by(pi.ended_at.desc(), RectificationOrder.id).limit(limit))]
    case_rows = session.execute(cases.order_by(pi.ended_at.desc(), EnforcementCase.id).limit(limit)).all()
    if case_rows:
        from .enforcement import case_hazard_ids

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


def recurrence_leaders(session: Session, limit: int = 10) -> list[Leader]:
    """Entities that came back into the registry most often (then most hazards, most recent)."""
    from scoring.models import Entity

    rows = session.execute(select(EntityHazardStats, Entity.name)
                           .outerjoin(Entity, Entity.uscc == EntityHazardStats.uscc)
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
                 uscc: str | None = None, limit: int = 50, offset: int = 0) -> HazardPage:
    """The registry, newest first. ``status``: one of the hazard statuses, ``listed`` (still in the
    registry) or ``None`` (all)."""
    from scoring.models import Entity

    if status not in (None, "listed", *HAZARD_STATUSES):
        raise InvalidInput(f"hazard status must be listed or one of {', '.join(HAZARD_STATUSES)}, not {status!r}")
    if grade not in (None, *HAZARD_GRADES):
        raise InvalidInput(f"hazard grade must be one of {', '.join(HAZARD_GRADES)}, not {grade!r}")
    if not 1 <= limit <= MAX_LIST or offset < 0:
        raise InvalidInput(f"page size must be between 1 and {MAX_LIST} and the offset not negative")
    where = []
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


# ----------------------------------------------------------------------------------------- campaigns
@dataclass
class CampaignProgress:
    id: int
    code: str
    name: str
    status: str
    window_start: date
    window_end: date
    drawn: int = 0
    drawn_by_stratum: dict[str, int] = field(default_factory=dict)
    #: the campaign's own process instance (from its published plan), when there is one
    instance_id: int | None = None
    started: int = 0
    completed: int = 0
    terminated: int = 0

    @property
    def open(self) -> int:
        return self.started - self.completed - self.terminated

    @property
    def done_share(self) -> float | None:
        return round((self.completed + self.terminated) / self.drawn, 4) if self.drawn else None


#: the process that plans, approves and runs a campaign (processes/inspection_campaign.bpmn)
CAMPAIGN_PROCESS = "inspection_campaign"


@dataclass
class PlanInPreparation:
    """A campaign process that has not published its plan yet: being drafted, awaiting approval, or sent
    back for changes (no campaign row exists before the approval)."""
    instance_id: int
    business_key: str | None
    started_by: str
    started_at: datetime
    #: the plan's name as last submitted (the draft's ``name`` field), if any
    name: str | None = None
    #: its open human tasks (who has to act now)
    tasks: list[HumanTask] = field(default_factory=list)


def plans_in_preparation(session: Session, limit: int = 50) -> list[PlanInPreparation]:
    """Running campaign processes without a published plan, oldest first, each with its open tasks."""
    from engine.runtime.models import AuditEvent

    published = select(Publication.source_instance_id).where(Publication.kind == "plan",
                                                             Publication.source_instance_id.is_not(None))
    plans = {r.id: PlanInPreparation(r.id, r.business_key, r.started_by, r.started_at)
             for r in session.execute(select(ProcessInstance.id, ProcessInstance.business_key,
                                             ProcessInstance.started_by, ProcessInstance.started_at)
                                      .where(ProcessInstance.process_id == CAMPAIGN_PROCESS,
                                             ProcessInstance.status == "running",
                                             ProcessInstance.id.not_in(published))
                                      .order_by(ProcessInstance.id).limit(limit))}
    if not plans:
        return []
    for ht in session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(list(plans)),
                                                      HumanTask.status == "open").order_by(HumanTask.id)):
        plans[ht.instance_id].tasks.append(ht)
    for iid, diff in session.execute(select(AuditEvent.instance_id, AuditEvent.data_diff).where(
            AuditEvent.instance_id.in_(list(plans)), AuditEvent.kind == "task_completed").order_by(AuditEvent.seq)):
        name = (diff or {}).get("name")
        if isinstance(name, dict) and isinstance(name.get("new"), str):
            plans[iid].name = name["new"]
    return list(plans.values())


def campaign_progress(session: Session, limit: int = 50, campaign_ids: Sequence[int] | None = None
                      ) -> list[CampaignProgress]:
    """Per campaign (newest first): drawn entities (by stratum), and its inspections started, completed,
    terminated and still open — the children of the campaign's instance, counted by status."""
    q = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if campaign_ids is not None:
        q = q.where(Campaign.id.in_(list(campaign_ids)))
    camps = {c.id: CampaignProgress(c.id, c.code, c.name, c.status, c.window_start, c.window_end)
             for c in session.scalars(q)}
    if not camps:
        return []
    for cid, stratum, n in session.execute(select(DrawResult.campaign_id, DrawResult.stratum, func.count())
                                           .where(DrawResult.campaign_id.in_(list(camps)))
                                           .group_by(DrawResult.campaign_id, DrawResult.stratum)):
        camps[cid].drawn_by_stratum[stratum] = n
        camps[cid].drawn += n
    # the campaign process records its plan publication as "campaign:<id>" from its own instance
    refs = {f"campaign:{cid}": cid for cid in camps}
    parent_of: dict[int, int] = {}
    for ref, iid in session.execute(select(Publication.ref, Publication.source_instance_id).where(
            Publication.kind == "plan", Publication.ref.in_(list(refs)), Publication.source_instance_id.is_not(None))):
        camps[refs[ref]].instance_id = iid
        parent_of[iid] = refs[ref]
    if parent_of:
        for parent, status, n in session.execute(
                select(ProcessInstance.parent_instance_id, ProcessInstance.status, func.count())
                .where(ProcessInstance.parent_instance_id.in_(list(parent_of)))
                .group_by(ProcessInstance.parent_instance_id, ProcessInstance.status)):
            c = camps[parent_of[parent]]
            c.started += n
            if status == "completed":
                c.completed += n
            elif status == "terminated":
                c.terminated += n
    return list(camps.values())


# ---------------------------------------------------------------------------------------- hit rates
@dataclass
class Rate:
    n: int = 0
    hits: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.hits / self.n, 4) if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return _wilson(self.hits, self.n)

    def add(self, n: int, hits: int) -> None:
        self.n += n
        self.hits += hits


@dataclass
class HitRates:
    #: per risk class: the risk-drawn stratum of that class, and the control draws whose entity had that class
    by_class: dict[str, dict[str, Rate]]
    #: the whole control stratum: the unbiased base rate
    control: Rate
    #: every risk-drawn inspection
    risk_drawn: Rate

    def lift(self, klass: str) -> float | None:
        base, r = self.control.rate, self.by_class[klass]["stratum"].rate
        return round(r / base, 2) if base and r is not None else None

    def to_dict(self) -> dict:
        return {"classes": {k: {"stratum": {"n": v["stratum"].n, "hits": v["stratum"].hits, "rate": v["stratum"].rate},
                                "control": {"n": v["control"].n, "hits": v["control"].hits, "rate": v["control"].rate},
                                "lift": self.lift(k)} for k, v in self.by_class.items()},
                "control": {"n": self.control.n, "hits": self.control.hits, "rate": self.control.rate},
                "risk_drawn": {"n": self.risk_drawn.n, "hits": self.risk_drawn.hits, "rate": self.risk_drawn.rate}}


def hit_rates(session: Session, campaign_id: int | None = None) -> HitRates:
    """Share of recorded inspection results that found a violation, per stratum and class."""
    stratum = Publication.payload["stratum"].as_string()
    klass = Publication.payload["risk_class"].as_string()
    code = Publication.payload["result_code"].as_string()
    hit = func.sum(case((code.in_(VIOLATION_CODES), 1), else_=0))
    q = (select(stratum, klass, func.count(), hit).where(Publication.kind == "result")
         .group_by(stratum, klass))
    if campaign_id is not None:
        q = q.where(Publication.ref == f"campaign:{campaign_id}")
    out = HitRates({k: {"stratum": Rate(), "control": Rate()} for k in CLASSES}, Rate(), Rate())
    for st, kl, n, hits in session.execute(q):
        hits = int(hits or 0)
        if st == CONTROL:
            out.control.add(n, hits)
            if kl in out.by_class:
                out.by_class[kl]["control"].add(n, hits)
        elif st in out.by_class:
            out.by_class[st]["stratum"].add(n, hits)
            out.risk_drawn.add(n, hits)
    return out


# ---------------------------------------------------------------------------------------- daily series
def day_starts(now: datetime, days: int) -> list[datetime]:
    """Midnights (in :data:`DAY_ZONE`) of the last ``days`` days, today last, plus tomorrow's as the end."""
    today = now.astimezone(DAY_ZONE).date()
    first = today - timedelta(days=days - 1)
    return [datetime.combine(first + timedelta(days=i), time(0), DAY_ZONE) for i in range(days + 1)]


@dataclass
class Series:
    days: list[str]
    tasks_completed: list[int]
    instances_completed: list[int]
    overdue_open: list[int]

    def to_dict(self) -> dict:
        return {"days": self.days, "tasks_completed": self.tasks_completed,
                "instances_completed": self.instances_completed, "overdue_open": self.overdue_open}


def _per_day(column, bounds: list[datetime]):
    return [func.sum(case((and_(column >= bounds[i], column < bounds[i + 1]), 1), else_=0))
            for i in range(len(bounds) - 1)]


def daily_series(session: Session, now: datetime, days: int = 30) -> Series:
    """Per day of the last ``days``: human tasks completed, instances completed, and tasks that were open
    and past their due time at the end of that day (or now, for today)."""
    if not 1 <= days <= 366:
        raise InvalidInput("the series covers 1 to 366 days")
    bounds = day_starts(now, days)
    start = bounds[0]
    tasks = session.execute(select(*_per_day(HumanTask.completed_at, bounds)).where(
        HumanTask.status == "completed", HumanTask.completed_at >= start)).one()
    insts = session.execute(select(*_per_day(ProcessInstance.ended_at, bounds)).where(
        ProcessInstance.status == "completed", ProcessInstance.ended_at >= start)).one()
    # a task counts on day d when it was created by d's end, due before it, and not closed by then
    ends = [min(b, now) for b in bounds[1:]]
    overdue_cols = [func.sum(case((and_(HumanTask.created_at <= e, HumanTask.due_at < e,
                                        or_(HumanTask.completed_at.is_(None), HumanTask.completed_at > e)), 1),
                                  else_=0)) for e in ends]
    overdue = session.execute(select(*overdue_cols).where(
        HumanTask.due_at < now, or_(HumanTask.status == "open", HumanTask.completed_at > start))).one()
    label = [b.date().isoformat() for b in bounds[:-1]]
    return Series(label, [int(x or 0) for x in tasks], [int(x or 0) for x in insts], [int(x or 0) for x in overdue])


# ------------------------------------------------------------------------------------------ incidents
def open_incidents(session: Session, limit: int = 100) -> tuple[int, list[Incident]]:
    n = session.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")) or 0
    rows = list(session.scalars(select(Incident).where(Incident.status == "open")
                                .order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit)))
    return n, rows


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


def overview(session: Session, now: datetime) -> Overview:
    hz = hazards_by_grade(session)
    n_overdue_orders, _rows = overdue_orders(session, now, limit=0)
    n_incidents = session.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")) or 0
    open_tasks, overdue_tasks = session.execute(
        select(func.count(), func.sum(case((HumanTask.due_at < now, 1), else_=0)))
        .where(HumanTask.status == "open")).one()
    running = session.scalar(select(func.count()).select_from(ProcessInstance)
                             .where(ProcessInstance.status == "running")) or 0
    return Overview(hz, sum(v["total"] for v in hz.values()), n_overdue_orders, n_incidents, int(overdue_tasks or 0),
                    int(open_tasks or 0), running, hit_rates(session), daily_series(session, now),
                    campaign_progress(session, limit=10), recurrence_leaders(session, limit=10))


# --------------------------------------------------------------------- entity lookups for the areas
def entity_keys(session: Session, text: str, limit: int = 500) -> list[str]:
    """USCCs matching a search text: an exact USCC, or entities whose name contains the text."""
    from scoring.models import Entity

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
    from scoring.models import Entity

    return select(Entity.uscc).where(Entity.district.not_in(list(jurisdiction)))


def entity_names(session: Session, usccs: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{uscc: (name, district)}`` for the given keys (one indexed query)."""
    from scoring.models import Entity

    keys = sorted({k for k in usccs if k})
    if not keys:
        return {}
    return {u: (n, d) for u, n, d in session.execute(select(Entity.uscc, Entity.name, Entity.district)
                                                     .where(Entity.uscc.in_(keys)))}
