"""Team formation: a random, verifiable draw of the inspectors who visit one drawn entity.

**Pool.** Inspectors whose jurisdiction covers the entity's district (a city- or province-level officer
covers every district below: "borrow from a higher level"), active, and for officers holding an
enforcement certificate valid through the inspection window; then, with the reason of each exclusion
logged: on leave during the window, a declared conflict with the entity (recusal), at the workload cap
(open assignments ≥ ``workload_cap``), on this entity's last team (rotation).

**Draw** (algorithm :data:`ALGORITHM`). ``seed = SHA-256(instance id | entity USCC | campaign seed)``;
every candidate's key is ``HMAC-SHA256(seed, inspector code)``; candidates are taken in ascending key
order, i.e. a uniform random permutation anyone can recompute:

1. the leader: the first leader-eligible officer (seniority ≥ ``min_leader_seniority``);
2. for each required skill (sorted) not yet covered: the first officer holding it; if no officer does and
   experts are allowed, the first expert holding it (an expert is never counted as an officer);
3. members in key order until the team has ``team_size`` officers (at least two, the legal minimum).

Every rule that cannot be met is collected and raised at once as :class:`NoQualifiedInspector`, naming what
is missing and where ("no certified officer with skill 'drug_gsp' available in district 410105"). With
rotation ``prefer`` (default) a draw that fails only because of rotation is repeated without it and says
so (``rotation_relaxed``); ``strict`` never relaxes it.

**Replacement** (leave, recusal or certificate lapse after assignment): the member's assignment is
released with the reason, and the gap is redrawn from the same filtered pool (same window, skills and
policy; everyone who was ever on the team excluded) with ``seed = SHA-256(team seed | replace |
assignment id)``. A departing leader is succeeded by a leader-eligible remaining officer if there is one,
else by a drawn one. Fewer than two certified officers left → :class:`NoQualifiedInspector`.

Draws and assignments are keyed by (instance, task): calling again with the same key returns the recorded
team and writes nothing. Functions take a ``Session`` and never commit.

Where it lives: :mod:`.teams_selection` (seed, keys, policy and selection rules: the pure, replayable part),
:mod:`.teams_cache` (what is read of the registry once per transaction, and the workload shared by a split
batch), :mod:`.teams_pool` (the filtered pool and its record), :mod:`.teams_records` (results, members, team
history, :func:`verify_draw`), :mod:`.teams_replace` (replacement and release); team formation itself,
:func:`form_team`, is here.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine import txcache
from engine.db import RowInserter, ids
from engine.errors import Conflict, InvalidInput

from .registries import get_entity, local_date
from .registry_models import Skill, TeamAssignment, TeamDraw
from .teams_cache import LAST_TEAMS, WORKLOAD_TABLES, SharedWorkload, inspectors_by_id, open_workload, prefetch
from .teams_pool import Pool, build_pool, pool_text, raise_missing
from .teams_records import ROLE_ORDER, TeamResult, leader_of, member_doc, result_of, team_doc, team_members, verify_draw
from .teams_replace import release_for_instance, release_team, replace_inspector, replace_inspectors, replace_member
from .teams_selection import (
    ALGORITHM,
    Candidate,
    InspectorRow,
    NoQualifiedInspector,
    TeamPolicy,
    draw_seed,
    inspector_key,
    select_team,
)

__all__ = [
    "ALGORITHM", "Candidate", "InspectorRow", "NoQualifiedInspector", "Pool", "SharedWorkload", "TeamPolicy",
    "TeamResult", "build_pool", "draw_seed", "form_team", "inspector_key", "prefetch", "release_for_instance",
    "release_team", "replace_inspector", "replace_inspectors", "replace_member", "select_team", "team_doc",
    "team_members", "verify_draw",
]

_DRAW = TeamDraw.__table__
_ASSIGNMENT = TeamAssignment.__table__


def _known_skills(session: Session) -> frozenset[str]:
    return txcache.get(session, "teams.skills", (Skill.__tablename__,),
                       lambda: frozenset(session.scalars(select(Skill.code))))


def _window(now: datetime, start: date | None, end: date | None) -> tuple[date, date]:
    start = start or local_date(now)
    end = end or start
    if end < start:
        raise InvalidInput(f"window end {end} is before its start {start}")
    return start, end


def _check_skills(session: Session, skills: list[str]) -> list[str]:
    skills = sorted(set(skills))
    known = _known_skills(session) if skills else frozenset()
    unknown = [s for s in skills if s not in known]
    if unknown:
        raise InvalidInput(f"unknown skill(s): {', '.join(unknown)}")
    return skills


_EXISTING = (select(TeamDraw).where(TeamDraw.instance_id == bindparam("instance_id"),
                                    TeamDraw.task_key == bindparam("task_key")))
#: a launch forms thousands of teams: each formation is two driver-level inserts with ids taken beforehand
#: (``engine.db.ids``; every insert into these tables takes its id there). ``team_assignment`` is read
#: through the ``teams.workload`` cache entry, which :func:`form_team` keeps current itself.
_DRAW_ROWS = RowInserter(_DRAW, ["id", "kind", "team_id", "instance_id", "task_key", "entity_id", "seed",
                                 "algorithm", "inputs", "pool", "result", "created_at"], deferrable=True)
_ASSIGNMENT_ROWS = RowInserter(_ASSIGNMENT, ["id", "team_id", "draw_id", "instance_id", "task_key", "entity_id",
                                             "inspector_id", "role", "assigned_at"], deferrable=True)


def form_team(session: Session, *, instance_id: int, task_key: str, entity_id: int, skills: list[str],
              team_size: int = 2, window_start: date | None = None, window_end: date | None = None,
              campaign_seed: str = "", policy: TeamPolicy | None = None, now: datetime,
              new_key: bool = False) -> TeamResult:
    """Draw the team for ``entity_id``; idempotent per (``instance_id``, ``task_key``). ``new_key``: the
    caller knows that nothing was ever written under that key (the instance was created in this step), so
    there is no earlier draw to look for."""
    load = open_workload(session)
    if type(load) is not SharedWorkload:
        return _form_team(session, instance_id=instance_id, task_key=task_key, entity_id=entity_id, skills=skills,
                          team_size=team_size, window_start=window_start, window_end=window_end,
                          campaign_seed=campaign_seed, policy=policy, now=now, new_key=new_key)
    with load.lock:
        return _form_team(session, instance_id=instance_id, task_key=task_key, entity_id=entity_id, skills=skills,
                          team_size=team_size, window_start=window_start, window_end=window_end,
                          campaign_seed=campaign_seed, policy=policy, now=now, new_key=new_key)


def _form_team(session: Session, *, instance_id: int, task_key: str, entity_id: int, skills: list[str],
               team_size: int, window_start: date | None, window_end: date | None, campaign_seed: str,
               policy: TeamPolicy | None, now: datetime, new_key: bool) -> TeamResult:
    policy = policy or TeamPolicy()
    existing = None if new_key else session.scalar(_EXISTING, {"instance_id": instance_id, "task_key": task_key})
    if existing is not None:
        if existing.kind != "form" or existing.entity_id != entity_id:
            raise Conflict(f"({instance_id}, {task_key}) already drew a {existing.kind} team for entity "
                           f"{existing.entity_id}")
        return result_of(existing)
    if team_size < policy.min_officers:
        raise InvalidInput(f"team_size {team_size}: a team needs at least {policy.min_officers} certified officers")
    entity = get_entity(session, entity_id)
    skills = _check_skills(session, skills)
    start, end = _window(now, window_start, window_end)
    seed = draw_seed(instance_id, entity.uscc, campaign_seed)
    pool = build_pool(session, entity=entity, seed=seed, start=start, end=end, policy=policy)
    picks, missing = select_team(pool.candidates, skills, team_size, policy)
    relaxed = False
    if missing and pool.rotation_excluded and policy.rotation == "prefer":
        merged = sorted(pool.candidates + pool.rotation_excluded, key=lambda c: c.key)
        picks2, missing2 = select_team(merged, skills, team_size, policy)
        if not missing2:
            picks, missing, relaxed = picks2, missing2, True
    if missing:
        raise_missing(entity, missing, pool, f"cannot form a team for {entity.uscc}")
    inputs = {"instance_id": instance_id, "uscc": entity.uscc, "district": entity.district,
              "campaign_seed": campaign_seed, "skills": skills, "team_size": team_size,
              "window": [start.isoformat(), end.isoformat()], "policy": policy.doc()}
    (draw_id,) = ids.take(session, _DRAW.name, 1)
    assignment_ids = ids.take(session, _ASSIGNMENT.name, len(picks))
    by_id = inspectors_by_id(session)
    members = [member_doc(aid, role, by_id[c.id]) for aid, (c, role)
               in sorted(zip(assignment_ids, picks), key=lambda p: (ROLE_ORDER[p[1][1]], p[0]))]
    result = {"team_id": draw_id, "draw_id": draw_id, "seed": seed, "algorithm": ALGORITHM,
              "members": members, "leader": leader_of(members), "assignment_ids": assignment_ids,
              "rotation_relaxed": relaxed}
    _DRAW_ROWS.insert(session, [{
        "id": draw_id, "kind": "form", "team_id": None, "instance_id": instance_id, "task_key": task_key,
        "entity_id": entity.id, "seed": seed, "algorithm": ALGORITHM, "inputs": inputs,
        "pool": pool_text(session, pool, relaxed), "result": result, "created_at": now}])
    _ASSIGNMENT_ROWS.insert(session, [
        {"id": aid, "team_id": draw_id, "draw_id": draw_id, "instance_id": instance_id, "task_key": task_key,
         "entity_id": entity.id, "inspector_id": c.id, "role": role, "assigned_at": now}
        for aid, (c, role) in zip(assignment_ids, picks)])
    load = open_workload(session)
    if type(load) is SharedWorkload:  # a split batch: counted in shared memory, under the lock form_team holds
        for c, _role in picks:
            load.add(c.id)
        load.formed[entity.id] = {c.id for c, _role in picks}
    else:
        load = dict(load)
        for c, _role in picks:  # the workload read above plus this team: no re-count for the next draw
            load[c.id] = load.get(c.id, 0) + 1
        txcache.put(session, "teams.workload", WORKLOAD_TABLES, load)
    known = txcache.peek(session, LAST_TEAMS)
    if known is not None:  # this team is now the entity's last one
        known[entity.id] = {c.id for c, _role in picks}
    return TeamResult(team_id=draw_id, draw_id=draw_id, seed=seed, algorithm=ALGORITHM, members=members,
                      leader=result["leader"], assignment_ids=assignment_ids, rotation_relaxed=relaxed)
