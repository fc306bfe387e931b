"""``regflow``: one command-line contract for people, scripts and tests.

Exit codes: 0 done, 2 invalid input (what and where on stderr), 3 not found, 4 conflict, 5 not allowed.
With ``--json`` a command prints exactly one JSON document on stdout.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from sqlalchemy import or_, select

from engine.config import load_settings
from engine.cli_support import emit, handle_errors, json_option, table as _table
from engine.errors import InvalidInput


class CliState:
    def __init__(self) -> None:
        self.settings = load_settings()
        self._runtime = None
        self._factory = None

    @property
    def factory(self):
        if self._factory is None:
            from engine.db import session_factory

            self._factory = session_factory(self.settings.database_url)
        return self._factory

    @property
    def runtime(self):
        if self._runtime is None:
            from engine.bootstrap import build_runtime

            self._runtime = build_runtime(self.settings)
        return self._runtime

    def tx(self):
        from engine.db import transaction

        return transaction(self.factory)

    def form_hash(self):
        from engine.bootstrap import form_hasher

        return form_hasher(self.settings)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def parse_json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


@click.group()
@click.version_option(package_name="regflow")
def main() -> None:
    """regflow: BPMN workflow engine for risk-based market-supervision inspections."""


# ---------------------------------------------------------------------------------------------- setup
@main.command()
@json_option
@pass_state
@handle_errors
def init(state: CliState, as_json: bool) -> None:
    """Create or upgrade the database schema (Alembic, one head)."""
    from engine.schema import upgrade
    from engine.supervision.calendar import seed_from_chinese_calendar

    upgrade(state.settings.database_url)
    with state.tx() as s:
        seeded = seed_from_chinese_calendar(s)
    emit({"database_url": _redact(state.settings.database_url), "schema": "head",
          "calendar_years_created": seeded.created}, as_json,
         lambda d: f"schema at head: {d['database_url']}; calendar years seeded: {len(d['calendar_years_created'])}")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--user", default="system", show_default=True, help="Who deploys (audited).")
@json_option
@pass_state
@handle_errors
def deploy(state: CliState, paths: tuple[str, ...], user: str, as_json: bool) -> None:
    """Deploy BPMN/DMN files or folders; identical content keeps its version."""
    from engine.runtime.deploy import deploy as do_deploy, read_paths

    files = read_paths(list(paths))
    with state.tx() as s:
        results = do_deploy(state.runtime, s, files, user, form_hash=state.form_hash())
    doc = [r.to_dict() for r in results]
    emit(doc, as_json, lambda d: _table(d, ["process_id", "version", "definition_id", "created"]))


# ---------------------------------------------------------------------------------------------- instances
def _instance_doc(inst, outcome_failure=None) -> dict:
    doc = {"instance_id": inst.id, "process_id": inst.process_id, "business_key": inst.business_key,
           "status": inst.status, "rev": inst.rev, "started_at": inst.started_at, "ended_at": inst.ended_at}
    if outcome_failure:
        doc["failure"] = outcome_failure
    return doc


@main.command()
@click.argument("process_id")
@click.option("--key", "business_key", help="Business key (the entity's USCC).")
@click.option("--data", help="Start variables as a JSON object.")
@click.option("--user", default="system", show_default=True)
@json_option
@pass_state
@handle_errors
def start(state: CliState, process_id: str, business_key: str | None, data: str | None, user: str,
          as_json: bool) -> None:
    """Start an instance of the latest version of PROCESS_ID."""
    variables = parse_json_arg(data, "--data")
    with state.tx() as s:
        outcome = state.runtime.start(s, process_id, business_key=business_key, data=variables, actor=user)
        doc = _instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"instance {d['instance_id']} {d['status']} (rev {d['rev']})"
         + (f"\n  failure: {d['failure']}" if d.get("failure") else ""))


@main.command()
@click.option("--status", type=click.Choice(["running", "suspended", "completed", "terminated"]))
@click.option("--process", "process_id")
@click.option("--key", "business_key")
@click.option("--limit", default=100, show_default=True)
@json_option
@pass_state
@handle_errors
def instances(state: CliState, status, process_id, business_key, limit, as_json) -> None:
    """List instances, newest first."""
    from engine.runtime.models import ProcessInstance

    q = select(ProcessInstance).order_by(ProcessInstance.id.desc()).limit(limit)
    if status:
        q = q.where(ProcessInstance.status == status)
    if process_id:
        q = q.where(ProcessInstance.process_id == process_id)
    if business_key:
        q = q.where(ProcessInstance.business_key == business_key)
    with state.tx() as s:
        doc = [_instance_doc(i) for i in s.scalars(q)]
    emit(doc, as_json, lambda d: _table(d, ["instance_id", "process_id", "business_key", "status", "rev",
                                            "started_at"]))


def _lifecycle(action: str):
    @click.argument("instance_id", type=int)
    @click.option("--user", required=True)
    @click.option("--reason", required=True)
    @json_option
    @pass_state
    @handle_errors
    def cmd(state: CliState, instance_id: int, user: str, reason: str, as_json: bool) -> None:
        with state.tx() as s:
            inst = getattr(state.runtime, action)(s, instance_id, user, reason)
            doc = _instance_doc(inst)
        emit(doc, as_json, lambda d: f"instance {d['instance_id']} {d['status']}")

    cmd.__doc__ = f"{action.capitalize()} an instance (audited, with a reason)."
    return main.command(name=action)(cmd)


for _action in ("suspend", "resume", "terminate"):
    _lifecycle(_action)


@main.command()
@click.argument("instance_id", type=int)
@json_option
@pass_state
@handle_errors
def history(state: CliState, instance_id: int, as_json: bool) -> None:
    """Ordered events of an instance: element ids, flow ids, actor, time, data changes."""
    from engine.errors import NotFound
    from engine.runtime.models import AuditEvent, ProcessInstance

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
        return _table(rows, ["seq", "at", "actor", "kind", "bpmn_id", "flow_ids", "changed"])

    emit(doc, as_json, human)


@main.command()
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
        doc = _instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"delivered to instance {d['instance_id']} ({d['status']})")


# ---------------------------------------------------------------------------------------------- tasks
def _task_doc(t) -> dict:
    return {"task_id": t.id, "instance_id": t.instance_id, "bpmn_id": t.bpmn_id, "name": t.name,
            "assignee": t.assignee, "candidate_groups": t.candidate_groups, "due_at": t.due_at,
            "priority": t.priority, "form_id": t.form_id, "business_key": t.business_key, "status": t.status}


@main.command()
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
    from engine.runtime.models import HumanTask, HumanTaskCandidate

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
    emit(doc, as_json, lambda d: _table([{**r, "candidate_groups": ",".join(r["candidate_groups"] or [])}
                                         for r in d],
                                        ["task_id", "instance_id", "bpmn_id", "name", "assignee",
                                         "candidate_groups", "due_at"]))


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@json_option
@pass_state
@handle_errors
def claim(state: CliState, task_id: int, user: str, as_json: bool) -> None:
    """Claim a task for USER (who must be in one of its candidate groups)."""
    with state.tx() as s:
        doc = _task_doc(state.runtime.claim(s, task_id, user))
    emit(doc, as_json, lambda d: f"task {d['task_id']} claimed by {d['assignee']}")


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@json_option
@pass_state
@handle_errors
def unclaim(state: CliState, task_id: int, user: str, as_json: bool) -> None:
    """Give a claimed task back to its candidate groups."""
    with state.tx() as s:
        doc = _task_doc(state.runtime.unclaim(s, task_id, user))
    emit(doc, as_json, lambda d: f"task {d['task_id']} unclaimed")


@main.command()
@click.argument("task_id", type=int)
@click.option("--user", required=True)
@click.option("--data", help="Form data as a JSON object.")
@click.option("--rev", type=int, help="Fail with a conflict unless the instance is at this rev.")
@json_option
@pass_state
@handle_errors
def complete(state: CliState, task_id: int, user: str, data: str | None, rev: int | None, as_json: bool) -> None:
    """Complete a task as USER with DATA; the engine runs on to the next wait state."""
    values = parse_json_arg(data, "--data")
    with state.tx() as s:
        outcome = state.runtime.complete_task(s, task_id, user, values, rev=rev)
        doc = _instance_doc(outcome.instance, outcome.failure)
        doc["task_id"] = task_id
    emit(doc, as_json, lambda d: f"task {task_id} completed; instance {d['instance_id']} {d['status']} "
                                 f"(rev {d['rev']})" + (f"\n  failure: {d['failure']}" if d.get("failure") else ""))


# ---------------------------------------------------------------------------------------------- worker
@main.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--now", "now_text", help="ISO 8601 time to treat as now (with --once).")
@json_option
@pass_state
@handle_errors
def worker(state: CliState, once: bool, now_text: str | None, as_json: bool) -> None:
    """Fire due timers and service-task retries (several workers may run at once)."""
    import logging

    from engine.runtime.clock import parse_iso
    from engine.runtime.worker import run_due, serve_forever

    if now_text and not once:
        raise InvalidInput("--now only works with --once")
    now = None
    if now_text:
        try:
            now = parse_iso(now_text)
        except ValueError as exc:
            raise InvalidInput(f"--now {now_text!r} is not an ISO 8601 time") from exc
    if once:
        report = run_due(state.runtime, state.factory, now=now)
        emit(report.to_dict(), as_json, lambda d: f"ran {d['jobs_run']} job(s): {d['timers_fired']} timer(s), "
                                                  f"{d['retries_run']} retr(y/ies), {len(d['failures'])} failure(s)")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per poll is noise
    logging.getLogger("spiff").setLevel(logging.WARNING)  # one line per task state change: noise, and slow
    click.echo(f"worker polling every {state.settings.worker_interval_s}s (Ctrl-C stops)", err=True)
    serve_forever(state.runtime, state.factory, state.settings.worker_interval_s)


# ---------------------------------------------------------------------------------------------- incidents
@main.group(invoke_without_command=True)
@click.option("--all", "include_resolved", is_flag=True)
@json_option
@click.pass_context
def incidents(ctx: click.Context, include_resolved: bool, as_json: bool) -> None:
    """List open incidents (``incidents retry ID`` retries one)."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.ensure_object(CliState)
    from engine.runtime.models import Incident

    q = select(Incident).order_by(Incident.id)
    if not include_resolved:
        q = q.where(Incident.status == "open")
    with state.tx() as s:
        doc = [{"incident_id": i.id, "instance_id": i.instance_id, "bpmn_id": i.bpmn_id, "task_guid": i.task_guid,
                "error_type": i.error_type, "message": i.message, "attempts": i.attempts, "status": i.status,
                "created_at": i.created_at, "stack": i.stack} for i in s.scalars(q)]
    emit(doc, as_json, lambda d: _table(d, ["incident_id", "instance_id", "bpmn_id", "error_type", "message",
                                            "attempts", "status"]))


@incidents.command("retry")
@click.argument("incident_id", type=int)
@click.option("--user", default="system", show_default=True)
@json_option
@pass_state
@handle_errors
def incidents_retry(state: CliState, incident_id: int, user: str, as_json: bool) -> None:
    """Retry the failed task behind an incident."""
    with state.tx() as s:
        outcome = state.runtime.retry_incident(s, incident_id, user)
        doc = _instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"retried; instance {d['instance_id']} {d['status']}"
         + (f"\n  failed again: {d['failure']}" if d.get("failure") else ""))


# ---------------------------------------------------------------------------------------------- audit
@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--instance", "instance_id", type=int, help="Check one instance's chain only.")
@json_option
@pass_state
@handle_errors
def audit_verify(state: CliState, instance_id: int | None, as_json: bool) -> None:
    """Recompute every hash chain and anchor; exit 1 if anything was edited, deleted or reordered."""
    from engine.runtime import audit as audit_log

    with state.tx() as s:
        report = audit_log.verify(s, chain=f"instance:{instance_id}" if instance_id else None)
    doc = report.to_dict()
    emit(doc, as_json, lambda d: ("OK" if d["ok"] else "TAMPERED") +
         f": {d['chains']} chain(s), {d['events']} event(s), {d['anchors']} anchor(s)" +
         "".join(f"\n  {p}" for p in d["problems"]))
    if not report.ok:
        sys.exit(1)


@audit.command("anchor")
@json_option
@pass_state
@handle_errors
def audit_anchor(state: CliState, as_json: bool) -> None:
    """Write an anchor recording the heads of every chain that moved."""
    from engine.runtime import audit as audit_log

    with state.tx() as s:
        anchor = audit_log.write_anchor(s)
        doc = {"anchor_id": anchor.id, "chains": len(anchor.heads)} if anchor else {"anchor_id": None, "chains": 0}
    emit(doc, as_json, lambda d: f"anchor {d['anchor_id']} over {d['chains']} chain(s)")


# ---------------------------------------------------------------------------------------------- users
@main.group()
def users() -> None:
    """Users, roles and groups."""


@users.command("add")
@click.argument("name")
@click.option("--roles", default="", help="Comma-separated: designer, officer, team_leader, supervisor, auditor, admin.")
@click.option("--groups", default="", help="Comma-separated group names (created if new).")
@click.option("--display-name")
@click.option("--by", "actor", default="system", show_default=True)
@json_option
@pass_state
@handle_errors
def users_add(state: CliState, name, roles, groups, display_name, actor, as_json) -> None:
    """Add a user; the password is read from stdin."""
    from engine.runtime.users import add_user

    password = sys.stdin.readline().rstrip("\n")
    with state.tx() as s:
        user = add_user(s, name, password, roles, groups, actor=actor, display_name=display_name)
        doc = {"username": user.username, "roles": user.roles, "groups": sorted(
            x.strip() for x in groups.split(",") if x.strip())}
    emit(doc, as_json, lambda d: f"user {d['username']} roles={','.join(d['roles'])} groups={','.join(d['groups'])}")


@users.command("list")
@json_option
@pass_state
@handle_errors
def users_list(state: CliState, as_json: bool) -> None:
    """List users with their roles and groups."""
    from engine.runtime.models import AppUser
    from engine.runtime.users import groups_of

    with state.tx() as s:
        doc = [{"username": u.username, "roles": u.roles, "groups": sorted(groups_of(s, u.username)),
                "active": u.active} for u in s.scalars(select(AppUser).order_by(AppUser.username))]
    emit(doc, as_json, lambda d: _table([{**r, "roles": ",".join(r["roles"]), "groups": ",".join(r["groups"])}
                                         for r in d], ["username", "roles", "groups", "active"]))


# ---------------------------------------------------------------------------------------------- demo
@main.command()
@json_option
@pass_state
@handle_errors
def demo(state: CliState, as_json: bool) -> None:
    """Load the demo data set into the configured database, then start the demo campaigns (one with
    inspections waiting for officers, one waiting for approval). Once; a second run keeps what is there."""
    from engine.demo import load_demo, start_demo_campaigns

    with state.tx() as s:
        doc = load_demo(state.runtime, s, state.settings)
    doc["demo_campaigns"] = start_demo_campaigns(state.runtime, state.factory, state.settings)
    emit(doc, as_json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))


@main.command()
@json_option
@pass_state
@handle_errors
def services(state: CliState, as_json: bool) -> None:
    """List the service operators BPMN service tasks can call."""
    doc = state.runtime.services.describe()
    emit(doc, as_json, lambda d: "\n".join(
        f"{o['id']}({', '.join(p['id'] + ':' + p['type'] for p in o['parameters'])})  {o['description']}"
        for o in d))


def _attach_groups() -> None:
    """Command groups that live beside their packages."""
    from engine.supervision.calendar_cli import calendar
    from engine.supervision.registries_cli import COMMANDS as registry_commands

    from engine.supervision.draw_cli import draw
    from engine.supervision.evidence_cli import evidence
    from engine.supervision.hazards_cli import hazards
    from engine.supervision.simulate_cli import simulate

    main.add_command(calendar)
    main.add_command(draw)
    main.add_command(evidence)
    main.add_command(hazards)
    main.add_command(simulate)
    for group in registry_commands:  # import, inspectors, items, team
        main.add_command(group)
    from scoring.cli import model, score

    main.add_command(model)
    main.add_command(score)


_attach_groups()

if __name__ == "__main__":  # pragma: no cover
    main()
