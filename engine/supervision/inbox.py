"""The officers' inbox: open tasks of a user (assigned to them) and of their groups (unclaimed),
filtered, sorted and paged, with the entity and campaign each task belongs to.

Served by indexes, never by loading states. The default view — every task I may work
on, soonest due first — is a merge of ordered index ranges: my own tasks
(``ix_human_task_status_assignee``) and, per group, the unclaimed queue
(``ix_human_task_candidate_queue``: group, claimed, due). It reads ``offset + limit`` rows per range
whatever the number of open tasks. Filtered views walk the same order and stop at ``limit``.
Counts are capped (``COUNT_CAP``): "1000+" is as useful to an officer as an exact 873,412.

An officer with a jurisdiction reads, per group, one range per district of the jurisdiction and one for
tasks without an entity (``ix_human_task_candidate_district``: group, claimed, district, due, task; the
queue rows carry their entity's district, kept by database triggers — migration 0008). A search on part
of an entity name looks the name up through its bigrams (GIN on PostgreSQL, FTS5 on SQLite, same
migration) instead of scanning the entity table; the tasks of the matching entities are then read once,
sorted and counted in Python (a few per entity), and only the page's rows in full.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import ARRAY, Integer, Text, and_, column, false, func, literal, or_, select, table, union_all
from sqlalchemy.orm import Session

from engine.runtime import clock
from engine.runtime.models import (
    NO_DUE,
    AppGroup,
    AppUser,
    HumanTask,
    HumanTaskCandidate,
    ProcessDefinition,
    ProcessInstance,
    UserGroup,
)
from scoring.models import Entity

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
    #: set by the reminder job (engine.runtime.reminders)
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
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
                "due_at": self.due_at, "created_at": self.created_at, "reminded_at": self.reminded_at,
                "escalated_at": self.escalated_at, "entity_name": self.entity_name,
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
         _HT.c.form_id, _HT.c.assignee, _HT.c.candidate_groups, _HT.c.priority, _HT.c.due_at, _HT.c.created_at,
         _HT.c.reminded_at, _HT.c.escalated_at)


def _visible(viewer: Viewer, scope: str):
    mine = _HT.c.assignee == viewer.username
    if scope == "mine":
        return mine
    if not viewer.groups:  # no groups: "groups" shows nothing, "all" only my own tasks
        return mine if scope == "all" else false()
    # a correlated EXISTS (one primary-key probe per task), not ``id IN (every unclaimed task of my groups)``,
    # which the databases build in full — hundreds of thousands of rows — before filtering
    in_groups = and_(_HT.c.assignee.is_(None), select(_HTC.c.task_id).where(
        _HTC.c.task_id == _HT.c.id, _HTC.c.group_name.in_(sorted(viewer.groups)), _HTC.c.claimed.is_(False)).exists())
    return in_groups if scope == "groups" else or_(mine, in_groups)


ENTITY_MATCHES = 500

#: SQLite's FTS5 table of name bigrams (migration 0008): rowid = entity id
_BIGRAM_FTS = table("entity_name_bigram", column("rowid", Integer), column("entity_name_bigram", Text))
#: SQLite's lower() and LIKE fold ASCII letters only (no ICU in the standard build)
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _entity_keys(session: Session, text: str, jurisdiction: tuple[str, ...]) -> list[str]:
    """USCCs matching a search text: an exact USCC, or a name containing the text (``name LIKE '%text%'``,
    the first ``ENTITY_MATCHES`` by entity id).

    A text of two or more characters is looked up through the bigram index of names: the entities whose
    names hold every bigram of the text, checked with the same LIKE. A single character has no bigram and
    is looked for by a scan, which stops at the ``ENTITY_MATCHES``-th match."""
    q = select(Entity.uscc)
    if jurisdiction:
        q = q.where(Entity.district.in_(jurisdiction))
    if len(text) == 18 and text.isalnum():
        return list(session.scalars(q.where(Entity.uscc == text.upper())))
    q = q.where(Entity.name.contains(text, autoescape=True))
    if len(text) < 2:
        return list(session.scalars(q.order_by(Entity.id).limit(ENTITY_MATCHES)))
    if session.get_bind().dialect.name == "postgresql":
        grams = sorted({text[i:i + 2] for i in range(len(text) - 1)})
        q = q.where(func.entity_name_bigrams(Entity.name).op("@>")(literal(grams, ARRAY(Text))))
        return list(session.scalars(q.order_by(Entity.id).limit(ENTITY_MATCHES)))
    # SQLite: the document of a name is the hex of each ASCII-lower-cased bigram, one FTS5 token each
    folded = text.translate(_ASCII_LOWER)
    grams = sorted({folded[i:i + 2].encode().hex() for i in range(len(folded) - 1)})
    match = " AND ".join(f'"{g}"' for g in grams)
    q = (q.join(_BIGRAM_FTS, _BIGRAM_FTS.c.rowid == Entity.id)
         .where(_BIGRAM_FTS.c.entity_name_bigram.op("MATCH")(match)).order_by(_BIGRAM_FTS.c.rowid))
    return list(session.scalars(q.limit(ENTITY_MATCHES)))


def _outside_jurisdiction(jurisdiction: tuple[str, ...]):
    """Tasks of entities registered outside the viewer's districts (tasks without an entity stay visible)."""
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


def _mine_due_key():
    return func.coalesce(_HT.c.due_at, literal(NO_DUE, _HT.c.due_at.type))


def _mine_filters(viewer: Viewer, q: TaskQuery, now: datetime) -> list:
    """Conditions on my own tasks in the default view. The due filter is on the coalesced key, not on
    ``due_at``: otherwise SQLite (no statistics) walks ``ix_human_task_status_due`` — every open task
    due before now, seconds with a million tasks — instead of ``ix_human_task_status_assignee``."""
    out = []
    if q.due == "overdue":
        out.append(_mine_due_key() < now)
    if viewer.jurisdiction:
        out.append(~_outside_jurisdiction(viewer.jurisdiction))
    return out


def _queue_ranges(viewer: Viewer, q: TaskQuery, now: datetime, group: str) -> list[list]:
    """The conditions of each ordered index range of a group's unclaimed queue in the default view: the
    whole queue, or with a jurisdiction one range per district and one for tasks without an entity
    (``district`` is the entity's, NULL without one: a task is outside the jurisdiction exactly when its
    entity is registered in another district)."""
    base = [_HTC.c.group_name == group, _HTC.c.claimed.is_(False)]
    if q.due == "overdue":
        base.append(_HTC.c.due_key < now)
    if not viewer.jurisdiction:
        return [base]
    return [[*base, _HTC.c.district == d] for d in sorted(set(viewer.jurisdiction))] + [
        [*base, _HTC.c.district.is_(None)]]


def _default_ids(session: Session, viewer: Viewer, q: TaskQuery, now: datetime) -> list[int]:
    """Soonest-due-first ids from the ordered index ranges (see the module docstring)."""
    want = q.offset + q.limit
    parts = []
    if q.scope in ("all", "mine"):
        due_key = _mine_due_key()
        mine = select(_HT.c.id.label("task_id"), due_key.label("due_key")).where(
            _HT.c.status == "open", _HT.c.assignee == viewer.username, *_mine_filters(viewer, q, now))
        parts.append(mine.order_by("due_key", "task_id").limit(want))
    if q.scope in ("all", "groups"):
        for group in sorted(viewer.groups):
            for conds in _queue_ranges(viewer, q, now, group):
                g = select(_HTC.c.task_id, _HTC.c.due_key).where(*conds)
                parts.append(g.order_by(_HTC.c.due_key, _HTC.c.task_id).limit(want))
    if not parts:
        return []
    seen: dict[int, datetime] = {}
    for task_id, due_key in session.execute(_all_of(parts)):
        seen.setdefault(task_id, due_key)
    ordered = sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
    return [task_id for task_id, _ in ordered[q.offset:want]]


def _default_count(session: Session, viewer: Viewer, q: TaskQuery, now: datetime) -> tuple[int, bool]:
    ids = set()
    if q.scope in ("all", "mine"):
        stmt = select(_HT.c.id).where(_HT.c.status == "open", _HT.c.assignee == viewer.username,
                                      *_mine_filters(viewer, q, now))
        ids.update(session.scalars(stmt.limit(COUNT_CAP + 1)))
    if q.scope in ("all", "groups"):
        for group in sorted(viewer.groups):
            if len(ids) > COUNT_CAP:
                break
            ranges = [select(_HTC.c.task_id).where(*conds).limit(COUNT_CAP + 1)
                      for conds in _queue_ranges(viewer, q, now, group)]
            ids.update(session.scalars(_all_of(ranges)))
    return min(len(ids), COUNT_CAP), len(ids) > COUNT_CAP


def _all_of(parts: list):
    """One statement reading every part (each limited and ordered on its own): one round trip, not one
    per index range."""
    if len(parts) == 1:
        return parts[0]
    return union_all(*(select(part.subquery()) for part in parts))


def _filtered_stmt(viewer: Viewer, q: TaskQuery, now: datetime, columns=_COLS, keys: list[str] | None = None):
    """The filtered view's statement; with ``keys``, the tasks of those business keys in any status (see
    :func:`_entity_page`)."""
    if keys is not None:
        stmt = select(*columns).where(_HT.c.business_key.in_(keys), _visible(viewer, q.scope))
    else:
        stmt = select(*columns).where(_HT.c.status == "open", _visible(viewer, q.scope))
    if q.process_id:
        stmt = stmt.where(_HT.c.process_id == q.process_id)
    if q.campaign_id:
        stmt = stmt.where(_HT.c.instance_id.in_(select(_PI.c.id).where(_PI.c.parent_instance_id == q.campaign_id)))
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
    if q.is_default_view:
        ids = _default_ids(session, viewer, q, now)
        rows_by_id = {r.id: r for r in _fetch(session, select(*_COLS).where(_HT.c.id.in_(ids)))} if ids else {}
        rows = [rows_by_id[i] for i in ids if i in rows_by_id]
        total, capped = _default_count(session, viewer, q, now)
    elif q.entity:
        rows, total, capped = _entity_page(session, viewer, q, now)
    else:
        stmt = _filtered_stmt(viewer, q, now)
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


_NO_TIME = datetime.min.replace(tzinfo=timezone.utc)
_SORT_KEYS = {  # the ORDER BY of the filtered views, on (id, due_at, priority, created_at)
    "due": lambda r: (r[1] is None, r[1] or _NO_TIME, r[0]),
    "priority": lambda r: (-r[2], r[1] is None, r[1] or _NO_TIME, r[0]),
    "created": lambda r: (r[3], r[0]),
}


def _entity_page(session: Session, viewer: Viewer, q: TaskQuery, now: datetime) -> tuple[list[InboxRow], int, bool]:
    """A search by entity: the tasks of the matching entities (a few per entity) are read once through the
    business-key index, with the keys they are sorted by; they are sorted and counted here, and only the
    page's rows are read in full. The status is checked here too: with ``status = 'open'`` in the statement
    SQLite (no statistics) prefers ``ix_human_task_status_due`` and walks every open task — seconds with a
    million — even for a handful of entities. No jurisdiction check per task: the entities are already
    those of the viewer's districts."""
    keys = _entity_keys(session, q.entity, viewer.jurisdiction)
    if not keys:
        return [], 0, False
    stmt = _filtered_stmt(viewer, q, now, (_HT.c.id, _HT.c.due_at, _HT.c.priority, _HT.c.created_at,
                                           _HT.c.status), keys=keys)
    found = sorted((r for r in session.execute(stmt) if r[4] == "open"), key=_SORT_KEYS[q.sort],
                   reverse=q.sort == "created")
    page = [r[0] for r in found[q.offset:q.offset + q.limit]]
    by_id = {r.id: r for r in _fetch(session, select(*_COLS).where(_HT.c.id.in_(page)))} if page else {}
    return [by_id[i] for i in page if i in by_id], min(len(found), COUNT_CAP), len(found) > COUNT_CAP


def _fetch(session: Session, stmt) -> list[InboxRow]:
    return [InboxRow(*r) for r in session.execute(stmt)]


def _decorate(session: Session, rows: Iterable[InboxRow]) -> None:
    """Entity name/district and the campaign (parent instance) of each row, two small queries."""
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
    return list(session.scalars(select(ProcessDefinition.process_id).distinct().order_by(ProcessDefinition.process_id)))




def colleagues(session: Session, groups: Iterable[str], exclude: str | None = None) -> list[tuple[str, str]]:
    """Active users in any of ``groups`` (user name, display name), for delegating a task."""
    groups = sorted(set(groups))
    if not groups:
        return []
    q = (select(AppUser.username, AppUser.display_name).distinct()
         .join(UserGroup, UserGroup.user_id == AppUser.id).join(AppGroup, AppGroup.id == UserGroup.group_id)
         .where(AppGroup.name.in_(groups), AppUser.active.is_(True)).order_by(AppUser.username))
    if exclude:
        q = q.where(AppUser.username != exclude)
    return [(u, d or u) for u, d in session.execute(q)]
