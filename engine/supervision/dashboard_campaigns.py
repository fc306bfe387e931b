"""The supervisor's numbers about campaigns: progress of each campaign (drawn entities, its inspections
started, completed, terminated), the plans still in preparation, hit rate by risk class against the control
stratum, and the daily series of throughput and overdue open tasks. Re-exported by :mod:`.dashboard`.

Hit rates count recorded inspection results (``publication`` rows of kind ``result``, whose payload carries the
result code, the stratum the entity was drawn in and its risk class) with the same definition of a hit as the
simulator: a result code in :data:`engine.supervision.inspection.VIOLATION_CODES`. ``districts`` restricts each
figure as :mod:`.dashboard_districts` describes; a campaign itself (code, name, window: its plan is published)
is listed for everyone, but its numbers count only the drawn entities, inspections and results in the
districts, and its city-wide instance is not linked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance

from .campaign_models import Campaign, DrawResult
from .dashboard_districts import scope
from .inspection import VIOLATION_CODES
from .loop_models import Publication

CLASSES = ("A", "B", "C", "D")
CONTROL = "control"
#: days are cut at midnight in this zone (the workbench's display zone)
DAY_ZONE = ZoneInfo("Asia/Shanghai")


def _wilson(hits: int, n: int) -> tuple[float, float] | None:
    if not n:
        return None
    # deferred: scoring.train imports scikit-learn (seconds), needed only when a rate is shown
    from scoring.train import wilson_interval  # noqa: PLC0415

    lo, hi = wilson_interval(hits, n)
    return round(lo, 4), round(hi, 4)


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


def plans_in_preparation(session: Session, limit: int = 50, *, districts: Sequence[str] = ()
                         ) -> list[PlanInPreparation]:
    """Running campaign processes without a published plan, oldest first, each with its open tasks. A
    plan's business key is a campaign code, not an entity: with ``districts`` none is listed (city-wide)
    unless an entity of those districts is its business key."""
    published = select(Publication.source_instance_id).where(Publication.kind == "plan",
                                                             Publication.source_instance_id.is_not(None))
    plans = {r.id: PlanInPreparation(r.id, r.business_key, r.started_by, r.started_at)
             for r in session.execute(select(ProcessInstance.id, ProcessInstance.business_key,
                                             ProcessInstance.started_by, ProcessInstance.started_at)
                                      .where(ProcessInstance.process_id == CAMPAIGN_PROCESS,
                                             ProcessInstance.status == "running",
                                             ProcessInstance.id.not_in(published),
                                             *scope(ProcessInstance.business_key, districts))
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


def campaign_progress(session: Session, limit: int = 50, campaign_ids: Sequence[int] | None = None, *,
                      districts: Sequence[str] = ()) -> list[CampaignProgress]:
    """Per campaign (newest first): drawn entities (by stratum), and its inspections started, completed,
    terminated and still open — the children of the campaign's instance, counted by status. With
    ``districts``: every campaign, but only its drawn entities and inspections (business key) in the
    districts, and no link to its own (city-wide) instance."""
    q = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if campaign_ids is not None:
        q = q.where(Campaign.id.in_(list(campaign_ids)))
    camps = {c.id: CampaignProgress(c.id, c.code, c.name, c.status, c.window_start, c.window_end)
             for c in session.scalars(q)}
    if not camps:
        return []
    for cid, stratum, n in session.execute(select(DrawResult.campaign_id, DrawResult.stratum, func.count())
                                           .where(DrawResult.campaign_id.in_(list(camps)),
                                                  *scope(DrawResult.uscc, districts))
                                           .group_by(DrawResult.campaign_id, DrawResult.stratum)):
        camps[cid].drawn_by_stratum[stratum] = n
        camps[cid].drawn += n
    # the campaign process records its plan publication as "campaign:<id>" from its own instance
    refs = {f"campaign:{cid}": cid for cid in camps}
    parent_of: dict[int, int] = {}
    for ref, iid in session.execute(select(Publication.ref, Publication.source_instance_id).where(
            Publication.kind == "plan", Publication.ref.in_(list(refs)), Publication.source_instance_id.is_not(None))):
        if not districts:
            camps[refs[ref]].instance_id = iid
        parent_of[iid] = refs[ref]
    if parent_of:
        for parent, status, n in session.execute(
                select(ProcessInstance.parent_instance_id, ProcessInstance.status, func.count())
                .where(ProcessInstance.parent_instance_id.in_(list(parent_of)),
                       *scope(ProcessInstance.business_key, districts))
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


def hit_rates(session: Session, campaign_id: int | None = None, *, districts: Sequence[str] = ()) -> HitRates:
    """Share of recorded inspection results that found a violation, per stratum and class (with
    ``districts``: the results of entities in those districts only)."""
    stratum = Publication.payload["stratum"].as_string()
    klass = Publication.payload["risk_class"].as_string()
    code = Publication.payload["result_code"].as_string()
    hit = func.sum(case((code.in_(VIOLATION_CODES), 1), else_=0))
    q = (select(stratum, klass, func.count(), hit).where(Publication.kind == "result",
                                                         *scope(Publication.uscc, districts))
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


def daily_series(session: Session, now: datetime, days: int = 30, *, districts: Sequence[str] = ()) -> Series:
    """Per day of the last ``days``: human tasks completed, instances completed, and tasks that were open
    and past their due time at the end of that day (or now, for today); with ``districts``, of the
    instances and tasks whose business key is an entity in those districts."""
    if not 1 <= days <= 366:
        raise InvalidInput("the series covers 1 to 366 days")
    bounds = day_starts(now, days)
    start = bounds[0]
    tasks = session.execute(select(*_per_day(HumanTask.completed_at, bounds)).where(
        HumanTask.status == "completed", HumanTask.completed_at >= start,
        *scope(HumanTask.business_key, districts))).one()
    insts = session.execute(select(*_per_day(ProcessInstance.ended_at, bounds)).where(
        ProcessInstance.status == "completed", ProcessInstance.ended_at >= start,
        *scope(ProcessInstance.business_key, districts))).one()
    # a task counts on day d when it was created by d's end, due before it, and not closed by then
    ends = [min(b, now) for b in bounds[1:]]
    overdue_cols = [func.sum(case((and_(HumanTask.created_at <= e, HumanTask.due_at < e,
                                        or_(HumanTask.completed_at.is_(None), HumanTask.completed_at > e)), 1),
                                  else_=0)) for e in ends]
    overdue = session.execute(select(*overdue_cols).where(
        HumanTask.due_at < now, or_(HumanTask.status == "open", HumanTask.completed_at > start),
        *scope(HumanTask.business_key, districts))).one()
    label = [b.date().isoformat() for b in bounds[:-1]]
    return Series(label, [int(x or 0) for x in tasks], [int(x or 0) for x in insts], [int(x or 0) for x in overdue])
