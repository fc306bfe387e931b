"""Running an installation: ``regflow init``, ``deploy``, ``worker``, ``incidents``, ``audit``, ``users``,
``demo`` and ``services``."""
from __future__ import annotations

import logging
import sys

import click
from sqlalchemy import select

from engine import policy
from engine.commands import definitions as definition_commands
from engine.commands import instances as instance_commands
from engine.commands import users as user_commands
from engine.demo import load_demo, start_demo_campaigns
from engine.errors import InvalidInput
from engine.runtime import audit as audit_log
from engine.runtime.clock import parse_iso
from engine.runtime.deploy import read_paths
from engine.runtime.models import Incident
from engine.runtime.worker import run_due, serve_forever
from engine.schema import upgrade
from engine.supervision.calendar import seed_from_chinese_calendar

from .passwords import reset_password
from .support import CliState, emit, handle_errors, instance_doc, json_option, os_user, pass_state, table


# ---------------------------------------------------------------------------------------------- setup
@click.command()
@json_option
@pass_state
@handle_errors
def init(state: CliState, as_json: bool) -> None:
    """Create or upgrade the database schema (Alembic, one head)."""
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


def _acting(state: CliState, session, user: str | None, roles: tuple[str, ...]) -> policy.Actor:
    """``--user`` as the policy sees them; without it, the installation's operator, allowed only while no active
    user holds one of ``roles`` (:func:`engine.policy.operator_actor`: the bootstrap of a new installation)."""
    if user:
        return state.actor(session, user)
    return policy.operator_actor(session, roles, os_user=os_user())


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--user", help="The designer who deploys (audited). Without it: only while no active user has the "
                             "designer role (a new installation's first library), recorded as 'system'.")
@json_option
@pass_state
@handle_errors
def deploy(state: CliState, paths: tuple[str, ...], user: str | None, as_json: bool) -> None:
    """Deploy BPMN/DMN files or folders as a designer; identical content keeps its version."""
    files = read_paths(list(paths))
    with state.tx() as s:
        results = definition_commands.deploy(state.runtime, s, _acting(state, s, user, policy.DESIGNERS), files,
                                             form_hash=state.form_hash())
    doc = [r.to_dict() for r in results]
    emit(doc, as_json, lambda d: table(d, ["process_id", "version", "definition_id", "created"]))


# ---------------------------------------------------------------------------------------------- worker
@click.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--now", "now_text", help="ISO 8601 time to treat as now (with --once).")
@json_option
@pass_state
@handle_errors
def worker(state: CliState, once: bool, now_text: str | None, as_json: bool) -> None:
    """Fire due timers, service-task retries and held tasks' continuations (several workers may run at once)."""
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
                                                  f"{d['retries_run']} retr(y/ies), "
                                                  f"{d['continuations_run']} continuation(s), "
                                                  f"{len(d['failures'])} failure(s)")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per poll is noise
    logging.getLogger("spiff").setLevel(logging.WARNING)  # one line per task state change: noise, and slow
    click.echo(f"worker polling every {state.settings.worker_interval_s}s (Ctrl-C stops)", err=True)
    serve_forever(state.runtime, state.factory, state.settings.worker_interval_s)


# ---------------------------------------------------------------------------------------------- incidents
@click.group(invoke_without_command=True)
@click.option("--all", "include_resolved", is_flag=True)
@json_option
@click.pass_context
def incidents(ctx: click.Context, include_resolved: bool, as_json: bool) -> None:
    """List open incidents (``incidents retry ID`` retries one)."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.ensure_object(CliState)
    q = select(Incident).order_by(Incident.id)
    if not include_resolved:
        q = q.where(Incident.status == "open")
    with state.tx() as s:
        doc = [{"incident_id": i.id, "instance_id": i.instance_id, "bpmn_id": i.bpmn_id, "task_guid": i.task_guid,
                "error_type": i.error_type, "message": i.message, "attempts": i.attempts, "status": i.status,
                "created_at": i.created_at, "stack": i.stack} for i in s.scalars(q)]
    emit(doc, as_json, lambda d: table(d, ["incident_id", "instance_id", "bpmn_id", "error_type", "message",
                                           "attempts", "status"]))


@incidents.command("retry")
@click.argument("incident_id", type=int)
@click.option("--user", required=True, help="Who retries: a supervisor or administrator.")
@json_option
@pass_state
@handle_errors
def incidents_retry(state: CliState, incident_id: int, user: str, as_json: bool) -> None:
    """Retry the failed task behind an incident as USER (audited)."""
    with state.tx() as s:
        outcome = instance_commands.retry_incident(state.runtime, s, state.actor(s, user), incident_id)
        doc = instance_doc(outcome.instance, outcome.failure)
    emit(doc, as_json, lambda d: f"retried; instance {d['instance_id']} {d['status']}"
         + (f"\n  failed again: {d['failure']}" if d.get("failure") else ""))


# ---------------------------------------------------------------------------------------------- audit
@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--instance", "instance_id", type=int, help="Check one instance's chain only.")
@json_option
@pass_state
@handle_errors
def audit_verify(state: CliState, instance_id: int | None, as_json: bool) -> None:
    """Recompute every hash chain and anchor; exit 1 if anything was edited, deleted or reordered."""
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
    with state.tx() as s:
        anchor = audit_log.write_anchor(s)
        doc = {"anchor_id": anchor.id, "chains": len(anchor.heads)} if anchor else {"anchor_id": None, "chains": 0}
    emit(doc, as_json, lambda d: f"anchor {d['anchor_id']} over {d['chains']} chain(s)")


# ---------------------------------------------------------------------------------------------- users
@click.group()
def users() -> None:
    """Users, roles and groups."""


users.add_command(reset_password)


_ACTING_ADMIN = click.option(
    "--user", help="The administrator who acts (audited). Without it: only while no active user has the admin role "
                   "(a new installation's first users), recorded as 'system'.")


@users.command("add")
@click.argument("name")
@click.option("--roles", default="",
              help="Comma-separated: designer, officer, team_leader, supervisor, auditor, admin.")
@click.option("--groups", default="", help="Comma-separated group names (created if new).")
@click.option("--jurisdiction", default="", help="Comma-separated 6-digit district codes (empty: every district).")
@click.option("--display-name")
@_ACTING_ADMIN
@json_option
@pass_state
@handle_errors
def users_add(state: CliState, name, roles, groups, jurisdiction, display_name, user, as_json) -> None:
    """Add a user as an administrator; the password (at least 8 characters) is read from stdin. The first
    administrator of a new installation is added without --user."""
    password = sys.stdin.readline().rstrip("\n")
    with state.tx() as s:
        added = user_commands.add(s, _acting(state, s, user, policy.ADMINS), name, password, roles=roles,
                                  groups=groups, jurisdiction=jurisdiction, display_name=display_name)
        doc = {"username": added.username, "roles": added.roles, "groups": user_commands.parse_groups(groups),
               "jurisdiction": list(added.jurisdiction or [])}
    emit(doc, as_json, lambda d: f"user {d['username']} roles={','.join(d['roles'])} groups={','.join(d['groups'])}"
         + (f" jurisdiction={','.join(d['jurisdiction'])}" if d["jurisdiction"] else ""))


@users.command("list")
@_ACTING_ADMIN
@json_option
@pass_state
@handle_errors
def users_list(state: CliState, user: str | None, as_json: bool) -> None:
    """List users with their roles, groups and jurisdiction, as an administrator."""
    with state.tx() as s:
        rows = user_commands.list_users(s, _acting(state, s, user, policy.ADMINS))
        doc = [{"username": u.username, "roles": u.roles, "groups": groups, "jurisdiction": list(u.jurisdiction or []),
                "active": u.active} for u, groups in rows]
    emit(doc, as_json, lambda d: table([{**r, "roles": ",".join(r["roles"]), "groups": ",".join(r["groups"]),
                                         "jurisdiction": ",".join(r["jurisdiction"]) or "all"} for r in d],
                                       ["username", "roles", "groups", "jurisdiction", "active"]))


# ---------------------------------------------------------------------------------------------- demo
@click.command()
@json_option
@pass_state
@handle_errors
def demo(state: CliState, as_json: bool) -> None:
    """Load the demo data set into the configured database, then start the demo campaigns (one with
    inspections waiting for officers, one waiting for approval). Once; a second run keeps what is there."""
    with state.tx() as s:
        doc = load_demo(state.runtime, s, state.settings)
    doc["demo_campaigns"] = start_demo_campaigns(state.runtime, state.factory, state.settings)
    emit(doc, as_json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))


@click.command()
@json_option
@pass_state
@handle_errors
def services(state: CliState, as_json: bool) -> None:
    """List the service operators BPMN service tasks can call."""
    doc = state.runtime.services.describe()
    emit(doc, as_json, lambda d: "\n".join(
        f"{o['id']}({', '.join(p['id'] + ':' + p['type'] for p in o['parameters'])})  {o['description']}"
        for o in d))


COMMANDS = (init, deploy, worker, incidents, audit, users, demo, services)
