"""``regflow start``, ``instances``, ``suspend``/``resume``/``terminate``, ``history`` and ``message``: process
instances from the command line."""
from __future__ import annotations

import click
from sqlalchemy import select

from engine.commands import instances as instance_commands
from engine.errors import NotFound
from engine.runtime.models import AuditEvent, ProcessInstance

from .support import CliState, emit, handle_errors, instance_doc, json_option, parse_json_arg, pass_state, table


@click.command()
@click.argument("process_id")
@click.option("--key", "business_key", help="Business key (the entity's USCC).")
@click.option("--data", help="Start variables as a JSON object.")
@click.option("--user", required=True, help="Who starts it: one of the process' startableBy groups.")
@json_option
@pass_state
@handle_errors
def start(state: CliState, process_id: str, business_key: str | None, data: str | None, user: str,
          as_json: bool) -> None:
    """Start an instance of the latest version of PROCESS_ID as USER (the authorization policy applies)."""
    variables = parse_json_arg(data, "--data")
    with state.tx() as s:
        outcome = instance_commands.start(state.runtime, s, state.actor(s, user), process_id, business_key,
                                          variables)
        doc = instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"instance {d['instance_id']} {d['status']} (rev {d['rev']})"
         + (f"\n  failure: {d['failure']}" if d.get("failure") else ""))


@click.command()
@click.option("--status", type=click.Choice(["running", "suspended", "completed", "terminated"]))
@click.option("--process", "process_id")
@click.option("--key", "business_key")
@click.option("--limit", default=100, show_default=True)
@json_option
@pass_state
@handle_errors
def instances(state: CliState, status, process_id, business_key, limit, as_json) -> None:
    """List instances, newest first."""
    q = select(ProcessInstance).order_by(ProcessInstance.id.desc()).limit(limit)
    if status:
        q = q.where(ProcessInstance.status == status)
    if process_id:
        q = q.where(ProcessInstance.process_id == process_id)
    if business_key:
        q = q.where(ProcessInstance.business_key == business_key)
    with state.tx() as s:
        doc = [instance_doc(i) for i in s.scalars(q)]
    emit(doc, as_json, lambda d: table(d, ["instance_id", "process_id", "business_key", "status", "rev",
                                           "started_at"]))


def _lifecycle(action: str) -> click.Command:
    @click.argument("instance_id", type=int)
    @click.option("--user", required=True)
    @click.option("--reason", required=True)
    @json_option
    @pass_state
    @handle_errors
    def cmd(state: CliState, instance_id: int, user: str, reason: str, as_json: bool) -> None:
        with state.tx() as s:
            inst = instance_commands.change_status(state.runtime, s, state.actor(s, user), instance_id, action,
                                                   reason)
            doc = instance_doc(inst)
        emit(doc, as_json, lambda d: f"instance {d['instance_id']} {d['status']}")

    cmd.__doc__ = f"{action.capitalize()} an instance as USER, a supervisor or administrator (audited, with a reason)."
    return click.command(name=action)(cmd)


@click.command()
@click.argument("instance_id", type=int)
@json_option
@pass_state
@handle_errors
def history(state: CliState, instance_id: int, as_json: bool) -> None:
    """Ordered events of an instance: element ids, flow ids, actor, time, data changes."""
    with state.tx() as s:
        if s.get(ProcessInstance, instance_id) is None:
            raise NotFound(f"instance {instance_id} not found")
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"instance:{instance_id}")
                           .order_by(AuditEvent.seq)).all()
        doc = {"instance_id": instance_id, "events": [
            {"seq": e.seq, "at": e.at, "actor": e.actor, "kind": e.kind, "bpmn_id": e.bpmn_id,
             "flow_ids": e.flow_ids, "data_diff": e.data_diff, "detail": e.detail} for e in events]}

    def human(d):
        rows = [{**e, "at": e["at"].isoformat(timespec="seconds"), "flow_ids": ",".join(e["flow_ids"]),
                 "changed": ",".join(sorted(e["data_diff"]))} for e in d["events"]]
        return table(rows, ["seq", "at", "actor", "kind", "bpmn_id", "flow_ids", "changed"])

    emit(doc, as_json, human)


@click.command()
@click.argument("name")
@click.option("--correlation", help="Correlation values as a JSON object, e.g. '{\"uscc\": \"…\"}'.")
@click.option("--payload", help="Message payload as JSON.")
@click.option("--key", "business_key", help="Only instances with this business key.")
@click.option("--user", default="system", show_default=True)
@json_option
@pass_state
@handle_errors
def message(state: CliState, name, correlation, payload, business_key, user, as_json) -> None:
    """Deliver message NAME to the one instance waiting for it with this correlation."""
    with state.tx() as s:
        outcome = state.runtime.correlate_message(
            s, name, parse_json_arg(payload, "--payload"), parse_json_arg(correlation, "--correlation") or {},
            business_key=business_key, actor=user)
        doc = instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"delivered to instance {d['instance_id']} ({d['status']})")


COMMANDS = (start, instances, *(_lifecycle(a) for a in ("suspend", "resume", "terminate")), history, message)
