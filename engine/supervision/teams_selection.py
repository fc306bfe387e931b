"""The replayable part of a team draw (pure: no database): seed, keys, policy and selection rules.

``seed = SHA-256(instance id | entity USCC | campaign seed)``; every candidate's key is
``HMAC-SHA256(seed, inspector code)``; :func:`select_team` takes candidates in ascending key order, so the
team is a uniform random permutation anyone can recompute from the recorded pool
(:func:`engine.supervision.teams_records.verify_draw` does). The rules are in :mod:`engine.supervision.teams`.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date

from engine.errors import Conflict, InvalidInput

from .registry_models import Inspector

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
        return cls(**candidate_fields(i), key=inspector_key(seed, i.code))

    def doc(self) -> dict:
        """The record of the candidate kept in the draw (``verify_draw`` rebuilds it from this)."""
        return {"id": self.id, "code": self.code, "skills": list(self.skills), "is_expert": self.is_expert,
                "leader_eligible": self.leader_eligible, "seniority": self.seniority, "key": self.key}


def candidate_fields(i: "Inspector | InspectorRow") -> dict:
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


def draw_seed(instance_id: int, uscc: str, campaign_seed: str = "") -> str:
    return hashlib.sha256(f"{instance_id}|{uscc}|{campaign_seed}".encode()).hexdigest()


def inspector_key(seed: str, code: str) -> str:
    """HMAC-SHA256 of the inspector's code under the draw's seed, in hex (one-shot ``hmac.digest``: the same
    value as ``hmac.new(...).hexdigest()``, without building an HMAC object per inspector)."""
    return hmac.digest(bytes.fromhex(seed), code.encode(), "sha256").hex()


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

