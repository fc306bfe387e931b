"""Who may do what: the one authorization policy of regflow.

Every edge (web pages, ``/api/v1``, the ``regflow`` CLI, the workers) calls the commands in
:mod:`engine.commands`, and the commands — and the runtime, through the task guard this module gives it
(:class:`TaskGuard`, injected by :mod:`engine.bootstrap`) — ask this module. No view decides access.

An :class:`Actor` is a person as the policy sees them: user name, roles (what they may do in the
application), groups (which tasks reach them) and jurisdiction (district codes; empty = every district).
The rules:

- **Roles.** Working on tasks: ``officer``, ``team_leader``, ``supervisor``. Reading any instance and its
  history: ``auditor``, ``supervisor``. Reading an entity's dossier: those and officers/team leaders.
- **Tasks.** An open task may be worked on by its assignee, or — unclaimed — by a member of one of its
  candidate groups. Claiming needs a candidate group; giving back needs being the assignee; completing an
  unclaimed task claims it for the completer (both are recorded in the audit log). Who could have worked on a
  task that is closed may learn that it is closed (a 409), nobody else.
- **Jurisdiction** is the district of the entity a case is about, whatever carries it: the instance's
  business key when it names an entity, else the ``uscc`` / ``entity_id`` of its start data. A user with
  a jurisdiction works on and reads only cases of entities in it. A case about no entity (a campaign) is
  city-wide: such a user reads it only when they took part in it (started it, hold or held one of its tasks);
  its tasks reach them through their groups as any other task.
- **Starting a process** is for the groups its ``startableBy`` property names (a comma-separated list on the
  process, edited in the modeler). A process without it is started only by the engine — by its parent's call
  activity or a service task — never by a person (``rectification`` and ``enforcement`` are such processes).
  The entity named by the business key and by the start data must lie in the starter's jurisdiction.
- **Instances** are suspended, resumed and terminated, and their incidents retried, by supervisors and
  administrators, within their jurisdiction.
- **Evidence** is for the task's participants (the uploader, the task's assignee or completer, and — while the
  task is open — whoever may work on it), and for supervisors and auditors within their jurisdiction.
- **Delegating** a task hands it to someone who could work on it: an active user with a task role whose
  jurisdiction covers the case's entity (and, checked by the runtime, in one of its candidate groups).
- **Users** (accounts, roles and groups, jurisdictions, API tokens) are administered by administrators; nobody
  removes their own administrator role or deactivates their own account.
- **Process definitions** are validated and deployed by designers; designers, auditors and supervisors read them.
- **Stranded orders and cases** (their process was terminated) are settled by supervisors within their
  jurisdiction; one about no registered entity is city-wide, for a supervisor without a restriction.
- **The installation's operator** (the ``regflow`` CLI run without ``--user``) adds users and deploys definitions
  only while no active user holds the role that would otherwise do it (:func:`operator_actor`): the bootstrap of
  a new installation. From then on the CLI acts as a named user, under the rules above.

Business keys and USCCs are normalised (surrounding spaces removed, upper case) before any check or use.
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


def _entity_districts(session: Session, uscc: Any, entity_id: Any) -> set[str]:
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
    return _entity_districts(session, data.get("uscc"), data.get("entity_id"))


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


def _check_districts(actor: Actor, districts: Iterable[str], kind: str, ident: Any) -> None:
    outside = sorted(d for d in districts if not actor.sees_district(d))
    if outside:
        raise NotAllowed.fmt(_OUTSIDE[kind], id=ident, district=", ".join(outside), user=actor.username)


def _took_part(session: Session, actor: Actor, inst: ProcessInstance, *, open_for_groups: bool) -> bool:
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
    _check_districts(actor, districts, "instance", inst.id)
    if not districts and actor.limited and not _took_part(session, actor, inst, open_for_groups=False):
        raise NotAllowed.fmt("Instance {id} is about no entity (a city-wide case); {user} has a district "
                             "jurisdiction and did not take part in it.", id=inst.id, user=actor.username)
    if actor.has(*INSTANCE_READERS) or _took_part(session, actor, inst, open_for_groups=True):
        return
    raise NotAllowed.fmt("{user} did not work on instance {id}; only auditors, supervisors and the people who "
                         "worked on it can read it.", id=inst.id, user=actor.username)


def check_instance_admin(session: Session, actor: Actor, inst: ProcessInstance) -> None:
    """Suspend, resume, terminate an instance or retry its incident: a supervisor or an administrator, and the
    case's entity in their jurisdiction (a case about no entity only for one without a restriction)."""
    check_roles(actor, INSTANCE_ADMINS)
    districts = instance_districts(session, inst.id, inst.business_key)
    _check_districts(actor, districts, "instance", inst.id)
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
    districts = _entity_districts(session, uscc, entity_id)
    if business_key:
        district = district_of_uscc(session, business_key)
        if district is not None:
            districts.add(district)
    _check_districts(actor, districts, "start", process_id)


# ------------------------------------------------------------------------------------------ tasks
def may_work_on(task, username: str, groups: Iterable[str]) -> bool:
    """An open task: its assignee, or (unclaimed) a member of a candidate group."""
    if task.assignee:
        return task.assignee == username
    return bool(set(task.candidate_groups or []) & set(groups))


def _was_open_to(task, actor: Actor) -> bool:
    return actor.username in (task.completed_by, task.assignee) or bool(set(task.candidate_groups or []) & actor.groups)


def check_task(session: Session, actor: Actor, task, action: str) -> None:
    """May ``actor`` do ``action`` (read, claim, unclaim, delegate, complete, attach) on ``task`` (a human-task
    row or view with id, instance_id, business_key, status, assignee, candidate_groups, completed_by)?
    A closed task is answered only for who could have worked on it (the caller then says 409)."""
    check_roles(actor, TASK_WORKERS)
    if actor.limited:
        _check_districts(actor, instance_districts(session, task.instance_id, task.business_key), "task", task.id)
    if task.status != "open":
        if _was_open_to(task, actor):
            return
        raise NotAllowed.fmt("Task {id} was not open to {user}.", id=task.id, user=actor.username)
    groups = ", ".join(task.candidate_groups or []) or "—"
    if action == "claim":
        if task.assignee == actor.username or set(task.candidate_groups or []) & actor.groups:
            return
        raise NotAllowed.fmt("Task {id} is for the groups {groups}; {user} is not a member of any of them.",
                             id=task.id, groups=groups, user=actor.username)
    if action == "unclaim":
        if task.assignee == actor.username:
            return
        raise NotAllowed.fmt("Task {id} is not claimed by {user}.", id=task.id, user=actor.username)
    if may_work_on(task, actor.username, actor.groups):
        return
    if task.assignee:
        raise NotAllowed.fmt("Task {id} is assigned to {assignee}; only they can work on it.", id=task.id,
                             assignee=task.assignee)
    raise NotAllowed.fmt("Task {id} is for the groups {groups}; {user} is not a member of any of them.",
                         id=task.id, groups=groups, user=actor.username)


class TaskGuard:
    """The runtime's guard (``Runtime(task_guard=…)``): called with the locked task before a claim, unclaim,
    delegation or completion. ``user`` is an :class:`Actor`, or a user name (an engine-internal caller: the
    simulator, a test), loaded here."""

    def __call__(self, session: Session, user, task, action: str) -> None:
        actor = user if isinstance(user, Actor) else load_actor(session, user)
        check_task(session, actor, task, action)


# ------------------------------------------------------------------------------------------ evidence
def check_evidence(session: Session, actor: Actor, evidence, task) -> None:
    """Read ``evidence`` (attached to ``task``, or to no task): see the module docstring."""
    inst = session.get(ProcessInstance, evidence.instance_id)
    business_key = inst.business_key if inst is not None else None
    _check_districts(actor, instance_districts(session, evidence.instance_id, business_key), "evidence",
                     evidence.id)
    if actor.has(*INSTANCE_READERS) or evidence.uploaded_by == actor.username:
        return
    if task is not None and actor.has(*TASK_WORKERS):
        if actor.username in (task.assignee, task.completed_by):
            return
        if task.status == "open" and may_work_on(task, actor.username, actor.groups):
            return
    raise NotAllowed.fmt("Evidence {id} is for the people who worked on its task, supervisors and auditors.",
                         id=evidence.id)


def check_entity(actor: Actor, uscc: str, district: str | None, roles: tuple[str, ...] = DOSSIER_READERS) -> None:
    """Read an entity (dossier, score): one of ``roles`` and the entity's district in the jurisdiction."""
    check_roles(actor, roles)
    if not actor.sees_district(district):
        raise NotAllowed.fmt("Entity {uscc} is registered in district {district}, outside the jurisdiction of "
                             "{user}.", uscc=uscc, district=district, user=actor.username)


# ------------------------------------------------------------------------------------------ delegation
def _receivers(session: Session, usernames: Iterable[str]) -> dict[str, Actor]:
    """The active users among ``usernames`` as actors (roles and jurisdiction; groups are the runtime's check)."""
    names = sorted(set(usernames))
    if not names:
        return {}
    rows = session.execute(select(AppUser.username, AppUser.roles, AppUser.jurisdiction)
                           .where(AppUser.username.in_(names), AppUser.active.is_(True)))
    return {u: Actor(u, frozenset(r or ()), frozenset(), tuple(j or ())) for u, r, j in rows}


def eligible_receivers(session: Session, task, usernames: Iterable[str]) -> set[str]:
    """Those of ``usernames`` a task could be delegated to (:func:`check_delegate_to`), in two queries: for the
    colleagues a task page offers."""
    districts = instance_districts(session, task.instance_id, task.business_key)
    return {u for u, a in _receivers(session, usernames).items()
            if a.has(*TASK_WORKERS) and all(a.sees_district(d) for d in districts)}


def check_delegate_to(session: Session, task, to_user: str) -> None:
    """``to_user`` may receive ``task``: an active user with a task role whose jurisdiction covers the case's
    entity. A refusal is the delegator's input (400) naming the receiver; the delegator is checked first."""
    receiver = _receivers(session, [to_user]).get(to_user)
    if receiver is None:
        raise InvalidInput.fmt("Task {id} cannot be delegated to {receiver}: there is no active user of that name.",
                               id=task.id, receiver=to_user, details={"field": "to_user"})
    if not receiver.has(*TASK_WORKERS):
        raise InvalidInput.fmt("Task {id} cannot be delegated to {receiver}, who has none of the roles {roles}.",
                               id=task.id, receiver=to_user, roles=", ".join(TASK_WORKERS),
                               details={"field": "to_user"})
    outside = sorted(d for d in instance_districts(session, task.instance_id, task.business_key)
                     if not receiver.sees_district(d))
    if outside:
        raise InvalidInput.fmt("Task {id} concerns an entity in district {district}, outside the jurisdiction of "
                               "{receiver}: it cannot be delegated to them.", id=task.id,
                               district=", ".join(outside), receiver=to_user, details={"field": "to_user"})


# ------------------------------------------------------------------------------------------ users
def check_administer_user(actor: Actor, username: str, *, roles: Iterable[str] | None = None,
                          active: bool | None = None) -> None:
    """Administer the account ``username`` (create it, set its roles and groups — ``roles`` —, jurisdiction,
    activation — ``active`` —, tokens): an administrator, who neither removes their own administrator role nor
    deactivates their own account (which could leave nobody to administer)."""
    check_roles(actor, ADMINS)
    if username != actor.username:
        return
    if roles is not None and not set(roles) & set(ADMINS):
        raise NotAllowed.fmt("{user} cannot remove their own administrator role; another administrator must do "
                             "it.", user=username)
    if active is False:
        raise NotAllowed.fmt("{user} cannot deactivate their own account.", user=username)


def operator_actor(session: Session, roles: tuple[str, ...], *, os_user: str | None = None) -> Actor:
    """The installation's operator on the CLI without ``--user``, holding ``roles`` (:data:`ADMINS` to add users,
    :data:`DESIGNERS` to deploy): allowed only while no active user holds one of them — the bootstrap of a new
    installation (its first administrator, its first process library). The audit log records :data:`OPERATOR`
    and the operating-system user."""
    holders = sorted(u for u, r in session.execute(select(AppUser.username, AppUser.roles)
                                                   .where(AppUser.active.is_(True)))
                     if set(r or ()) & set(roles))
    if holders:
        raise NotAllowed.fmt("Active users hold the role {roles} ({users}): name the acting user with --user.",
                             roles=", ".join(roles), users=", ".join(holders[:5]) + (" …" if len(holders) > 5 else ""))
    return Actor(OPERATOR, frozenset(roles), via="cli", os_user=os_user)


# ------------------------------------------------------------------------------------------ definitions
def check_design(actor: Actor) -> None:
    """Validate or deploy process definitions: a designer."""
    check_roles(actor, DESIGNERS)


# ------------------------------------------------------------------------------------------ stranded items
#: the kinds of stranded item a supervisor settles: a rectification order, an enforcement case
STRANDED_KINDS = ("order", "case")
_CITY_WIDE = {
    "order": "Rectification order {id} concerns no registered entity (a city-wide matter); {user} has a district "
             "jurisdiction.",
    "case": "Enforcement case {id} concerns no registered entity (a city-wide matter); {user} has a district "
            "jurisdiction.",
}


def check_stranded(session: Session, actor: Actor, kind: str, item_id: int, uscc: str | None) -> None:
    """Settle a stranded order or case (``kind``) about the entity ``uscc``: a supervisor, the entity registered
    in their jurisdiction; one about no registered entity is city-wide, for a supervisor without a restriction."""
    check_roles(actor, SUPERVISORS)
    district = district_of_uscc(session, uscc)
    if district is None:
        if actor.limited:
            raise NotAllowed.fmt(_CITY_WIDE[kind], id=item_id, user=actor.username)
        return
    _check_districts(actor, {district}, kind, item_id)


# ------------------------------------------------------------------------------------------ documents
#: who voids an issued official document (it keeps its number, marked void)
DOCUMENT_VOIDERS = ("supervisor", "admin")


def check_void_document(session: Session, actor: Actor, number: str, uscc: str | None) -> None:
    """Void an issued document: a supervisor or an administrator, its entity in their jurisdiction; one about no
    registered entity is city-wide, for those without a district restriction (as :func:`check_stranded`)."""
    check_roles(actor, DOCUMENT_VOIDERS)
    district = district_of_uscc(session, uscc)
    if district is None and actor.limited:
        raise NotAllowed(f"Document {number} concerns no registered entity (a city-wide matter); {actor.username} "
                         f"has a district jurisdiction.")
    if district is not None and not actor.sees_district(district):
        raise NotAllowed(f"Document {number} concerns an entity in district {district}, outside the jurisdiction "
                         f"of {actor.username}.")


# ------------------------------------------------------------------------------------------ background jobs
#: who read every person's background jobs (a simulation's parameters and result): the installation's admins
JOB_READERS = ADMINS


def check_read_job(actor: Actor, owner: str, job_id: int) -> None:
    """A background job (a what-if simulation) is read by the person who asked for it and by administrators
    (who look after the worker); other designers and supervisors do not see another's unfinished what-ifs."""
    if actor.username == owner or actor.has(*JOB_READERS):
        return
    raise NotAllowed.fmt("Simulation {id} belongs to {owner}; only they and administrators can see it.",
                         id=job_id, owner=owner)

#: who reads the read log (who opened which dossier, evidence file or instance history): the auditors alone —
#: administrators manage accounts and do not audit them (``/audit/reads``)
READ_LOG_READERS = ("auditor",)
