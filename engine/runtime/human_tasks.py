"""People's work on human tasks, for the runtime (``engine.runtime.runtime``): claim, give back, delegate and
complete a task, and the generic task guard used when the application plugs in no policy of its own.

Claim, unclaim and delegate lock the task's instance and append to its audit chain without running the
workflow; completing a task is a full step (its second half is :mod:`engine.runtime.steps`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from engine.errors import Conflict, FormValidationError, InvalidInput, NotAllowed, NotFound

from . import clock
from .audit import Event
from .models import AppGroup, AppUser, HumanTask, HumanTaskCandidate, ProcessInstance, UserGroup
from .script_engine import StepContext
from .step_data import INSTANCE_COLUMNS, InstanceRow, StepOutcome, StepState
from .steps import shallow_diff

_PI = ProcessInstance.__table__
_HT = HumanTask.__table__
_HTC = HumanTaskCandidate.__table__
_U, _G, _UG = AppUser.__table__, AppGroup.__table__, UserGroup.__table__
# Statements built once (see engine.runtime.steps: a reused statement object keeps its cache key).
_COMPLETE_HT = (update(_HT).where(_HT.c.id == bindparam("b_id"))
                .values(status="completed", completed_at=bindparam("completed_at"),
                        completed_by=bindparam("completed_by"), assignee=bindparam("assignee")))
_DEL_HTC = delete(_HTC).where(_HTC.c.task_id == bindparam("b_task_id"))
_MARK_HTC = update(_HTC).where(_HTC.c.task_id == bindparam("b_task_id")).values(claimed=bindparam("claimed"))
#: (active, group name) rows of one user, built once (Core, so no ORM compile per call)
_USER_GROUPS = (select(_U.c.active, _G.c.name)
                .select_from(_U.outerjoin(_UG, _UG.c.user_id == _U.c.id).outerjoin(_G, _G.c.id == _UG.c.group_id))
                .where(_U.c.username == bindparam("username")))
_TASK_AND_INSTANCE = (
    select(_HT.c.id.label("ht_id"), _HT.c.task_guid, _HT.c.bpmn_id.label("ht_bpmn_id"),
           _HT.c.status.label("ht_status"), _HT.c.assignee, _HT.c.candidate_groups, _HT.c.form_id,
           _HT.c.completed_by, *INSTANCE_COLUMNS)
    .join(_PI, _PI.c.id == _HT.c.instance_id).where(_HT.c.id == bindparam("task_id")))
#: PostgreSQL: lock the task and its instance; a waiter re-reads both once the lock is free
_TASK_AND_INSTANCE_LOCKED = _TASK_AND_INSTANCE.with_for_update()


@dataclass
class _TaskView:
    id: int
    task_guid: str
    bpmn_id: str
    status: str
    assignee: str | None
    candidate_groups: list[str]
    form_id: str | None
    completed_by: str | None
    instance_id: int
    business_key: str | None


def _not_open(ht) -> Conflict:
    """A claim, give-back or delegation of a task that is no longer open."""
    if ht.status == "completed":
        return Conflict.fmt("Task {id} was already completed by {user}.", id=ht.id, user=ht.completed_by or "?",
                            details={"task_status": ht.status})
    return Conflict.fmt("Task {id} was cancelled.", id=ht.id, details={"task_status": ht.status})


class HumanTaskMixin:
    """Human tasks, for :class:`engine.runtime.runtime.Runtime`: relies on its ``task_guard``,
    ``form_validator``, instance locking and loading, and on the step's second half (``StepMixin``)."""

    task_guard: Callable[[Session, Any, Any, str], None]
    form_validator: Callable[..., tuple[dict, dict]] | None

    def _get_human_task(self, session: Session, task_id: int) -> HumanTask:
        ht = session.get(HumanTask, task_id, populate_existing=True)
        if ht is None:
            raise NotFound.fmt("Task {id} does not exist.", id=task_id)
        return ht

    def user_groups(self, session: Session, username: str) -> set[str]:
        return self._user(session, username)[1]

    def _user(self, session: Session, username: str) -> tuple[bool, set[str]]:
        """(exists and active, groups) in one query."""
        rows = session.execute(_USER_GROUPS, {"username": username}).all()
        if not rows:
            return False, set()
        return bool(rows[0][0]), {g for _a, g in rows if g}

    def _check_user(self, session: Session, username: str) -> set[str]:
        active, groups = self._user(session, username)
        if not active:
            raise NotAllowed(f"unknown or inactive user {username!r}")
        return groups

    def may_work_on(self, session: Session, ht, username: str, groups: set[str] | None = None) -> bool:
        if ht.assignee:
            return ht.assignee == username
        groups = self.user_groups(session, username) if groups is None else groups
        return bool(set(ht.candidate_groups or []) & groups)

    def _locked_task(self, session: Session, task_id: int) -> tuple[HumanTask, InstanceRow]:
        instance_id = session.execute(select(_HT.c.instance_id).where(_HT.c.id == task_id)).scalar()
        if instance_id is None:
            raise NotFound.fmt("Task {id} does not exist.", id=task_id)
        inst = self._lock_instance(session, instance_id)
        return self._get_human_task(session, task_id), inst

    def _generic_guard(self, session: Session, user, task, action: str) -> None:
        """Without an application policy: an active user; claim needs a candidate group, unclaim being the
        assignee, delegate and complete being the assignee or (unclaimed) in a candidate group."""
        name = getattr(user, "username", user)
        groups = self._check_user(session, name)
        if task.status != "open":
            return
        candidates = set(task.candidate_groups or [])
        if action == "claim":
            if task.assignee != name and not candidates & groups:
                raise NotAllowed(f"{name} is not in any candidate group of task {task.id} "
                                 f"({', '.join(task.candidate_groups or []) or 'none'})")
        elif action == "unclaim":
            if task.assignee != name:
                raise NotAllowed(f"task {task.id} is not claimed by {name}")
        elif not self.may_work_on(session, task, name, groups):
            who = f"assigned to {task.assignee}" if task.assignee else \
                f"for groups {', '.join(task.candidate_groups or []) or '(none)'}"
            raise NotAllowed(f"task {task.id} is {who}; {name} may not {action} it")

    def claim(self, session: Session, task_id: int, user) -> HumanTask:
        """Claim an open task for ``user`` (a user name or an actor with ``username``)."""
        ht, inst = self._locked_task(session, task_id)
        self.task_guard(session, user, ht, "claim")
        user = getattr(user, "username", user)
        if ht.status != "open":
            raise _not_open(ht)
        if ht.assignee == user:
            return ht
        if ht.assignee:
            raise Conflict.fmt("Task {id} is already claimed by {user}.", id=task_id, user=ht.assignee)
        ht.assignee, ht.claimed_at = user, clock.now()
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": True})
        self._append_events(session, inst, [
            Event("task_claimed", user, inst.id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        self._save_instance_head(session, inst)
        return ht

    def unclaim(self, session: Session, task_id: int, user) -> HumanTask:
        ht, inst = self._locked_task(session, task_id)
        self.task_guard(session, user, ht, "unclaim")
        user = getattr(user, "username", user)
        if ht.status != "open":
            raise _not_open(ht)
        ht.assignee, ht.claimed_at = None, None
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": False})
        self._append_events(session, inst, [
            Event("task_unclaimed", user, inst.id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        self._save_instance_head(session, inst)
        return ht

    def delegate(self, session: Session, task_id: int, user, to_user: str, reason: str = "") -> HumanTask:
        """Hand an open task to a colleague: ``user`` must be its assignee (or may work on it), and
        ``to_user`` must be allowed to work on it (in a candidate group, or the task has none)."""
        ht, inst = self._locked_task(session, task_id)
        self.task_guard(session, user, ht, "delegate")
        user = getattr(user, "username", user)
        if ht.status != "open":
            raise _not_open(ht)
        if to_user == user:
            raise InvalidInput("delegate: choose a colleague, not yourself")
        to_groups = self._check_user(session, to_user)
        if ht.candidate_groups and not set(ht.candidate_groups) & to_groups:
            raise InvalidInput(f"delegate: {to_user} is not in any candidate group of task {task_id} "
                               f"({', '.join(ht.candidate_groups)})")
        before = ht.assignee
        ht.assignee, ht.claimed_at = to_user, clock.now()
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": True})
        self._append_events(session, inst, [
            Event("task_delegated", user, inst.id, ht.bpmn_id, ht.task_guid,
                  detail={"task_id": ht.id, "from": before, "to": to_user, "reason": reason})])
        self._save_instance_head(session, inst)
        return ht

    def complete_task(self, session: Session, task_id: int, user, data: dict | None = None,
                      rev: int | None = None, *, lang: str | None = None) -> StepOutcome:
        """Complete a task as ``user`` (a user name or an actor with ``username``) with ``data`` (JSON-like raw
        input: the form validator checks and coerces it, and the clean values are stored), if the instance is
        at ``rev`` (``None``: any). Checked in this order: the task exists (NotFound), the guard lets ``user``
        complete it (NotAllowed), it is open and current (Conflict), the data is valid (FormValidationError).
        The instance's state is loaded once. Completing an unclaimed task claims it (both events audited)."""
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidInput("task data must be a JSON object")
        self._run_before_step(session)
        q = _TASK_AND_INSTANCE_LOCKED if session.get_bind().dialect.name == "postgresql" else _TASK_AND_INSTANCE
        row = session.execute(q, {"task_id": task_id}).first()
        if row is None:
            raise NotFound.fmt("Task {id} does not exist.", id=task_id)
        m = row._mapping
        inst = InstanceRow.from_row(row)
        ht = _TaskView(m["ht_id"], m["task_guid"], m["ht_bpmn_id"], m["ht_status"], m["assignee"],
                       m["candidate_groups"] or [], m["form_id"], m["completed_by"], inst.id, inst.business_key)
        self.task_guard(session, user, ht, "complete")
        user = getattr(user, "username", user)
        if rev is not None and rev != inst.rev:
            raise Conflict(f"instance {inst.id} is at rev {inst.rev}, not {rev}: reload and retry", rev=inst.rev)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}"
                           + (f" (by {ht.completed_by})" if ht.completed_by else ""), task_status=ht.status)
        if inst.status != "running":
            raise Conflict(f"instance {inst.id} is {inst.status}")
        step = StepContext(session, inst.id, inst.business_key, user)
        wf = self._load(session, inst, step)
        task = wf.get_task_from_id(UUID(ht.task_guid))
        if task is None or task.state != TaskState.READY:
            raise Conflict(f"task {task_id} is no longer ready in instance {inst.id}")
        _check_other_person(session, inst.id, task, ht, user)
        if ht.form_id and self.form_validator is not None:
            # the task's data lets the form bind runtime parts (e.g. the merged checklist's clauses)
            data, errors = self.form_validator(ht.form_id, data, task.data, lang=lang)
            if errors:
                raise FormValidationError(f"form {ht.form_id} is not valid", errors)
        st = StepState(before=self._snapshot(wf, inst))
        if ht.assignee is None:  # completing an unclaimed task claims it: recorded as such
            st.events.append(Event("task_claimed", user, inst.id, ht.bpmn_id, ht.task_guid,
                                   detail={"task_id": ht.id, "on_completion": True}))
        before = dict(task.data)
        task.data.update(data)
        task.run()
        st.completed_human_guids.add(ht.task_guid)
        now = clock.now()
        session.execute(_COMPLETE_HT, {"b_id": ht.id, "completed_at": now, "completed_by": user,
                                       "assignee": ht.assignee or user})
        session.execute(_DEL_HTC, {"b_task_id": ht.id})
        st.events.append(Event("task_completed", user, inst.id, ht.bpmn_id, ht.task_guid,
                               flow_ids=self._incoming_flow(inst.definition_id, task),
                               data_diff=shallow_diff(before, task.data), detail={"task_id": ht.id}))
        return self._advance(session, inst, wf, st, user)


def not_completed_by(task) -> tuple[str, ...]:
    """The BPMN ids a user task's ``notCompletedBy`` property names (comma-separated): whoever completed one of
    those tasks in the instance may not complete this one (four eyes: a second officer countersigns)."""
    props = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
    return tuple(x.strip() for x in (props.get("notCompletedBy") or "").split(",") if x.strip())


def _check_other_person(session: Session, instance_id: int, task, ht, user: str) -> None:
    others = not_completed_by(task)
    if not others:
        return
    done = session.scalars(select(HumanTask.bpmn_id).where(
        HumanTask.instance_id == instance_id, HumanTask.bpmn_id.in_(others), HumanTask.status == "completed",
        HumanTask.completed_by == user).limit(1)).first()
    if done is not None:
        raise NotAllowed.fmt("Task {id} needs a second person: {user} completed {other} of this case.", id=ht.id,
                             user=user, other=done)

