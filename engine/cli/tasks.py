"""``regflow tasks``, ``claim``, ``unclaim`` and ``complete``: the inbox from the command line. A person's
actions go through :mod:`engine.commands.tasks`, as from the web and the API."""
from __future__ import annotations

import click
from sqlalchemy import or_, select

from engine.commands import tasks as task_commands
from engine.runtime.models import HumanTask, HumanTaskCandidate

from .support import CliState, emit, handle_errors, instance_doc, json_option, parse_json_arg, pass_state, table


def _task_doc(t) -> dict:
    return {"task_id": t.id, "instance_id": t.instance_id, "bpmn_id": t.bpmn_id, "name": t.name,
            "assignee": t.assignee, "candidate_groups": t.candidate_groups, "due_at": t.due_at,
            "priority": t.priority, "form_id": t.form_id, "business_key": t.business_key, "status": t.status}


@click.command()
@click.option("--user", help="Tasks assigned to this user or open to one of their groups.")
@click.option("--group", help="Tasks open to this candidate group.")
@click.option("--instance", "instance_id", type=int)
@click.option("--all", "include_closed", is_flag=True, help="Include completed and cancelled tasks.")
@click.option("--limit", default=200, show_default=True)
@json_option
@pass_state
@handle_errors
def tasks(state: CliState, user, group, instance_id, include_closed, limit, as_json) -> None:
    """List human tasks (the inbox)."""
    q = select(HumanTask).order_by(HumanTask.priority.desc(), HumanTask.id).limit(limit)
    if not include_closed:
        q = q.where(HumanTask.status == "open")
    with state.tx() as s:
        if user:
            groups = state.runtime.user_groups(s, user)
            in_groups = select(HumanTaskCandidate.task_id).where(HumanTaskCandidate.group_name.in_(groups))
            q = q.where(or_(HumanTask.assignee == user,
                            (HumanTask.assignee.is_(None)) & HumanTask.id.in_(in_groups)))
        if group:
            q = q.where(HumanTask.id.in_(select(HumanTaskCandidate.task_id)
                                         .where(HumanTaskCandidate.group_name == group)))
        if instance_id:
            q = q.where(HumanTask.instance_id == instance_id)
        doc = [_task_doc(t) for t in s.scalars(q)]
    emit(doc, as_json, lambda d: table([{**r, "candidate_groups": ",".join(r["candidate_groups"] or [])}
                                        for r in d],
                                       ["task_id", "instance_id", "bpmn_id", "name", "assignee",
                                        "candidate_groups", "due_at"]))


def _ownership(action: str, help_text: str) -> click.Command:
    """``claim`` / ``unclaim``: the same adapter over :func:`engine.commands.tasks.claim` / ``unclaim``."""
    command = getattr(task_commands, action)

    @click.argument("task_id", type=int)
    @click.option("--user", required=True)
    @json_option
    @pass_state
    @handle_errors
    def cmd(state: CliState, task_id: int, user: str, as_json: bool) -> None:
        with state.tx() as s:
            doc = _task_doc(command(state.runtime, s, state.actor(s, user), task_id))
        emit(doc, as_json, lambda d: f"task {d['task_id']} {action}ed" + (f" by {d['assignee']}" if d["assignee"]
                                                                          else ""))

    cmd.__doc__ = help_text
    return click.command(name=action)(cmd)


claim = _ownership("claim", "Claim a task for USER (who must be in one of its candidate groups).")
unclaim = _ownership("unclaim", "Give a claimed task back to its candidate groups.")


@click.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@click.option("--data", help="Form data as a JSON object.")
@click.option("--rev", type=int, help="Fail with a conflict unless the instance is at this rev.")
@json_option
@pass_state
@handle_errors
def complete(state: CliState, task_id: int, user: str, data: str | None, rev: int | None, as_json: bool) -> None:
    """Complete a task as USER with DATA (validated and coerced by its form, as from the web and the API); the
    engine runs on to the next wait state."""
    values = parse_json_arg(data, "--data")
    with state.tx() as s:
        outcome = task_commands.complete(state.runtime, s, state.actor(s, user), task_id, values, rev=rev,
                                         rev_required=False)
        doc = instance_doc(outcome.instance, outcome.failure)
        doc["task_id"] = task_id
    emit(doc, as_json, lambda d: f"task {task_id} completed; instance {d['instance_id']} {d['status']} "
                                 f"(rev {d['rev']})" + (f"\n  failure: {d['failure']}" if d.get("failure") else ""))


COMMANDS = (tasks, claim, unclaim, complete)
