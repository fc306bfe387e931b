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

The module is cut along seams (each re-exported here; call everything as ``policy.*``): :mod:`engine.policy_base`
(roles, :class:`Actor`, districts, instances, starting), :mod:`engine.policy_records` (official documents, the two
lists, revocations of publications, public draws), :mod:`engine.policy_portal` (the entity portal); tasks,
evidence, delegation, users, definitions, stranded items and background jobs are here.

Business keys and USCCs are normalised (surrounding spaces removed, upper case) before any check or use.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotAllowed
from engine.policy_base import (  # noqa: F401  (re-exported: the policy is called as policy.*)
    ADMINS,
    DESIGN_READERS,
    DESIGNERS,
    DOSSIER_READERS,
    ENTITY_KEYS,
    INSTANCE_ADMINS,
    INSTANCE_READERS,
    OPERATOR,
    SCORE_READERS,
    SIMULATORS,
    STARTABLE_BY,
    STARTERS,
    SUPERVISORS,
    TASK_WORKERS,
    WHAT_IF_SCORERS,
    Actor,
    check_districts,
    check_instance_admin,
    check_read_instance,
    check_roles,
    check_start,
    district_of_uscc,
    entity_districts,
    instance_districts,
    load_actor,
    normalise_key,
    starter_groups,
    took_part,
)
from engine.policy_portal import (  # noqa: F401  (re-exported: the policy is called as policy.*)
    PORTAL_OFFICERS,
    check_portal_entity,
    check_portal_officer,
    may_handle_portal,
)
from engine.policy_records import (  # noqa: F401  (re-exported: the policy is called as policy.*)
    CASE_FILE_READERS,
    DOCUMENT_READERS,
    DOCUMENT_SERVERS,
    DOCUMENT_VOIDERS,
    LIST_APPLICANT_CLERKS,
    LIST_JOB_RUNNERS,
    LIST_KEEPERS,
    LIST_READERS,
    POPULATION_READERS,
    REVOCATION_RECORDERS,
    check_export_case_file,
    check_list_entity,
    check_list_jobs,
    check_list_read,
    check_population_download,
    check_read_document,
    check_record_revocation,
    check_serve_document,
    check_void_document,
)
from engine.runtime.models import AppUser, ProcessInstance


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
        check_districts(actor, instance_districts(session, task.instance_id, task.business_key), "task", task.id)
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
    check_districts(actor, instance_districts(session, evidence.instance_id, business_key), "evidence",
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
    check_districts(actor, {district}, kind, item_id)


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
