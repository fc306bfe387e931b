"""Task commands: read, claim, unclaim, delegate, complete (see :mod:`engine.commands`).

Authorization is the policy's (:func:`engine.policy.check_task`), applied by the runtime's task guard under the
instance's lock for every change, and here for reads and for input that is refused before the runtime runs (so
that who may not work on a task learns nothing more from a malformed request: 403 before 400)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import Conflict, InvalidInput, NotFound
from engine.policy import Actor
from engine.runtime.models import HumanTask, ProcessInstance
from engine.runtime.runtime import Runtime, StepOutcome

#: the longest delegation reason
REASON_MAX = 500


@dataclass
class TaskView:
    """What a person working on a task sees: the task row, its instance and the task's current data."""

    task: HumanTask
    instance: ProcessInstance
    data: dict


def get_task(session: Session, task_id: int) -> HumanTask:
    ht = session.get(HumanTask, task_id)
    if ht is None:
        raise NotFound.fmt("Task {id} does not exist.", id=task_id)
    return ht


def authorize(session: Session, actor: Actor, task_id: int, action: str = "read") -> HumanTask:
    """The task, if ``actor`` may ``action`` it (:class:`NotAllowed` otherwise)."""
    ht = get_task(session, task_id)
    policy.check_task(session, actor, ht, action)
    return ht


def not_open_message(ht: HumanTask) -> str:
    if ht.status == "completed":
        return f"task {ht.id} was already completed by {ht.completed_by or '?'}; nothing was saved"
    return f"task {ht.id} was cancelled (its process moved on or was stopped); nothing was saved"


def read(rt: Runtime, session: Session, actor: Actor, task_id: int, *, with_data: bool = True) -> TaskView:
    """An open task for its page or ``GET /api/v1/tasks/<id>``: 403 for who may not see it, 409 once closed."""
    ht = authorize(session, actor, task_id)
    if ht.status != "open":
        raise Conflict(not_open_message(ht), task_status=ht.status)
    inst = session.get(ProcessInstance, ht.instance_id)
    data: dict = {}
    if with_data:
        try:
            task = rt.load_workflow(session, ht.instance_id).get_task_from_id(UUID(ht.task_guid))
        except (NotFound, KeyError, ValueError):
            task = None
        data = dict(task.data) if task is not None else {}
    return TaskView(ht, inst, data)


def claim(rt: Runtime, session: Session, actor: Actor, task_id: int) -> HumanTask:
    return rt.claim(session, task_id, actor)


def unclaim(rt: Runtime, session: Session, actor: Actor, task_id: int) -> HumanTask:
    return rt.unclaim(session, task_id, actor)


def delegate(rt: Runtime, session: Session, actor: Actor, task_id: int, to_user: Any, reason: Any) -> HumanTask:
    """Hand the task to a colleague, with a reason (both required). The delegator first (403), then the input,
    then the receiver, who must be able to work on the task (:func:`engine.policy.check_delegate_to`: 400 naming
    them); the runtime checks the delegator again under the instance's lock, and the candidate groups."""
    to_user = to_user.strip() if isinstance(to_user, str) else ""
    reason = reason.strip() if isinstance(reason, str) else ""
    ht = authorize(session, actor, task_id, "delegate")
    if not to_user:
        raise InvalidInput.fmt("Choose the colleague to delegate task {id} to.", id=task_id,
                               details={"field": "to_user"})
    if not reason:
        raise InvalidInput.fmt("Give a reason for delegating task {id}.", id=task_id, details={"field": "reason"})
    if len(reason) > REASON_MAX:
        raise InvalidInput.fmt("The reason is too long (at most 500 characters).", details={"field": "reason"})
    if ht.status == "open" and to_user != actor.username:
        policy.check_delegate_to(session, ht, to_user)
    return rt.delegate(session, task_id, actor, to_user, reason)


def parse_rev(value: Any, *, required: bool) -> int | None:
    """The instance revision a submission was prepared at: a whole number (or its digits), ``None`` when absent
    and not required."""
    if value is None or value == "":
        if required:
            raise InvalidInput.fmt("The submission does not say which version of the task it was made on (rev). "
                                   "Reload the task and submit again.", details={"field": "rev"})
        return None
    if isinstance(value, bool):
        raise InvalidInput.fmt("rev must be a whole number of 0 or more, not {value}.", value=repr(value),
                               details={"field": "rev"})
    if isinstance(value, int):
        rev = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        rev = int(value)
    else:
        raise InvalidInput.fmt("rev must be a whole number of 0 or more, not {value}.", value=repr(str(value)[:40]),
                               details={"field": "rev"})
    if rev < 0:
        raise InvalidInput.fmt("rev must be a whole number of 0 or more, not {value}.", value=rev,
                               details={"field": "rev"})
    return rev


def complete(rt: Runtime, session: Session, actor: Actor, task_id: int, data: Any, *, rev: Any = None,
             rev_required: bool = True, lang: str | None = None) -> StepOutcome:
    """Complete the task with ``data``, the canonical raw input (a JSON object: the web nests its form fields
    into one, the API and the CLI pass theirs as sent), validated and coerced once by the form validator inside
    the step, which loads the instance's state once. 404, 403, 400, 409 (closed, stale rev), 422 (form)."""
    try:
        checked_rev = parse_rev(rev, required=rev_required)
        if data is not None and not isinstance(data, dict):
            raise InvalidInput.fmt("The task data must be a JSON object.", details={"field": "data"})
    except InvalidInput:
        authorize(session, actor, task_id, "complete")
        raise
    return rt.complete_task(session, task_id, actor, data or {}, rev=checked_rev, lang=lang)
