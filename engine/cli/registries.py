"""``regflow import …``, ``regflow inspectors …``, ``regflow items …`` and ``regflow team …``.

Exit codes follow :mod:`engine.cli`: 2 invalid file (every problem with row and column on stderr; nothing was
imported), 3 not found, 4 conflict (e.g. a team that cannot be staffed).
"""
from __future__ import annotations

import sys
from datetime import date, datetime

import click
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput
from engine.runtime import clock
from engine.supervision import importer, registries, teams
from engine.supervision.registry_models import CheckItem

from .support import emit, handle_errors, json_option, table, tx


def _now() -> datetime:
    return clock.now()


_encoding = click.option("--encoding", default="utf-8-sig", show_default=True,
                         help="Text encoding of the file (gb18030 for files saved by Chinese Excel).")


def _report_text(d: dict) -> str:
    lines = [f"{d['kind']}: {d['rows']} row(s) from {d['source']}: {d['created']} created, {d['updated']} updated, "
             f"{d['unchanged']} unchanged"]
    lines += [f"  warning: row {w['row']}, column {w['column']}: {w['reason']}" for w in d["warnings"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- import
@click.group(name="import")
def import_group() -> None:
    """Import registries from CSV (all or nothing; rows with a known code are updated)."""


def _import_command(name: str, fn, help_text: str, *, needs_now: bool = False, needs_today: bool = False):
    @import_group.command(name=name, help=help_text)
    @click.argument("file", type=click.Path(dir_okay=False))
    @_encoding
    @json_option
    @handle_errors
    def command(file: str, encoding: str, as_json: bool) -> None:
        kw = {}
        now = _now()
        if needs_now:
            kw["now"] = now
        if needs_today:
            kw["today"] = registries.local_date(now)
        with tx() as s:
            report = fn(s, file, encoding=encoding, **kw)
        emit(report.to_dict(), as_json, _report_text)

    return command


_import_command("departments", importer.import_departments, "Departments: code,name.")
_import_command("skills", importer.import_skills, "Skills: code,name.")
_import_command("inspectors", importer.import_inspectors,
                "Inspector pool (departments and skills first); expired certificates are warnings.",
                needs_now=True, needs_today=True)
_import_command("leaves", importer.import_leaves, "Leave periods: inspector,start_date,end_date[,reason].")
_import_command("conflicts", importer.import_conflicts, "Declared conflicts: inspector,uscc,reason.", needs_now=True)
_import_command("items", importer.import_items, "Check items, one row per checklist clause.", needs_now=True)
_import_command("entities", importer.import_entities, "Entity directory (into scoring's entity table).")


# ------------------------------------------------------------------------------------------------- inspectors
@click.group(name="inspectors")
def inspectors_group() -> None:
    """The inspector pool: list, leave, declared conflicts."""


@inspectors_group.command(name="list")
@click.option("--department")
@click.option("--skill")
@click.option("--district", help="Only inspectors whose jurisdiction covers this district.")
@click.option("--all", "include_inactive", is_flag=True, help="Include inactive inspectors.")
@click.option("--on", "on_date", help="Certificate status as of this day (default today).")
@json_option
@handle_errors
def inspectors_list(department, skill, district, include_inactive, on_date, as_json: bool) -> None:
    """Inspectors with certificate status (valid / expiring / expired / none) and open assignments."""
    on = date.fromisoformat(on_date) if on_date else registries.local_date(_now())
    with tx() as s:
        doc = registries.list_inspectors(s, on=on, department=department, skill=skill, region=district,
                                         include_inactive=include_inactive)
    emit(doc, as_json, lambda d: table([{**r, "skills": ";".join(r["skills"]),
                                           "role": "expert" if r["is_expert"] else
                                           ("leader" if r["leader_eligible"] else "officer")} for r in d],
                                         ["code", "name", "department", "region", "role", "skills",
                                          "cert_expires", "cert_status", "open_assignments"]))


@inspectors_group.command(name="leave")
@click.argument("code")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "end", required=True, help="Last day, included.")
@click.option("--reason", default="")
@json_option
@handle_errors
def inspectors_leave(code, start, end, reason, as_json: bool) -> None:
    """Record a leave period (existing teams are not changed: replace members with `team replace`)."""
    try:
        a, b = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise InvalidInput(f"--from/--to: {exc}") from None
    with tx() as s:
        leave = registries.add_leave(s, code, a, b, reason)
        doc = {"inspector": code, "start_date": leave.start_date, "end_date": leave.end_date, "reason": leave.reason}
    emit(doc, as_json, lambda d: f"{code} on leave {d['start_date']} .. {d['end_date']}")


@inspectors_group.command(name="conflict")
@click.argument("code")
@click.argument("uscc")
@click.option("--reason", required=True)
@json_option
@handle_errors
def inspectors_conflict(code, uscc, reason, as_json: bool) -> None:
    """Declare a conflict of interest with an entity (the inspector is never drawn for it)."""
    with tx() as s:
        row = registries.declare_conflict(s, code, uscc, reason, now=_now())
        doc = {"inspector": code, "uscc": row.entity_uscc, "reason": row.reason}
    emit(doc, as_json, lambda d: f"{code} recused from {uscc}: {reason}")


# ------------------------------------------------------------------------------------------------- items
@click.group(name="items")
def items_group() -> None:
    """The spot-check item list."""


@items_group.command(name="list")
@click.option("--industry", help="Only items targeting this GB/T 4754 section.")
@json_option
@handle_errors
def items_list(industry, as_json: bool) -> None:
    with tx() as s:
        rows = registries.items_for_industry(s, industry) if industry else \
            list(s.scalars(select(CheckItem).order_by(CheckItem.code)))
        doc = [registries.check_item_doc(i) for i in rows]
    emit(doc, as_json, lambda d: table([{**r, "industries": ";".join(r["industries"]) or "*",
                                           "clauses": len(r["clauses"])} for r in d],
                                         ["code", "name", "department", "industries", "required_skill", "ratio",
                                          "method", "clauses"]))


# ------------------------------------------------------------------------------------------------- teams
@click.group(name="team")
def team_group() -> None:
    """Inspection teams: show, verify a draw, replace a member."""


def _team_text(d: dict) -> str:
    lines = [f"team {d['team_id']} (entity {d['entity_id']}, instance {d['instance_id']})"]
    lines += [f"  {m['role']:7} {m['code']}  {m['name']}  {';'.join(m['skills'])}" for m in d["members"]]
    lines.append("history:")
    lines += [f"  {a['assignment_id']:>5} {a['code']:6} {a['role']:7} assigned {a['assigned_at'][:16]}"
              + (f"  released {a['released_at'][:16]}: {a['release_reason']}" if a["released_at"] else "")
              for a in d["assignments"]]
    return "\n".join(lines)


@team_group.command(name="show")
@click.argument("team_id", type=int)
@json_option
@handle_errors
def team_show(team_id: int, as_json: bool) -> None:
    """Current members and the full assignment history (releases with reasons)."""
    with tx() as s:
        doc = teams.team_doc(s, team_id)
    emit(doc, as_json, _team_text)


@team_group.command(name="verify")
@click.argument("draw_id", type=int)
@json_option
@handle_errors
def team_verify(draw_id: int, as_json: bool) -> None:
    """Replay a team draw from its record; exit 4 if it does not match."""
    with tx() as s:
        doc = teams.verify_draw(s, draw_id)
    emit(doc, as_json, lambda d: f"draw {d['draw_id']} ({d['kind']}): " + (
        "verified" if d["ok"] else "MISMATCH\n  " + "\n  ".join(d["problems"])))
    if not doc["ok"]:
        click.echo(f"error: draw {draw_id} does not verify", err=True)
        sys.exit(Conflict.exit_code)


@team_group.command(name="replace")
@click.argument("team_id", type=int)
@click.argument("inspector")
@click.option("--reason", required=True, help="leave, recusal, certificate lapse …")
@json_option
@handle_errors
def team_replace(team_id: int, inspector: str, reason: str, as_json: bool) -> None:
    """Release INSPECTOR from TEAM_ID and redraw the place (exit 4 if fewer than 2 officers would remain)."""
    with tx() as s:
        doc = teams.replace_inspector(s, team_id, inspector, reason, now=_now()).to_dict()
    emit(doc, as_json, lambda d: f"team {d['team_id']}: {inspector} released ({reason}); now "
          + ", ".join(f"{m['code']} ({m['role']})" for m in d["members"]))


COMMANDS = (import_group, inspectors_group, items_group, team_group)
