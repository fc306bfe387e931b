"""Changing a formed team: replace a member who cannot serve (leave, recusal, certificate lapse) by a draw
from the same filtered pool, and release a team's assignments when the inspection is over or its instance
is terminated."""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import ids
from engine.errors import Conflict, InvalidInput, NotFound

from .registries import get_entity, local_date
from .registry_models import Inspector, TeamAssignment, TeamDraw
from .teams_cache import LAST_TEAMS
from .teams_pool import build_pool, pool_doc, raise_missing
from .teams_records import TeamResult, leader_of, member_doc, result_of, team_members
from .teams_selection import ALGORITHM, Candidate, TeamPolicy, select_team

_DRAW = TeamDraw.__table__
_ASSIGNMENT = TeamAssignment.__table__


def replace_member(session: Session, assignment: TeamAssignment, reason: str, *, now: datetime,
                   instance_id: int | None = None, task_key: str | None = None) -> TeamResult:
    """Release ``assignment`` (leave, recusal, certificate lapse) and redraw its place, logged.

    Idempotent per (``instance_id``, ``task_key``), by default (the assignment's instance, ``replace:<id>``).
    """
    if not reason or not reason.strip():
        raise InvalidInput("a replacement needs a reason (leave, recusal, …)")
    instance_id = assignment.instance_id if instance_id is None else instance_id
    task_key = task_key or f"replace:{assignment.id}"
    existing = session.scalar(select(TeamDraw).where(TeamDraw.instance_id == instance_id,
                                                     TeamDraw.task_key == task_key))
    if existing is not None:
        return result_of(existing)
    if assignment.released_at is not None:
        raise Conflict(f"assignment {assignment.id} was already released ({assignment.release_reason})")
    team = session.get(TeamDraw, assignment.team_id)
    entity = get_entity(session, assignment.entity_id)
    known = txcache.peek(session, LAST_TEAMS)
    if known is not None:  # the entity's last team changes: read it from the database from now on
        known.pop(entity.id, None)
    inputs = team.inputs
    policy = TeamPolicy(**inputs["policy"])
    start, end = (date.fromisoformat(d) for d in inputs["window"])
    start = min(max(start, local_date(now)), end)
    leaving = session.get(Inspector, assignment.inspector_id)
    assignment.released_at, assignment.release_reason = now, reason.strip()[:200]
    session.flush()
    seed = hashlib.sha256(f"{team.seed}|replace|{assignment.id}".encode()).hexdigest()
    ever = set(session.scalars(select(TeamAssignment.inspector_id).where(TeamAssignment.team_id == team.id)))
    remaining = team_members(session, team.id)
    fixed = [(Candidate.of(i, seed), a.role) for a, i in remaining]
    heir = None
    need_leader = not any(r == "leader" for _c, r in fixed)
    if need_leader:  # a departing leader: the first leader-eligible remaining officer (key order) succeeds
        heirs = sorted((c for c, r in fixed if r == "member" and c.leader_eligible
                        and c.seniority >= policy.min_leader_seniority), key=lambda c: c.key)
        if heirs:
            heir = heirs[0]
            fixed = [(c, "leader" if c.id == heir.id else r) for c, r in fixed]
            need_leader = False
    pool = build_pool(session, entity=entity, seed=seed, start=start, end=end, policy=policy, exclude_ids=ever,
                      before_team=team.id)
    ordered = sorted(pool.candidates + (pool.rotation_excluded if policy.rotation != "strict" else []),
                     key=lambda c: c.key)
    picks, missing = select_team(ordered, inputs["skills"], inputs["team_size"], policy, fixed=fixed,
                                 need_leader=need_leader, min_officers=policy.min_officers)
    if missing:
        raise_missing(entity, missing, pool,
                      f"cannot replace {leaving.code} ({reason}) on the team for {entity.uscc}")
    draw = TeamDraw(id=ids.take(session, _DRAW.name, 1)[0], kind="replace", team_id=team.id, instance_id=instance_id,
                    task_key=task_key, entity_id=entity.id, seed=seed, algorithm=ALGORITHM,
                    inputs={**inputs, "window": [start.isoformat(), end.isoformat()], "replaces": assignment.id,
                            "released_inspector": leaving.code, "reason": reason,
                            "promoted": heir.code if heir else None,
                            "fixed": [{**asdict(c), "role": r} for c, r in fixed]},
                    pool=pool_doc(pool, policy.rotation != "strict"), result={}, created_at=now)
    session.add(draw)
    session.flush()
    if heir is not None:  # the heir's member row is closed and a leader row opened: rows never change role
        for a, _i in remaining:
            if a.inspector_id == heir.id:
                a.released_at, a.release_reason = now, "promoted to leader"
        picks = [(heir, "leader")] + picks
    rows = _assign(session, draw, team.id, entity.id, picks, now)
    drawn = [r for r in rows if heir is None or r.inspector_id != heir.id]
    if heir is not None:
        for a, _i in remaining:
            if a.inspector_id == heir.id:
                a.replaced_by_id = rows[0].id
    successor = drawn[0] if drawn else (rows[0] if rows else None)
    assignment.replaced_by_id = successor.id if successor else None
    draw.result = _result_doc(session, draw, rows, promoted=heir.code if heir else None,
                              released=[{"assignment_id": assignment.id, "code": leaving.code, "reason": reason}])
    session.flush()
    return result_of(draw)


def replace_inspector(session: Session, team_id: int, inspector_code: str, reason: str, *, now: datetime,
                      instance_id: int | None = None, task_key: str | None = None) -> TeamResult:
    """:func:`replace_member` by the inspector's code (the open assignment on ``team_id``)."""
    if instance_id is not None and task_key is not None:
        done = session.scalar(select(TeamDraw).where(TeamDraw.instance_id == instance_id,
                                                     TeamDraw.task_key == task_key))
        if done is not None:
            return result_of(done)
    a = session.scalar(select(TeamAssignment).join(Inspector, Inspector.id == TeamAssignment.inspector_id)
                       .where(TeamAssignment.team_id == team_id, Inspector.code == inspector_code,
                              TeamAssignment.released_at.is_(None)))
    if a is None:
        raise NotFound(f"inspector {inspector_code!r} is not on team {team_id}")
    return replace_member(session, a, reason, now=now, instance_id=instance_id, task_key=task_key)


def replace_inspectors(session: Session, team_id: int, inspectors: str | list, reason: str, *, now: datetime,
                       instance_id: int | None = None, task_key: str | None = None) -> TeamResult:
    """Replace several members of ``team_id`` one after another (a granted recusal request naming two officers),
    each by :func:`replace_member` and logged as its own draw; returns the team after the last.

    ``inspectors``: codes or user names of open members, a list or one string separated by commas (``,``, ``，``,
    ``、``). Every name must be an open member before anything changes (:class:`NotFound` names the ones that are
    not). Idempotent per (``instance_id``, ``task_key``): the n-th replacement is keyed ``<task_key>#<n>``.
    """
    names = _names(inspectors)
    if not names:
        raise InvalidInput("name at least one team member to replace")
    if instance_id is not None and task_key is not None:
        keys = [f"{task_key}#{n}" for n in range(len(names))]
        done = {d.task_key: d for d in session.scalars(select(TeamDraw).where(
            TeamDraw.instance_id == instance_id, TeamDraw.task_key.in_(keys)))}
        if len(done) == len(keys):  # a retried task: what it did the first time
            return result_of(done[keys[-1]])
    missing = [n for n in names if _open_assignment(session, team_id, n) is None]
    if missing:
        raise NotFound(f"not on team {team_id}: {', '.join(missing)}")
    result = None
    for n, name in enumerate(names):  # found again each time: a replaced leader's heir has a new assignment
        key = f"{task_key}#{n}" if task_key is not None else None
        result = replace_member(session, _open_assignment(session, team_id, name), reason, now=now,
                                instance_id=instance_id, task_key=key)
    return result


def _open_assignment(session: Session, team_id: int, name: str) -> TeamAssignment | None:
    return next((a for a, i in team_members(session, team_id) if name in (i.code, i.username)), None)


def _names(inspectors: str | list) -> list[str]:
    raw = inspectors if isinstance(inspectors, list) else re.split(r"[,，、\s]+", str(inspectors or ""))
    out: list[str] = []
    for name in (str(x).strip() for x in raw):
        if name and name not in out:
            out.append(name)
    return out


def release_team(session: Session, team_id: int, *, now: datetime, reason: str = "completed") -> int:
    """Close every open assignment of a team (the inspection is over): frees the officers' workload."""
    if session.get(TeamDraw, team_id) is None:
        raise NotFound(f"team {team_id} not found")
    n = 0
    for a, _i in team_members(session, team_id):
        a.released_at, a.release_reason = now, reason
        n += 1
    session.flush()
    return n


def release_for_instance(session: Session, instance_id: int, reason: str, now: datetime) -> dict | None:
    """An administrator terminated ``instance_id``: its process will never reach "Release the team", so close
    the open assignments of every team it drew here (the officers' workload would otherwise count them for
    ever and the cap keep them out of later draws). A runtime terminate hook (``engine.bootstrap``)."""
    rows = session.execute(select(TeamAssignment.id, TeamAssignment.team_id).where(
        TeamAssignment.instance_id == instance_id, TeamAssignment.released_at.is_(None))).all()
    if not rows:
        return None
    note = f"instance terminated: {reason.strip()}"[:200]
    # an ORM-enabled UPDATE: loaded assignments get the new values and the transaction's cached workload goes
    session.execute(update(TeamAssignment).where(TeamAssignment.id.in_([r.id for r in rows]))
                    .values(released_at=now, release_reason=note))
    return {"teams_released": sorted({r.team_id for r in rows}), "assignments_released": len(rows)}


def _assign(session: Session, draw: TeamDraw, team_id: int, entity_id: int, picks, now) -> list[TeamAssignment]:
    task_key = draw.task_key if draw.kind == "form" else session.get(TeamDraw, team_id).task_key
    rows = [TeamAssignment(id=aid, team_id=team_id, draw_id=draw.id, instance_id=draw.instance_id,
                           task_key=task_key, entity_id=entity_id, inspector_id=c.id, role=role, assigned_at=now)
            for aid, (c, role) in zip(ids.take(session, _ASSIGNMENT.name, len(picks)), picks)]
    session.add_all(rows)
    session.flush()
    return rows


def _result_doc(session: Session, draw: TeamDraw, new_rows: list[TeamAssignment], **extra) -> dict:
    team_id = draw.team_id or draw.id
    members = [member_doc(a.id, a.role, i) for a, i in team_members(session, team_id)]
    return {"team_id": team_id, "draw_id": draw.id, "seed": draw.seed, "algorithm": draw.algorithm,
            "members": members, "leader": leader_of(members),
            "assignment_ids": [r.id for r in new_rows], **extra}
