"""The ground of the authorization policy (:mod:`engine.policy`, which re-exports all of it): the roles, who a
person is to the policy (:class:`Actor`), where a case lies (the district of its entity), and the instance rules —
reading one, administering one, starting a process. :mod:`engine.policy_records` (documents, the two lists, public
draws) and :mod:`engine.policy` build on it; call everything as ``policy.*``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotAllowed
from engine.runtime.models import AppGroup, AppUser, AuditEvent, HumanTask, ProcessInstance, UserGroup
from engine.runtime.process_properties import process_properties
from scoring.models import Entity

#: roles that work on tasks (the inbox, the task API, ``regflow complete``)
TASK_WORKERS = ("officer", "team_leader", "supervisor")
#: roles that read every instance of their jurisdiction, its history and its evidence
INSTANCE_READERS = ("auditor", "supervisor")
#: roles that open an entity's dossier
DOSSIER_READERS = ("officer", "team_leader", "supervisor", "auditor")
#: roles that read an entity's risk score
SCORE_READERS = DOSSIER_READERS
#: roles that score a set of factors (what-if)
WHAT_IF_SCORERS = SCORE_READERS + ("designer",)
#: roles that suspend, resume or terminate an instance and retry its incidents (within their jurisdiction)
INSTANCE_ADMINS = ("supervisor", "admin")
#: roles that may start a process (which process: its ``startableBy`` groups)
STARTERS = ("officer", "team_leader", "supervisor")
#: roles that administer users: accounts, roles and groups, jurisdictions, API tokens, the system audit chain
ADMINS = ("admin",)
#: roles that validate and deploy process definitions (the modelers, ``regflow deploy --user``)
DESIGNERS = ("designer",)
#: roles that read the process library (definitions, versions, differences) without changing it
DESIGN_READERS = ("designer", "auditor", "supervisor")
#: roles that run a what-if simulation of the library
SIMULATORS = ("designer", "supervisor")
#: roles of the supervisors' area (figures, incidents), who settle stranded orders and cases (within jurisdiction)
SUPERVISORS = ("supervisor",)
#: the name the installation's operator acts under on the CLI without ``--user`` (:func:`operator_actor`)
OPERATOR = "system"
#: the process property naming the groups that may start it
STARTABLE_BY = "startableBy"
#: start-data keys that name the entity a case is about
ENTITY_KEYS = ("uscc", "entity_id")


@dataclass(frozen=True)
class Actor:
    """A person acting through an edge. ``via`` names the edge (web, api, cli); ``os_user`` the operating-system
    user who ran a CLI command (recorded in the audit log)."""

    username: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    #: district codes; empty = every district
    jurisdiction: tuple[str, ...] = ()
    via: str = "web"
    os_user: str | None = None

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def sees_district(self, district: str | None) -> bool:
        return not self.jurisdiction or district in self.jurisdiction

    @property
    def limited(self) -> bool:
        return bool(self.jurisdiction)


_U, _G, _UG = AppUser.__table__, AppGroup.__table__, UserGroup.__table__
_ACTOR_ROWS = (select(_U.c.active, _U.c.roles, _U.c.jurisdiction, _G.c.name)
               .select_from(_U.outerjoin(_UG, _UG.c.user_id == _U.c.id).outerjoin(_G, _G.c.id == _UG.c.group_id))
               .where(_U.c.username == bindparam("username")))


def load_actor(session: Session, username: str, *, via: str = "web", os_user: str | None = None) -> Actor:
    """The active user ``username`` as an :class:`Actor`; :class:`NotAllowed` for an unknown or inactive one."""
    rows = session.execute(_ACTOR_ROWS, {"username": username}).all()
    if not rows or not rows[0][0]:
        raise NotAllowed.fmt("Unknown or inactive user {user}.", user=username)
    _active, roles, jurisdiction, _g = rows[0]
    return Actor(username, frozenset(roles or ()), frozenset(g for *_x, g in rows if g), tuple(jurisdiction or ()),
                 via, os_user)


def normalise_key(value: Any) -> Any:
    """A business key or USCC as stored: surrounding spaces removed, upper case (other values unchanged)."""
    return value.strip().upper() if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------ entities
def district_of_uscc(session: Session, uscc: str | None) -> str | None:
    """The district of the registered entity ``uscc`` (``None``: no such entity)."""
    if not uscc:
        return None
    return session.scalar(select(Entity.district).where(Entity.uscc == normalise_key(uscc)))


def _start_data(session: Session, instance_id: int) -> dict:
    """The start data of an instance, from its first audit event (the instance_started diff)."""
    diff = session.scalar(select(AuditEvent.data_diff).where(AuditEvent.chain == f"instance:{instance_id}",
                                                             AuditEvent.seq == 1))
    return {k: v.get("new") for k, v in (diff or {}).items() if isinstance(v, dict)}


def entity_districts(session: Session, uscc: Any, entity_id: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(uscc, str) and uscc.strip():
        district = district_of_uscc(session, uscc)
        if district is not None:
            found.add(district)
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        district = session.scalar(select(Entity.district).where(Entity.id == entity_id))
        if district is not None:
            found.add(district)
    return found


def instance_districts(session: Session, instance_id: int, business_key: str | None) -> set[str]:
    """The districts of the entities an instance is about (empty: about no entity)."""
    if business_key:
        district = district_of_uscc(session, business_key)
        if district is not None:
            return {district}
    data = _start_data(session, instance_id)
    return entity_districts(session, data.get("uscc"), data.get("entity_id"))


#: what an object outside the actor's jurisdiction is called, by kind
_OUTSIDE = {
    "task": "Task {id} concerns an entity in district {district}, outside the jurisdiction of {user}.",
    "instance": "Instance {id} concerns an entity in district {district}, outside the jurisdiction of {user}.",
    "evidence": "Evidence {id} concerns an entity in district {district}, outside the jurisdiction of {user}.",
    "start": "The new {id} instance would concern an entity in district {district}, outside the jurisdiction of "
             "{user}.",
    "order": "Rectification order {id} concerns an entity in district {district}, outside the jurisdiction of "
             "{user}.",
    "case": "Enforcement case {id} concerns an entity in district {district}, outside the jurisdiction of {user}.",
}


def check_districts(actor: Actor, districts: Iterable[str], kind: str, ident: Any) -> None:
    outside = sorted(d for d in districts if not actor.sees_district(d))
    if outside:
        raise NotAllowed.fmt(_OUTSIDE[kind], id=ident, district=", ".join(outside), user=actor.username)


def took_part(session: Session, actor: Actor, inst: ProcessInstance, *, open_for_groups: bool) -> bool:
    if inst.started_by == actor.username:
        return True
    for assignee, completed_by, groups, status in session.execute(
            select(HumanTask.assignee, HumanTask.completed_by, HumanTask.candidate_groups, HumanTask.status)
            .where(HumanTask.instance_id == inst.id)):
        if actor.username in (assignee, completed_by):
            return True
        if open_for_groups and status == "open" and assignee is None and set(groups or []) & actor.groups:
            return True
    return False


def check_roles(actor: Actor, roles: tuple[str, ...]) -> None:
    if not actor.has(*roles):
        raise NotAllowed.fmt("This needs one of the roles {roles}; {user} has {mine}.", roles=", ".join(roles),
                             user=actor.username, mine=", ".join(sorted(actor.roles)) or "—")


# ------------------------------------------------------------------------------------------ instances
def check_read_instance(session: Session, actor: Actor, inst: ProcessInstance) -> None:
    """Auditors and supervisors read every instance of their jurisdiction; others only those they started, hold
    or held a task of, or may claim an open task of. An instance about no entity is read by a user with a
    jurisdiction only when they took part in it."""
    districts = instance_districts(session, inst.id, inst.business_key)
    check_districts(actor, districts, "instance", inst.id)
    if not districts and actor.limited and not took_part(session, actor, inst, open_for_groups=False):
        raise NotAllowed.fmt("Instance {id} is about no entity (a city-wide case); {user} has a district "
                             "jurisdiction and did not take part in it.", id=inst.id, user=actor.username)
    if actor.has(*INSTANCE_READERS) or took_part(session, actor, inst, open_for_groups=True):
        return
    raise NotAllowed.fmt("{user} did not work on instance {id}; only auditors, supervisors and the people who "
                         "worked on it can read it.", id=inst.id, user=actor.username)


def check_instance_admin(session: Session, actor: Actor, inst: ProcessInstance) -> None:
    """Suspend, resume, terminate an instance or retry its incident: a supervisor or an administrator, and the
    case's entity in their jurisdiction (a case about no entity only for one without a restriction)."""
    check_roles(actor, INSTANCE_ADMINS)
    districts = instance_districts(session, inst.id, inst.business_key)
    check_districts(actor, districts, "instance", inst.id)
    if not districts and actor.limited:
        raise NotAllowed.fmt("Instance {id} is about no entity (a city-wide case); {user} has a district "
                             "jurisdiction and did not take part in it.", id=inst.id, user=actor.username)


def starter_groups(bpmn_xml: str, process_id: str) -> frozenset[str] | None:
    """The groups of the process' ``startableBy`` property (``None``: started only by the engine)."""
    value = process_properties(bpmn_xml, process_id).get(STARTABLE_BY, "")
    groups = frozenset(g.strip() for g in value.split(",") if g.strip())
    return groups or None


def check_start(session: Session, actor: Actor, process_id: str, starters: frozenset[str] | None,
                business_key: str | None, data: Mapping) -> None:
    """A person starts ``process_id`` (its ``startableBy`` groups are ``starters``) for the entity named by
    ``business_key`` and the start data: a starter role, one of the groups, and every named entity within the
    actor's jurisdiction. A ``uscc`` or ``entity_id`` in the start data must name a registered entity."""
    check_roles(actor, STARTERS)
    if starters is None:
        raise NotAllowed.fmt("Process {process} is started only by the engine (by its parent process or a service "
                             "task), not by a person: it has no startableBy property.", process=process_id)
    if not starters & actor.groups:
        raise NotAllowed.fmt("Process {process} may be started by the groups {groups}; {user} is in none of them.",
                             process=process_id, groups=", ".join(sorted(starters)), user=actor.username)
    uscc, entity_id = data.get("uscc"), data.get("entity_id")
    if uscc is not None and (not isinstance(uscc, str) or district_of_uscc(session, uscc) is None):
        raise InvalidInput.fmt("Start data: uscc {value} is not a registered entity.", value=repr(uscc)[:40],
                               details={"field": "data.uscc"})
    if entity_id is not None and (isinstance(entity_id, bool) or not isinstance(entity_id, int) or
                                  abs(entity_id) > 2**62 or session.get(Entity, entity_id) is None):
        raise InvalidInput.fmt("Start data: entity_id {value} is not a registered entity.",
                               value=repr(entity_id)[:40], details={"field": "data.entity_id"})
    if uscc is not None and entity_id is not None:
        if session.scalar(select(Entity.uscc).where(Entity.id == entity_id)) != normalise_key(uscc):
            raise InvalidInput.fmt("Start data: entity_id {value} is not the entity {uscc}.", value=entity_id,
                                   uscc=uscc, details={"field": "data.entity_id"})
    districts = entity_districts(session, uscc, entity_id)
    if business_key:
        district = district_of_uscc(session, business_key)
        if district is not None:
            districts.add(district)
    check_districts(actor, districts, "start", process_id)
