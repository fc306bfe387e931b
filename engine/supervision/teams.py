"""Team formation (DOMAIN.md §2 step 6): a random, verifiable draw of inspectors for one entity.

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
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from engine import txcache
from engine.runtime import parallel
from engine.db import JsonText, RowInserter, chunks, ids, stores_json_text
from engine.errors import Conflict, InvalidInput, NotFound

from .registries import (conflicts_with, get_entity, is_certified, leaves_overlapping, local_date,
                         open_assignment_counts, region_covers)
from .registry_models import Inspector, InspectorConflict, InspectorLeave, Skill, TeamAssignment, TeamDraw

ALGORITHM = "hmac-sha256-order/v1"


class NoQualifiedInspector(Conflict):
    """The registry cannot staff the team. ``missing`` lists what is lacking (``{"what": "skill", ...}``)."""

    def __init__(self, message: str, *, missing: list[dict], district: str, uscc: str, excluded: dict):
        super().__init__(message, missing=missing, district=district, uscc=uscc, excluded=excluded)
        self.missing = missing
        self.district = district
        self.uscc = uscc
        self.excluded = excluded


@dataclass(frozen=True)
class TeamPolicy:
    min_officers: int = 2
    #: an officer with this many open assignments is not drawn
    workload_cap: int = 5
    #: ``prefer`` (relax when impossible, logged), ``strict`` or ``off``
    rotation: str = "prefer"
    allow_experts: bool = True
    min_leader_seniority: int = 0

    def __post_init__(self):
        if self.rotation not in ("prefer", "strict", "off"):
            raise InvalidInput(f"rotation must be prefer, strict or off, not {self.rotation!r}")
        if self.min_officers < 2:
            raise InvalidInput("a team needs at least 2 certified officers (Administrative Penalty Law art. 42)")
        if self.workload_cap < 1:
            raise InvalidInput("workload_cap must be at least 1")

    def doc(self) -> dict:
        """``dataclasses.asdict`` of the policy (its fields are plain values)."""
        return {"min_officers": self.min_officers, "workload_cap": self.workload_cap, "rotation": self.rotation,
                "allow_experts": self.allow_experts, "min_leader_seniority": self.min_leader_seniority}


@dataclass(frozen=True)
class Candidate:
    """What the selection reads of an inspector (recorded in the draw so that it can be replayed)."""

    id: int
    code: str
    skills: tuple[str, ...]
    is_expert: bool
    leader_eligible: bool
    seniority: int
    key: str = ""

    @classmethod
    def of(cls, i: "Inspector | InspectorRow", seed: str) -> "Candidate":
        return cls(**_candidate_fields(i), key=inspector_key(seed, i.code))

    def doc(self) -> dict:
        """The record of the candidate kept in the draw (``verify_draw`` rebuilds it from this)."""
        return {"id": self.id, "code": self.code, "skills": list(self.skills), "is_expert": self.is_expert,
                "leader_eligible": self.leader_eligible, "seniority": self.seniority, "key": self.key}


def _candidate_fields(i: "Inspector | InspectorRow") -> dict:
    """A :class:`Candidate`'s fields but its key, read off an inspector."""
    return {"id": i.id, "code": i.code, "skills": tuple(sorted(i.skills)), "is_expert": bool(i.is_expert),
            "leader_eligible": bool(i.leader_eligible), "seniority": int(i.seniority)}


@dataclass(frozen=True)
class InspectorRow:
    """A read-only copy of an ``inspector`` row, shared by every team drawn in one transaction."""

    id: int
    code: str
    name: str
    username: str | None
    department: str
    cert_no: str | None
    cert_expires: date | None
    skills: tuple[str, ...]
    region: str
    is_expert: bool
    leader_eligible: bool
    seniority: int
    active: bool


_DRAW = TeamDraw.__table__
_ASSIGNMENT = TeamAssignment.__table__
_INSPECTOR_TABLES = (Inspector.__tablename__,)
_LEAVE_TABLES = (InspectorLeave.__tablename__,)
_WORKLOAD_TABLES = (TeamAssignment.__tablename__,)


def _inspectors(session: Session) -> tuple[InspectorRow, ...]:
    """Every inspector, by code (cached for the transaction: :mod:`engine.txcache`)."""
    def load():
        cols = [getattr(Inspector, f) for f in InspectorRow.__dataclass_fields__]
        return tuple(InspectorRow(*r[:7], tuple(sorted(r[7] or ())), *r[8:])
                     for r in session.execute(select(*cols).order_by(Inspector.code)))
    return txcache.get(session, "teams.inspectors", _INSPECTOR_TABLES, load)


def _inspectors_by_id(session: Session) -> dict[int, InspectorRow]:
    return txcache.get(session, "teams.inspectors_by_id", _INSPECTOR_TABLES,
                       lambda: {i.id: i for i in _inspectors(session)})


def _leaves(session: Session, start: date, end: date) -> dict[int, list[tuple[date, date, str]]]:
    def load():
        return {iid: [(lv.start_date, lv.end_date, lv.reason) for lv in rows]
                for iid, rows in leaves_overlapping(session, start, end).items()}
    return txcache.get(session, ("teams.leaves", start, end), _LEAVE_TABLES, load)


def _workload(session: Session) -> "dict[int, int] | SharedWorkload":
    return txcache.get(session, "teams.workload", _WORKLOAD_TABLES, lambda: open_assignment_counts(session))


class SharedWorkload:
    """The officers' open assignments while a batch of starts runs in two processes
    (:mod:`engine.runtime.parallel`): what the transaction read, plus what each process added since, in
    shared memory. :func:`form_team` holds :attr:`lock` from reading the pool to adding its team, so two
    teams formed at the same moment in the two processes never both take an officer's last free slot."""

    def __init__(self, base: dict[int, int], inspector_ids) -> None:
        import multiprocessing

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
        shared = SharedWorkload(_workload(session), _inspectors_by_id(session))
        txcache.put(session, "teams.workload", _WORKLOAD_TABLES, shared)
        return shared

    def in_child(self, session: Session, shared: SharedWorkload) -> None:
        shared.mine = 1

    def child_result(self, session: Session, shared: SharedWorkload) -> dict[int, set[int]]:
        return shared.formed

    def after_join(self, session: Session, shared: SharedWorkload, formed: dict[int, set[int]] | None) -> None:
        txcache.put(session, "teams.workload", _WORKLOAD_TABLES, shared.merged(formed is not None))
        known = txcache.peek(session, _LAST_TEAMS)
        if formed and known is not None:  # the entities' last teams: those the child formed too
            known.update(formed)


parallel.register(_ShareWorkload())


def _known_skills(session: Session) -> frozenset[str]:
    return txcache.get(session, "teams.skills", (Skill.__tablename__,),
                       lambda: frozenset(session.scalars(select(Skill.code))))


@dataclass
class TeamResult:
    team_id: int
    draw_id: int
    seed: str
    algorithm: str
    members: list[dict]
    leader: str | None
    assignment_ids: list[int]
    rotation_relaxed: bool = False
    released: list[dict] = field(default_factory=list)
    promoted: str | None = None

    def to_dict(self) -> dict:
        """``dataclasses.asdict(self)`` (same keys, same order, nothing shared with the result), written out:
        ``asdict`` deep-copies generically and cost a tenth of a millisecond per team in a campaign launch."""
        return {"team_id": self.team_id, "draw_id": self.draw_id, "seed": self.seed, "algorithm": self.algorithm,
                "members": [{**m, "skills": list(m["skills"])} for m in self.members], "leader": self.leader,
                "assignment_ids": list(self.assignment_ids), "rotation_relaxed": self.rotation_relaxed,
                "released": copy.deepcopy(self.released) if self.released else [], "promoted": self.promoted}


def draw_seed(instance_id: int, uscc: str, campaign_seed: str = "") -> str:
    return hashlib.sha256(f"{instance_id}|{uscc}|{campaign_seed}".encode()).hexdigest()


try:  # what ``hmac.digest`` calls for a named digest, without its Python-level dispatch (one per candidate)
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # a Python built without OpenSSL
    _hmac_digest = hmac.digest


def inspector_key(seed: str, code: str) -> str:
    """HMAC-SHA256 of the inspector's code under the draw's seed, in hex (one-shot ``hmac.digest``: the same
    value as ``hmac.new(...).hexdigest()``, without building an HMAC object per inspector)."""
    return _hmac_digest(bytes.fromhex(seed), code.encode(), "sha256").hex()


# ------------------------------------------------------------------------------------------------- the pool
@dataclass
class Pool:
    candidates: list[Candidate]          # in key order, rotation-excluded ones not included
    rotation_excluded: list[Candidate]   # eligible but on the entity's last team
    excluded: dict[str, str]             # code -> reason
    #: inspector id -> its record's JSON text up to the key (:func:`_candidate_head`), when built from the
    #: per-transaction pool (:func:`_pool_text` writes the record without encoding every candidate again)
    heads: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason in self.excluded.values():
            kind = reason.split(":")[0]
            out[kind] = out.get(kind, 0) + 1
        if self.rotation_excluded:
            out["rotation"] = len(self.rotation_excluded)
        return out


_LAST_TEAMS = "teams.last_team"
_CONFLICTS = "teams.conflicts"


def prefetch(session: Session, entities: list) -> None:
    """Read, in a few batched queries, what forming teams for many ``entities`` (campaign launch) would read
    one entity at a time: declared conflicts and each entity's last team. Kept for the transaction
    (:mod:`engine.txcache`); conflicts are dropped when the conflict table changes, and this module keeps
    the last teams current as it forms and changes teams."""
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
    prior = txcache.peek(session, _LAST_TEAMS) or {}
    txcache.put(session, _LAST_TEAMS, (), {**prior, **last})


def _conflicts(session: Session, uscc: str) -> dict[int, str]:
    known = txcache.peek(session, _CONFLICTS)
    if known is not None and uscc in known:
        return known[uscc]
    return conflicts_with(session, uscc)


def _last_team_members(session: Session, entity_id: int, *, before_team: int | None) -> set[int]:
    """Inspectors who served on the entity's previous team (members replaced before the visit did not)."""
    if before_team is None:
        known = txcache.peek(session, _LAST_TEAMS)
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


_object_new = object.__new__


def _covering(session: Session, district: str) -> list[tuple[InspectorRow, dict, bytes, str]]:
    """The inspectors whose region covers ``district``, each with its :class:`Candidate` fields, its code
    as bytes (the HMAC message) and its candidate record's JSON text up to the key, read once per
    transaction: a launch forms thousands of teams in a few districts."""
    def load():
        out = []
        for i in _inspectors(session):
            if region_covers(i.region, district):
                fields_ = _candidate_fields(i)
                out.append((i, fields_, i.code.encode(), _candidate_head(fields_)))
        return out
    return txcache.get(session, ("teams.covering", district), _INSPECTOR_TABLES, load)


def _candidate_head(fields_: dict) -> str:
    """``json.dumps(Candidate.doc())`` cut before the key's value: ``{..., "key": "``."""
    text = json.dumps(Candidate(**fields_, key="").doc())
    return text[:-2]  # the empty key's closing quote and the brace


def build_pool(session: Session, *, entity, seed: str, start: date, end: date, policy: TeamPolicy,
               exclude_ids: set[int] = frozenset(), before_team: int | None = None) -> Pool:
    """The filtered pool for ``entity`` and the window ``[start, end]``, in key order."""
    leave = _leaves(session, start, end)
    conflicts = _conflicts(session, entity.uscc)
    load = _workload(session)
    last_team = _last_team_members(session, entity.id, before_team=before_team) if policy.rotation != "off" else set()
    candidates, rotation, excluded, heads = [], [], {}, {}
    seed_key = bytes.fromhex(seed)
    for i, fields_, code_bytes, head in _covering(session, entity.district):
        if i.id in exclude_ids:
            continue
        if not i.active:
            excluded[i.code] = "inactive"
        elif not i.is_expert and not is_certified(i, start, end):
            excluded[i.code] = ("certificate: expired" if i.cert_expires else "certificate: none") + \
                               (f" (valid to {i.cert_expires})" if i.cert_expires else "")
        elif i.id in leave:
            lv_start, lv_end, lv_reason = leave[i.id][0]
            excluded[i.code] = f"leave: {lv_start}..{lv_end}" + (f" {lv_reason}" if lv_reason else "")
        elif i.id in conflicts:
            excluded[i.code] = f"conflict: {conflicts[i.id]}"
        elif load.get(i.id, 0) >= policy.workload_cap:
            excluded[i.code] = f"workload: {load[i.id]} open assignments (cap {policy.workload_cap})"
        else:
            # Candidate.of(i, seed), built from the fields read once per transaction
            c = _object_new(Candidate)
            c.__dict__.update(fields_)
            c.__dict__["key"] = _hmac_digest(seed_key, code_bytes, "sha256").hex()
            (rotation if i.id in last_team else candidates).append(c)
            heads[i.id] = head
    candidates.sort(key=lambda c: c.key)
    rotation.sort(key=lambda c: c.key)
    return Pool(candidates, rotation, excluded, heads)


# ------------------------------------------------------------------------------------------------- selection
def select_team(ordered: list[Candidate], skills: list[str], team_size: int, policy: TeamPolicy, *,
                fixed: list[tuple[Candidate, str]] = (), need_leader: bool = True,
                min_officers: int | None = None) -> tuple[list[tuple[Candidate, str]], list[dict]]:
    """Pure selection over candidates in key order: ``(new picks with roles, missing)``.

    ``fixed`` are members already on the team. The team is filled to ``team_size`` officers; ``missing``
    reports what could not be met: the leader, a skill, or fewer than ``min_officers`` (default
    ``team_size``) officers.
    """
    min_officers = team_size if min_officers is None else min_officers
    picks: list[tuple[Candidate, str]] = []
    taken = {c.id for c, _r in fixed}
    missing: list[dict] = []

    def team():
        return list(fixed) + picks

    def take(c: Candidate, role: str) -> None:
        picks.append((c, role))
        taken.add(c.id)

    officers = [c for c in ordered if not c.is_expert]
    if need_leader:
        leader = next((c for c in officers if c.leader_eligible and c.seniority >= policy.min_leader_seniority
                       and c.id not in taken), None)
        if leader is None:
            missing.append({"what": "leader", "min_seniority": policy.min_leader_seniority})
        else:
            take(leader, "leader")
    for skill in sorted(set(skills)):
        if any(skill in c.skills for c, _r in team()):
            continue
        c = next((c for c in officers if skill in c.skills and c.id not in taken), None)
        if c is not None:
            take(c, "member")
            continue
        e = next((c for c in ordered if c.is_expert and skill in c.skills and c.id not in taken), None) \
            if policy.allow_experts else None
        if e is not None:
            take(e, "expert")
        else:
            missing.append({"what": "skill", "skill": skill})
    counted = sum(1 for c, _r in team() if not c.is_expert)
    for c in officers:
        if counted >= team_size:
            break
        if c.id not in taken:
            take(c, "member")
            counted += 1
    if counted < max(min_officers, policy.min_officers):
        missing.append({"what": "officers", "need": max(min_officers, policy.min_officers), "available": counted})
    return picks, missing


def _describe(missing: list[dict], district: str) -> str:
    parts = []
    for m in missing:
        if m["what"] == "skill":
            parts.append(f"no certified officer with skill {m['skill']!r} available in district {district}")
        elif m["what"] == "leader":
            extra = f" with seniority ≥ {m['min_seniority']}" if m.get("min_seniority") else ""
            parts.append(f"no leader-eligible certified officer{extra} available in district {district}")
        else:
            parts.append(f"only {m['available']} certified officer(s) available in district {district}, "
                         f"need {m['need']}")
    return "; ".join(parts)


def _raise_missing(entity, missing: list[dict], pool: Pool, prefix: str) -> None:
    summary = pool.summary()
    why = ", ".join(f"{n} {k}" for k, n in sorted(summary.items()))
    raise NoQualifiedInspector(f"{prefix}: {_describe(missing, entity.district)}"
                               + (f" (excluded: {why})" if why else ""),
                               missing=missing, district=entity.district, uscc=entity.uscc, excluded=pool.excluded)


# ------------------------------------------------------------------------------------------------- formation
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
    load = _workload(session)
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
        return _result_of(existing)
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
        _raise_missing(entity, missing, pool, f"cannot form a team for {entity.uscc}")
    inputs = {"instance_id": instance_id, "uscc": entity.uscc, "district": entity.district,
              "campaign_seed": campaign_seed, "skills": skills, "team_size": team_size,
              "window": [start.isoformat(), end.isoformat()], "policy": policy.doc()}
    (draw_id,) = ids.take(session, _DRAW.name, 1)
    assignment_ids = ids.take(session, _ASSIGNMENT.name, len(picks))
    by_id = _inspectors_by_id(session)
    members = [_member_doc(aid, role, by_id[c.id]) for aid, (c, role)
               in sorted(zip(assignment_ids, picks), key=lambda p: (_ROLE_ORDER[p[1][1]], p[0]))]
    result = {"team_id": draw_id, "draw_id": draw_id, "seed": seed, "algorithm": ALGORITHM,
              "members": members, "leader": _leader_of(members), "assignment_ids": assignment_ids,
              "rotation_relaxed": relaxed}
    _DRAW_ROWS.insert(session, [{
        "id": draw_id, "kind": "form", "team_id": None, "instance_id": instance_id, "task_key": task_key,
        "entity_id": entity.id, "seed": seed, "algorithm": ALGORITHM, "inputs": inputs,
        "pool": _pool_text(session, pool, relaxed), "result": result, "created_at": now}])
    _ASSIGNMENT_ROWS.insert(session, [
        {"id": aid, "team_id": draw_id, "draw_id": draw_id, "instance_id": instance_id, "task_key": task_key,
         "entity_id": entity.id, "inspector_id": c.id, "role": role, "assigned_at": now}
        for aid, (c, role) in zip(assignment_ids, picks)])
    load = _workload(session)
    if type(load) is SharedWorkload:  # a split batch: counted in shared memory, under the lock form_team holds
        for c, _role in picks:
            load.add(c.id)
        load.formed[entity.id] = {c.id for c, _role in picks}
    else:
        load = dict(load)
        for c, _role in picks:  # the workload read above plus this team: no re-count for the next draw
            load[c.id] = load.get(c.id, 0) + 1
        txcache.put(session, "teams.workload", _WORKLOAD_TABLES, load)
    known = txcache.peek(session, _LAST_TEAMS)
    if known is not None:  # this team is now the entity's last one
        known[entity.id] = {c.id for c, _role in picks}
    return TeamResult(team_id=draw_id, draw_id=draw_id, seed=seed, algorithm=ALGORITHM, members=members,
                      leader=result["leader"], assignment_ids=assignment_ids, rotation_relaxed=relaxed)


def _pool_text(session: Session, pool: Pool, relaxed: bool) -> JsonText | dict:
    """:func:`_pool_doc` as the JSON text ``json.dumps`` would make of it, assembled from the candidates'
    pre-encoded records (a draw records every candidate of the district; encoding them was a tenth of a
    millisecond per team). An engine not made by :mod:`engine.db` gets the document instead."""
    cands = pool.candidates + (pool.rotation_excluded if relaxed else [])
    heads = pool.heads
    if not stores_json_text(session) or any(c.id not in heads for c in cands):
        return _pool_doc(pool, relaxed)
    records = ", ".join([heads[c.id] + c.key + '"}' for c in sorted(cands, key=_by_key)])
    return JsonText(f'{{"candidates": [{records}], '
                    f'"rotation_excluded": {json.dumps([c.code for c in pool.rotation_excluded])}, '
                    f'"excluded": {json.dumps(pool.excluded)}, "rotation_relaxed": {json.dumps(relaxed)}}}')


def _by_key(c: Candidate) -> str:
    return c.key


def _pool_doc(pool: Pool, relaxed: bool) -> dict:
    cands = pool.candidates + (pool.rotation_excluded if relaxed else [])
    return {"candidates": [c.doc() for c in sorted(cands, key=lambda c: c.key)],
            "rotation_excluded": [c.code for c in pool.rotation_excluded],
            "excluded": pool.excluded, "rotation_relaxed": relaxed}


def _assign(session: Session, draw: TeamDraw, team_id: int, entity_id: int, picks, now) -> list[TeamAssignment]:
    task_key = draw.task_key if draw.kind == "form" else session.get(TeamDraw, team_id).task_key
    rows = [TeamAssignment(id=aid, team_id=team_id, draw_id=draw.id, instance_id=draw.instance_id,
                           task_key=task_key, entity_id=entity_id, inspector_id=c.id, role=role, assigned_at=now)
            for aid, (c, role) in zip(ids.take(session, _ASSIGNMENT.name, len(picks)), picks)]
    session.add_all(rows)
    session.flush()
    return rows


#: members are listed leader first, then members, then experts
_ROLE_ORDER = {"leader": 0, "member": 1, "expert": 2}


def _member_doc(assignment_id: int, role: str, i: "Inspector | InspectorRow") -> dict:
    return {"assignment_id": assignment_id, "code": i.code, "name": i.name, "username": i.username, "role": role,
            "department": i.department, "skills": sorted(i.skills)}


def _leader_of(members: list[dict]) -> str | None:
    leader = next((m for m in members if m["role"] == "leader"), None)
    return (leader["username"] or leader["code"]) if leader else None


def team_members(session: Session, team_id: int) -> list[tuple[TeamAssignment, Inspector]]:
    """Open members of a team, leader first."""
    rows = session.execute(select(TeamAssignment, Inspector).join(Inspector, Inspector.id == TeamAssignment.inspector_id)
                           .where(TeamAssignment.team_id == team_id, TeamAssignment.released_at.is_(None))
                           .order_by(TeamAssignment.id)).all()
    return sorted(((a, i) for a, i in rows), key=lambda p: (_ROLE_ORDER[p[0].role], p[0].id))


def _result_doc(session: Session, draw: TeamDraw, new_rows: list[TeamAssignment], **extra) -> dict:
    team_id = draw.team_id or draw.id
    members = [_member_doc(a.id, a.role, i) for a, i in team_members(session, team_id)]
    return {"team_id": team_id, "draw_id": draw.id, "seed": draw.seed, "algorithm": draw.algorithm,
            "members": members, "leader": _leader_of(members),
            "assignment_ids": [r.id for r in new_rows], **extra}


def _result_of(draw: TeamDraw) -> TeamResult:
    r = dict(draw.result)
    return TeamResult(team_id=r["team_id"], draw_id=r["draw_id"], seed=r["seed"], algorithm=r["algorithm"],
                      members=r["members"], leader=r["leader"], assignment_ids=r["assignment_ids"],
                      rotation_relaxed=r.get("rotation_relaxed", False), released=r.get("released", []),
                      promoted=r.get("promoted"))


# ------------------------------------------------------------------------------------------------- replacement
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
        return _result_of(existing)
    if assignment.released_at is not None:
        raise Conflict(f"assignment {assignment.id} was already released ({assignment.release_reason})")
    team = session.get(TeamDraw, assignment.team_id)
    entity = get_entity(session, assignment.entity_id)
    known = txcache.peek(session, _LAST_TEAMS)
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
        _raise_missing(entity, missing, pool,
                       f"cannot replace {leaving.code} ({reason}) on the team for {entity.uscc}")
    draw = TeamDraw(id=ids.take(session, _DRAW.name, 1)[0], kind="replace", team_id=team.id, instance_id=instance_id, task_key=task_key,
                    entity_id=entity.id, seed=seed, algorithm=ALGORITHM,
                    inputs={**inputs, "window": [start.isoformat(), end.isoformat()], "replaces": assignment.id,
                            "released_inspector": leaving.code, "reason": reason,
                            "promoted": heir.code if heir else None,
                            "fixed": [{**asdict(c), "role": r} for c, r in fixed]},
                    pool=_pool_doc(pool, policy.rotation != "strict"), result={}, created_at=now)
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
    return _result_of(draw)


def replace_inspector(session: Session, team_id: int, inspector_code: str, reason: str, *, now: datetime,
                      instance_id: int | None = None, task_key: str | None = None) -> TeamResult:
    """:func:`replace_member` by the inspector's code (the open assignment on ``team_id``)."""
    if instance_id is not None and task_key is not None:
        done = session.scalar(select(TeamDraw).where(TeamDraw.instance_id == instance_id,
                                                     TeamDraw.task_key == task_key))
        if done is not None:
            return _result_of(done)
    a = session.scalar(select(TeamAssignment).join(Inspector, Inspector.id == TeamAssignment.inspector_id)
                       .where(TeamAssignment.team_id == team_id, Inspector.code == inspector_code,
                              TeamAssignment.released_at.is_(None)))
    if a is None:
        raise NotFound(f"inspector {inspector_code!r} is not on team {team_id}")
    return replace_member(session, a, reason, now=now, instance_id=instance_id, task_key=task_key)


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


def team_doc(session: Session, team_id: int) -> dict:
    """The team's current members and its draws (formation and replacements), for display and audit."""
    team = session.get(TeamDraw, team_id)
    if team is None or team.kind != "form":
        raise NotFound(f"team {team_id} not found")
    draws = session.scalars(select(TeamDraw).where((TeamDraw.id == team_id) | (TeamDraw.team_id == team_id))
                            .order_by(TeamDraw.id)).all()
    history = session.execute(select(TeamAssignment, Inspector.code).join(
        Inspector, Inspector.id == TeamAssignment.inspector_id).where(TeamAssignment.team_id == team_id)
        .order_by(TeamAssignment.id)).all()
    members = [_member_doc(a.id, a.role, i) for a, i in team_members(session, team_id)]
    return {"team_id": team_id, "entity_id": team.entity_id, "instance_id": team.instance_id,
            "members": members,
            "draws": [{"draw_id": d.id, "kind": d.kind, "seed": d.seed, "algorithm": d.algorithm,
                       "task_key": d.task_key, "created_at": d.created_at.isoformat()} for d in draws],
            "assignments": [{"assignment_id": a.id, "code": code, "role": a.role, "draw_id": a.draw_id,
                             "assigned_at": a.assigned_at.isoformat(),
                             "released_at": a.released_at.isoformat() if a.released_at else None,
                             "release_reason": a.release_reason, "replaced_by": a.replaced_by_id}
                            for a, code in history]}


def verify_draw(session: Session, draw_id: int) -> dict:
    """Replay a draw from its record: recompute the seed (formations) and every key, rerun the selection and
    compare with the members it picked. ``{"ok": bool, ...}``."""
    draw = session.get(TeamDraw, draw_id)
    if draw is None:
        raise NotFound(f"team draw {draw_id} not found")
    inputs = draw.inputs
    problems = []
    if draw.kind == "form" and draw.seed != draw_seed(inputs["instance_id"], inputs["uscc"], inputs["campaign_seed"]):
        problems.append("seed does not match its inputs")
    cands = [Candidate(**{**c, "skills": tuple(c["skills"])}) for c in draw.pool["candidates"]]
    for c in cands:
        if c.key != inspector_key(draw.seed, c.code):
            problems.append(f"key of {c.code} does not match the seed")
    ordered = sorted(cands, key=lambda c: inspector_key(draw.seed, c.code))
    policy = TeamPolicy(**inputs["policy"])
    if draw.kind == "form":
        picks, missing = select_team(ordered, inputs["skills"], inputs["team_size"], policy)
        expected = [(c.code, r) for c, r in picks]
    else:
        fixed = [(Candidate(**{k: v for k, v in f.items() if k != "role"} | {"skills": tuple(f["skills"])}),
                  f["role"]) for f in inputs["fixed"]]
        picks, missing = select_team(ordered, inputs["skills"], inputs["team_size"], policy, fixed=fixed,
                                     need_leader=not any(r == "leader" for _c, r in fixed),
                                     min_officers=policy.min_officers)
        expected = [(c.code, r) for c, r in picks] + ([(inputs["promoted"], "leader")] if inputs["promoted"] else [])
    recorded = sorted((code, role) for code, role in session.execute(
        select(Inspector.code, TeamAssignment.role).join(TeamAssignment, TeamAssignment.inspector_id == Inspector.id)
        .where(TeamAssignment.draw_id == draw.id)))
    expected = sorted(expected)
    if missing:
        problems.append(f"replay cannot staff the team: {missing}")
    if expected != recorded:
        problems.append(f"replay picks {expected}, the record has {recorded}")
    return {"draw_id": draw.id, "kind": draw.kind, "ok": not problems, "problems": problems,
            "replayed": expected, "recorded": recorded}
