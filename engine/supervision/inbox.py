"""The officers' inbox: open tasks of a user (assigned to them) and of their groups (unclaimed),
filtered, sorted and paged, with the entity and campaign each task belongs to.

Served by indexes, never by loading states (DESIGN.md §7). The default view — every task I may work
on, soonest due first — is a merge of ordered index ranges: my own tasks
(``ix_human_task_status_assignee``) and, per group, the unclaimed queue
(``ix_human_task_candidate_queue``: group, claimed, due). It reads ``offset + limit`` rows per range
whatever the number of open tasks. Filtered views walk the same order and stop at ``limit``.
Counts are capped (``COUNT_CAP``): "1000+" is as useful to an officer as an exact 873,412.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import Session

from engine.runtime import clock
from engine.runtime.models import NO_DUE, HumanTask, HumanTaskCandidate, ProcessInstance

COUNT_CAP = 1000
SCOPES = ("all", "mine", "groups")
SORTS = ("due", "priority", "created")
DUE_FILTERS = ("overdue", "today", "week", "none")

_HT = HumanTask.__table__
_HTC = HumanTaskCandidate.__table__
_PI = ProcessInstance.__table__


@dataclass(frozen=True)
class Viewer:
    """Who is asking: user name, groups, and jurisdiction (district codes; empty = everywhere)."""

    username: str
    groups: frozenset[str] = frozenset()
    jurisdiction: tuple[str, ...] = ()


@dataclass
class TaskQuery:
    scope: str = "all"
    process_id: str | None = None
    campaign_id: int | None = None
    #: a USCC, or part of an entity name
    entity: str | None = None
    due: str | None = None
    min_priority: int | None = None
    sort: str = "due"
    limit: int = 50
    offset: int = 0

    def normalised(self) -> "TaskQuery":
        self.scope = self.scope if self.scope in SCOPES else "all"
        self.sort = self.sort if self.sort in SORTS else "due"
        self.due = self.due if self.due in DUE_FILTERS else None
        self.limit = max(1, min(int(self.limit or 50), 200))
        self.offset = max(0, int(self.offset or 0))
        self.entity = (self.entity or "").strip() or None
        self.process_id = (self.process_id or "").strip() or None
        return self

    @property
    def is_default_view(self) -> bool:
        return (self.sort == "due" and not self.process_id and not self.campaign_id and not self.entity
                and self.min_priority is None and self.due in (None, "overdue"))


@dataclass
class InboxRow:
    id: int
    instance_id: int
    bpmn_id: str
    name: str | None
    process_id: str
    business_key: str | None
    form_id: str | None
    assignee: str | None
    candidate_groups: list[str]
    priority: int
    due_at: datetime | None
    created_at: datetime
    entity_name: str | None = None
    district: str | None = None
    campaign_id: int | None = None
    campaign_key: str | None = None

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at < now

    def to_dict(self) -> dict:
        return {"task_id": self.id, "instance_id": self.instance_id, "bpmn_id": self.bpmn_id, "name": self.name,
                "process_id": self.process_id, "business_key": self.business_key, "form_id": self.form_id,
                "assignee": self.assignee, "candidate_groups": self.candidate_groups, "priority": self.priority,
                "due_at": self.due_at, "created_at": self.created_at, "entity_name": self.entity_name,
                "district": self.district, "campaign_id": self.campaign_id, "campaign_key": self.campaign_key}


@dataclass
class InboxPage:
    rows: list[InboxRow]
    total: int
    capped: bool
    query: TaskQuery
    now: datetime = field(default_factory=clock.now)

    @property
    def has_next(self) -> bool:
        return self.query.offset + len(self.rows) < self.total or (self.capped and len(self.rows) == self.query.limit)


_COLS = (_HT.c.id, _HT.c.instance_id, _HT.c.bpmn_id, _HT.c.name, _HT.c.process_id, _HT.c.business_key,
         _HT.c.form_id, _HT.c.assignee, _HT.c.candidate_groups, _HT.c.priority, _HT.c.due_at, _HT.c.created_at)


def _visible(viewer: Viewer, scope: str):
    mine = _HT.c.assignee == viewer.username
    if not viewer.groups or scope == "mine":
        return mine
    in_groups = and_(_HT.c.assignee.is_(None), _HT.c.id.in_(
        select(_HTC.c.task_id).where(_HTC.c.group_name.in_(sorted(viewer.groups)), _HTC.c.claimed.is_(False))))
    return in_groups if scope == "groups" else or_(mine, in_groups)


def _entity_keys(session: Session, text: str, jurisdiction: tuple[str, ...]) -> list[str]:
    """USCCs matching a search text: an exact USCC, or a name containing the text (first 500)."""
    from scoring.models import Entity

    q = select(Entity.uscc)
    if len(text) == 18 and text.isalnum():
        q = q.where(Entity.uscc == text.upper())
    else:
        q = q.where(Entity.name.contains(text, autoescape=True))
    if jurisdiction:
        q = q.where(Entity.district.in_(jurisdiction))
    return list(session.scalars(q.limit(500)))


def _outside_jurisdiction(jurisdiction: tuple[str, ...]):
    """Tasks of entities registered outside the viewer's districts (tasks without an entity stay visible)."""
    from scoring.models import Entity

    return select(Entity.uscc).where(Entity.uscc == _HT.c.business_key, Entity.district.not_in(jurisdiction)).exists()


def _due_condition(column, due: str | None, now: datetime):
    if due == "overdue":
        return column < now
    if due == "today":
        return column < now + timedelta(days=1)
    if due == "week":
        return column < now + timedelta(days=7)
    if due == "none":
        return column.is_(None) if column is _HT.c.due_at else column == NO_DUE
    return None


def _default_ids(session: Session, viewer: Viewer, q: TaskQuery, now: datetime) -> list[int]:
    """Soonest-due-first ids from the ordered index ranges (see the module docstring)."""
    want = q.offset + q.limit
    parts = []
    if q.scope in ("all", "mine"):
        mine = select(_HT.c.id.label("task_id"), func.coalesce(_HT.c.due_at, literal(NO_DUE, _HT.c.due_at.type))
                      .label("due_key")).where(_HT.c.status == "open", _HT.c.assignee == viewer.username)
        if q.due == "overdue":
            mine = mine.where(_HT.c.due_at < now)
        parts.append(mine.order_by("due_key", "task_id").limit(want))
    if q.scope in ("all", "groups"):
        for group in sorted(viewer.groups):
            g = select(_HTC.c.task_id, _HTC.c.due_key).where(_HTC.c.group_name == group, _HTC.c.claimed.is_(False))
            if q.due == "overdue":
                g = g.where(_HTC.c.due_key < now)
            parts.append(g.order_by(_HTC.c.due_key, _HTC.c.task_id).limit(want))
    if not parts:
        return []
    seen: dict[int, datetime] = {}
    for part in parts:
        for task_id, due_key in session.execute(select(part.subquery())):
            seen.setdefault(task_id, due_key)
    ordered = sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
    return [task_id for task_id, _ in ordered[q.offset:want]]


def _default_count(session: Session, viewer: Viewer, q: TaskQuery, now: datetime) -> tuple[int, bool]:
    ids = set()
    if q.scope in ("all", "mine"):
        stmt = select(_HT.c.id).where(_HT.c.status == "open", _HT.c.assignee == viewer.username)
        if q.due == "overdue":
            stmt = stmt.where(_HT.c.due_at < now)
        ids.update(session.scalars(stmt.limit(COUNT_CAP + 1)))
    if q.scope in ("all", "groups"):
        for group in sorted(viewer.groups):
            if len(ids) > COUNT_CAP:
                break
            stmt = select(_HTC.c.task_id).where(_HTC.c.group_name == group, _HTC.c.claimed.is_(False))
            if q.due == "overdue":
                stmt = stmt.where(_HTC.c.due_key < now)
            ids.update(session.scalars(stmt.limit(COUNT_CAP + 1)))
    return min(len(ids), COUNT_CAP), len(ids) > COUNT_CAP


def _filtered_stmt(session: Session, viewer: Viewer, q: TaskQuery, now: datetime):
    stmt = select(*_COLS).where(_HT.c.status == "open", _visible(viewer, q.scope))
    if q.process_id:
        stmt = stmt.where(_HT.c.process_id == q.process_id)
    if q.campaign_id:
        stmt = stmt.where(_HT.c.instance_id.in_(select(_PI.c.id).where(_PI.c.parent_instance_id == q.campaign_id)))
    if q.entity:
        stmt = stmt.where(_HT.c.business_key.in_(_entity_keys(session, q.entity, viewer.jurisdiction)))
    if q.min_priority is not None:
        stmt = stmt.where(_HT.c.priority >= q.min_priority)
    cond = _due_condition(_HT.c.due_at, q.due, now)
    if cond is not None:
        stmt = stmt.where(cond)
    return stmt


def list_tasks(session: Session, viewer: Viewer, query: TaskQuery | None = None, *,
               now: datetime | None = None) -> InboxPage:
    q = (query or TaskQuery()).normalised()
    now = now or clock.now()
    if q.is_default_view and not viewer.jurisdiction:
        ids = _default_ids(session, viewer, q, now)
        rows_by_id = {r.id: r for r in _fetch(session, select(*_COLS).where(_HT.c.id.in_(ids)))} if ids else {}
        rows = [rows_by_id[i] for i in ids if i in rows_by_id]
        total, capped = _default_count(session, viewer, q, now)
    else:
        stmt = _filtered_stmt(session, viewer, q, now)
        if viewer.jurisdiction:
            stmt = stmt.where(~_outside_jurisdiction(viewer.jurisdiction))
        order = {"due": (_HT.c.due_at.is_(None), _HT.c.due_at, _HT.c.id),
                 "priority": (_HT.c.priority.desc(), _HT.c.due_at.is_(None), _HT.c.due_at, _HT.c.id),
                 "created": (_HT.c.created_at.desc(), _HT.c.id.desc())}[q.sort]
        rows = _fetch(session, stmt.order_by(*order).offset(q.offset).limit(q.limit))
        n = session.scalar(select(func.count()).select_from(stmt.with_only_columns(_HT.c.id).limit(COUNT_CAP + 1)
                                                            .subquery()))
        total, capped = min(n, COUNT_CAP), n > COUNT_CAP
    _decorate(session, rows)
    return InboxPage(rows, total, capped, q, now)


def _fetch(session: Session, stmt) -> list[InboxRow]:
    return [InboxRow(*r) for r in session.execute(stmt)]


def _decorate(session: Session, rows: Iterable[InboxRow]) -> None:
    """Entity name/district and the campaign (parent instance) of each row, two small queries."""
    from scoring.models import Entity

    rows = list(rows)
    keys = {r.business_key for r in rows if r.business_key}
    if keys:
        info = {u: (n, d) for u, n, d in session.execute(
            select(Entity.uscc, Entity.name, Entity.district).where(Entity.uscc.in_(keys)))}
        for r in rows:
            r.entity_name, r.district = info.get(r.business_key, (None, None))
    inst_ids = {r.instance_id for r in rows}
    if inst_ids:
        parent = _PI.alias("parent")
        links = {i: (p, k) for i, p, k in session.execute(
            select(_PI.c.id, _PI.c.parent_instance_id, parent.c.business_key)
            .select_from(_PI.outerjoin(parent, parent.c.id == _PI.c.parent_instance_id))
            .where(_PI.c.id.in_(inst_ids)))}
        for r in rows:
            r.campaign_id, r.campaign_key = links.get(r.instance_id, (None, None))


def process_ids(session: Session) -> list[str]:
    """Deployed process ids (for the filter menu; not a scan of the open tasks)."""
    from engine.runtime.models import ProcessDefinition

    return list(session.scalars(select(ProcessDefinition.process_id).distinct().order_by(ProcessDefinition.process_id)))


