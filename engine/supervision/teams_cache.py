"""What team formation reads of the registry, once per transaction (:mod:`engine.txcache`): the
inspectors, their leaves, declared conflicts, open assignments (the workload) and each entity's last team.

A campaign launch forms thousands of teams in one transaction; :func:`prefetch` reads the conflicts and last
teams of all its entities in a few queries. While a batch of starts is split over two processes
(:mod:`engine.runtime.parallel`), the workload is a :class:`SharedWorkload` in shared memory.
"""
from __future__ import annotations

import multiprocessing
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import chunks
from engine.runtime import parallel

from .registries import conflicts_with, leaves_overlapping, open_assignment_counts
from .registry_models import Inspector, InspectorConflict, InspectorLeave, TeamAssignment, TeamDraw
from .teams_selection import InspectorRow

INSPECTOR_TABLES = (Inspector.__tablename__,)
_LEAVE_TABLES = (InspectorLeave.__tablename__,)
WORKLOAD_TABLES = (TeamAssignment.__tablename__,)
LAST_TEAMS = "teams.last_team"
_CONFLICTS = "teams.conflicts"


def all_inspectors(session: Session) -> tuple[InspectorRow, ...]:
    """Every inspector, by code (cached for the transaction: :mod:`engine.txcache`)."""
    def load():
        cols = [getattr(Inspector, f) for f in InspectorRow.__dataclass_fields__]
        return tuple(InspectorRow(*r[:7], tuple(sorted(r[7] or ())), *r[8:])
                     for r in session.execute(select(*cols).order_by(Inspector.code)))
    return txcache.get(session, "teams.inspectors", INSPECTOR_TABLES, load)


def inspectors_by_id(session: Session) -> dict[int, InspectorRow]:
    """:func:`all_inspectors` by id."""
    return txcache.get(session, "teams.inspectors_by_id", INSPECTOR_TABLES,
                       lambda: {i.id: i for i in all_inspectors(session)})


def leaves_in_window(session: Session, start: date, end: date) -> dict[int, list[tuple[date, date, str]]]:
    """Inspector id -> its leaves ``(start, end, reason)`` that overlap ``[start, end]``."""
    def load():
        return {iid: [(lv.start_date, lv.end_date, lv.reason) for lv in rows]
                for iid, rows in leaves_overlapping(session, start, end).items()}
    return txcache.get(session, ("teams.leaves", start, end), _LEAVE_TABLES, load)


def open_workload(session: Session) -> "dict[int, int] | SharedWorkload":
    """Inspector id -> its open assignments (``teams.workload``: team formation keeps it current itself)."""
    return txcache.get(session, "teams.workload", WORKLOAD_TABLES, lambda: open_assignment_counts(session))


class SharedWorkload:
    """The officers' open assignments while a batch of starts runs in two processes
    (:mod:`engine.runtime.parallel`): what the transaction read, plus what each process added since, in
    shared memory. :func:`engine.supervision.teams.form_team` holds :attr:`lock` from reading the pool to
    adding its team, so two teams formed at the same moment in the two processes never both take an officer's
    last free slot."""

    def __init__(self, base: dict[int, int], inspector_ids) -> None:
        self.base = dict(base)
        self.index = {iid: k for k, iid in enumerate(sorted(set(inspector_ids) | set(base)))}
        n = max(1, len(self.index))
        self.added = (multiprocessing.RawArray("q", n), multiprocessing.RawArray("q", n))
        self.mine = 0  # the child adds to the other array
        self.lock = parallel.SharedLock()
        #: entity id -> the members of the team this process formed for it (not shared: sent back)
        self.formed: dict[int, set[int]] = {}

    def get(self, inspector_id: int, default: int = 0) -> int:
        k = self.index.get(inspector_id)
        base = self.base.get(inspector_id, default)
        return base if k is None else base + self.added[0][k] + self.added[1][k]

    def __getitem__(self, inspector_id: int) -> int:
        return self.get(inspector_id)

    def add(self, inspector_id: int) -> None:
        self.added[self.mine][self.index[inspector_id]] += 1

    def merged(self, with_child: bool) -> dict[int, int]:
        out = dict(self.base)
        for iid, k in self.index.items():
            n = self.added[0][k] + (self.added[1][k] if with_child else 0)
            if n:
                out[iid] = out.get(iid, 0) + n
        return out


class _ShareWorkload:
    """:class:`~engine.runtime.parallel.ForkHook`: the workload in shared memory while a batch is split."""

    id_tables = (TeamDraw.__tablename__, TeamAssignment.__tablename__)

    def before_fork(self, session: Session) -> SharedWorkload:
        shared = SharedWorkload(open_workload(session), inspectors_by_id(session))
        txcache.put(session, "teams.workload", WORKLOAD_TABLES, shared)
        return shared

    def in_child(self, session: Session, shared: SharedWorkload) -> None:
        shared.mine = 1

    def child_result(self, session: Session, shared: SharedWorkload) -> dict[int, set[int]]:
        return shared.formed

    def after_join(self, session: Session, shared: SharedWorkload, formed: dict[int, set[int]] | None) -> None:
        txcache.put(session, "teams.workload", WORKLOAD_TABLES, shared.merged(formed is not None))
        known = txcache.peek(session, LAST_TEAMS)
        if formed and known is not None:  # the entities' last teams: those the child formed too
            known.update(formed)


parallel.register(_ShareWorkload())


def prefetch(session: Session, entities: list) -> None:
    """Read, in a few batched queries, what forming teams for many ``entities`` (campaign launch) would read
    one entity at a time: declared conflicts and each entity's last team. Kept for the transaction
    (:mod:`engine.txcache`); conflicts are dropped when the conflict table changes, and team formation and
    replacement keep the last teams current as they form and change teams."""
    usccs = sorted({e.uscc for e in entities})
    ids = sorted({e.id for e in entities})
    conflicts: dict[str, dict[int, str]] = {u: {} for u in usccs}
    for chunk in chunks(usccs):
        for iid, uscc, reason in session.execute(
                select(InspectorConflict.inspector_id, InspectorConflict.entity_uscc, InspectorConflict.reason)
                .where(InspectorConflict.entity_uscc.in_(chunk))):
            conflicts[uscc][iid] = reason
    last_form: dict[int, int] = {}
    for chunk in chunks(ids):
        last_form.update(session.execute(
            select(TeamDraw.entity_id, func.max(TeamDraw.id)).where(
                TeamDraw.entity_id.in_(chunk), TeamDraw.kind == "form").group_by(TeamDraw.entity_id)).all())
    last: dict[int, set[int]] = {i: set() for i in ids}
    for chunk in chunks(sorted(set(last_form.values()))):
        replaced = {(d.team_id, d.inputs.get("replaces")) for d in session.scalars(
            select(TeamDraw).where(TeamDraw.team_id.in_(chunk)))}
        for aid, team_id, entity_id, iid in session.execute(
                select(TeamAssignment.id, TeamAssignment.team_id, TeamAssignment.entity_id,
                       TeamAssignment.inspector_id).where(TeamAssignment.team_id.in_(chunk))):
            if (team_id, aid) not in replaced and last_form.get(entity_id) == team_id:
                last[entity_id].add(iid)
    txcache.put(session, _CONFLICTS, (InspectorConflict.__tablename__,), conflicts)
    prior = txcache.peek(session, LAST_TEAMS) or {}
    txcache.put(session, LAST_TEAMS, (), {**prior, **last})


def entity_conflicts(session: Session, uscc: str) -> dict[int, str]:
    """Inspector id -> the reason of its declared conflict with the entity ``uscc``."""
    known = txcache.peek(session, _CONFLICTS)
    if known is not None and uscc in known:
        return known[uscc]
    return conflicts_with(session, uscc)


def last_team_members(session: Session, entity_id: int, *, before_team: int | None) -> set[int]:
    """Inspectors who served on the entity's previous team (members replaced before the visit did not)."""
    if before_team is None:
        known = txcache.peek(session, LAST_TEAMS)
        if known is not None and entity_id in known:
            return known[entity_id]
    q = select(TeamDraw.id).where(TeamDraw.entity_id == entity_id, TeamDraw.kind == "form")
    if before_team is not None:
        q = q.where(TeamDraw.id < before_team)
    last = session.scalar(q.order_by(TeamDraw.id.desc()).limit(1))
    if last is None:
        return set()
    replaced = {d.inputs.get("replaces") for d in session.scalars(select(TeamDraw).where(TeamDraw.team_id == last))}
    return {iid for aid, iid in session.execute(select(TeamAssignment.id, TeamAssignment.inspector_id)
                                                .where(TeamAssignment.team_id == last)) if aid not in replaced}
