"""A team draw as recorded and read back: the result document, the open members, the team's history and the
replay of a draw (``regflow team verify``)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound

from .registry_models import Inspector, TeamAssignment, TeamDraw
from .teams_selection import Candidate, InspectorRow, TeamPolicy, draw_seed, inspector_key, select_team


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


#: members are listed leader first, then members, then experts
ROLE_ORDER = {"leader": 0, "member": 1, "expert": 2}


def member_doc(assignment_id: int, role: str, i: "Inspector | InspectorRow") -> dict:
    """A team member as listed in a result (:attr:`TeamResult.members`)."""
    return {"assignment_id": assignment_id, "code": i.code, "name": i.name, "username": i.username, "role": role,
            "department": i.department, "skills": sorted(i.skills)}


def leader_of(members: list[dict]) -> str | None:
    """The leader's user name (its code when it has none), or None."""
    leader = next((m for m in members if m["role"] == "leader"), None)
    return (leader["username"] or leader["code"]) if leader else None


def team_members(session: Session, team_id: int) -> list[tuple[TeamAssignment, Inspector]]:
    """Open members of a team, leader first."""
    rows = session.execute(select(TeamAssignment, Inspector)
                           .join(Inspector, Inspector.id == TeamAssignment.inspector_id)
                           .where(TeamAssignment.team_id == team_id, TeamAssignment.released_at.is_(None))
                           .order_by(TeamAssignment.id)).all()
    return sorted(((a, i) for a, i in rows), key=lambda p: (ROLE_ORDER[p[0].role], p[0].id))


def result_of(draw: TeamDraw) -> TeamResult:
    """The result recorded with ``draw`` (what calling again with the same key returns)."""
    r = dict(draw.result)
    return TeamResult(team_id=r["team_id"], draw_id=r["draw_id"], seed=r["seed"], algorithm=r["algorithm"],
                      members=r["members"], leader=r["leader"], assignment_ids=r["assignment_ids"],
                      rotation_relaxed=r.get("rotation_relaxed", False), released=r.get("released", []),
                      promoted=r.get("promoted"))


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
    members = [member_doc(a.id, a.role, i) for a, i in team_members(session, team_id)]
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
