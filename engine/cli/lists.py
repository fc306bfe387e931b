"""``regflow lists``: the abnormal-operations and serious-violation lists from the command line.

``show`` pages through the entries (every field, with the counts per list); ``enter`` and ``remove`` list or
remove an entity by hand as ``--user`` (a supervisor of the entity's district); ``apply`` records a removal
application brought to the office and ``applications`` / ``review`` work through them; ``escalate`` and
``annual-report-defaults`` run the two periodic jobs now (the worker runs them daily / from 1 July), ``expire`` the
end of the serious list's 3-year term (daily);
``annual-report`` records a filed report. Each is a command of :mod:`engine.commands.lists`.
"""
from __future__ import annotations

from datetime import date, datetime

import click

from engine.commands import lists as list_commands
from engine.supervision.calendar import SHANGHAI
from engine.supervision.list_models import APPLICATION_STATUSES, ENTRY_STATUSES, LIST_KINDS, REMOVAL_KINDS

from .support import CliState, emit, handle_errors, json_option, parse_json_arg, pass_state

_USER = click.option("--user", required=True, help="Who acts (checked by the policy; audited).")


def _day(iso: str) -> str:
    """The China date of an ISO timestamp (the lists' dates are China dates)."""
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).date().isoformat()


def _entries(d: dict) -> str:
    c = d["counts"]
    lines = [" · ".join(f"{k}: {v['open']} open, {v['removed']} removed" for k, v in c.items())]
    lines += [f"  #{e['id']:<6} {e['list']:<8} {e['status']:<7} {e['uscc']}  {_day(e['entered_at'])}  "
              f"{e['reason_code']}: {e['reason']}"
              + (f"  (removed {_day(e['removed_at'])}: {e['removal_kind']})" if e["removed_at"]
                 else f"  (until {e['expires_on']})" if e.get("expires_on") else "")
              for e in d["entries"]]
    return "\n".join(lines)


def _entry(e: dict) -> str:
    state = f"removed {_day(e['removed_at'])} ({e['removal_kind']})" if e["removed_at"] else "listed"
    return (f"entry #{e['id']} {e['list']} {e['uscc']} {state}: {e['reason']} [{e['legal_basis']}]"
            + (f"; escalates on {e['escalates_on']}" if e.get("escalates_on") and not e["removed_at"] else "")
            + (f"; listed until {e['expires_on']}, early removal on application from {e['early_removal_from']}"
               if e.get("expires_on") and not e["removed_at"] else ""))


def _app(a: dict) -> str:
    return f"application #{a['application_id']} for entry #{a['entry_id']} ({a['uscc']}): {a['status']}"


@click.group(name="lists")
def lists() -> None:
    """The abnormal-operations list (经营异常名录) and the serious-violation list (严重违法失信名单)."""


@lists.command()
@click.option("--list", "list_kind", type=click.Choice(LIST_KINDS))
@click.option("--uscc", help="One entity's entries.")
@click.option("--status", type=click.Choice(ENTRY_STATUSES))
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@_USER
@json_option
@pass_state
@handle_errors
def show(state: CliState, list_kind, uscc, status, limit: int, offset: int, user: str, as_json: bool) -> None:
    """Entries, newest first, and the counts per list."""
    with state.tx() as s:
        doc = list_commands.show(s, state.actor(s, user), list_kind=list_kind, uscc=uscc, status=status, limit=limit,
                                 offset=offset)
    emit(doc, as_json, _entries)


@lists.command()
@click.argument("list_kind", metavar="LIST", type=click.Choice(LIST_KINDS))
@click.argument("uscc")
@click.option("--reason", required=True, help="Why (public; personal data is masked there).")
@click.option("--legal-basis", required=True, help="The provision the listing rests on.")
@click.option("--reason-code", help="e.g. false_information (default: the reason's text decides).")
@_USER
@json_option
@pass_state
@handle_errors
def enter(state: CliState, list_kind: str, uscc: str, reason: str, legal_basis: str, reason_code, user: str,
          as_json: bool) -> None:
    """Put an entity on a list (an entity listed for the same reason keeps its entry)."""
    with state.tx() as s:
        doc = list_commands.enter(s, state.actor(s, user), list_kind=list_kind, uscc=uscc, reason=reason,
                                  legal_basis=legal_basis, reason_code=reason_code)
    emit(doc, as_json, lambda d: ("listed: " if d["created"] else "already listed: ") + _entry(d))


@lists.command()
@click.argument("entry_id", type=int)
@click.option("--reason", required=True, help="Why it ends (public).")
@click.option("--kind", "removal_kind", type=click.Choice([k for k in REMOVAL_KINDS if k != "escalated"]),
              default="correction", show_default=True)
@_USER
@json_option
@pass_state
@handle_errors
def remove(state: CliState, entry_id: int, reason: str, removal_kind: str, user: str, as_json: bool) -> None:
    """End a list entry (the row stays, marked removed)."""
    with state.tx() as s:
        doc = list_commands.remove(s, state.actor(s, user), entry_id, reason=reason, removal_kind=removal_kind)
    emit(doc, as_json, _entry)


@lists.command()
@click.argument("entry_id", type=int)
@click.option("--statement", required=True, help="The entity's statement.")
@click.option("--evidence", help='Evidence references as a JSON list, e.g. \'["EV-12", "郑市监责改〔2026〕3号"]\'.')
@_USER
@json_option
@pass_state
@handle_errors
def apply(state: CliState, entry_id: int, statement: str, evidence, user: str, as_json: bool) -> None:
    """Record an entity's application for removal (brought to the office)."""
    with state.tx() as s:
        doc = list_commands.apply_for_removal(s, state.actor(s, user), entry_id, statement=statement,
                                              evidence=parse_json_arg(evidence, "--evidence"))
    emit(doc, as_json, _app)


@lists.command()
@click.option("--status", type=click.Choice([*APPLICATION_STATUSES, "all"]), default="pending", show_default=True)
@click.option("--uscc")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@_USER
@json_option
@pass_state
@handle_errors
def applications(state: CliState, status: str, uscc, limit: int, offset: int, user: str, as_json: bool) -> None:
    """Removal applications, newest first."""
    with state.tx() as s:
        doc = list_commands.applications(s, state.actor(s, user), status=None if status == "all" else status,
                                         uscc=uscc, limit=limit, offset=offset)
    emit(doc, as_json, lambda d: "\n".join([f"{len(d['applications'])} application(s)"]
                                           + ["  " + _app(a) for a in d["applications"]]))


@lists.command()
@click.argument("application_id", type=int)
@click.option("--approve/--reject", required=True, help="Approve (the entry is removed) or reject.")
@click.option("--note", help="The reviewer's note (required to reject: the applicant's notice).")
@_USER
@json_option
@pass_state
@handle_errors
def review(state: CliState, application_id: int, approve: bool, note, user: str, as_json: bool) -> None:
    """Review a pending removal application."""
    with state.tx() as s:
        doc = list_commands.review(s, state.actor(s, user), application_id, approve=approve, note=note)
    emit(doc, as_json, _app)


@lists.command()
@_USER
@json_option
@pass_state
@handle_errors
def escalate(state: CliState, user: str, as_json: bool) -> None:
    """Move abnormal entries open for 3 years to the serious list now (the worker does it daily)."""
    with state.tx() as s:
        doc = list_commands.escalate(s, state.actor(s, user))
    emit(doc, as_json, lambda d: f"{d['escalated']} entr(y/ies) escalated to the serious list ({d['date']})")


@lists.command()
@_USER
@json_option
@pass_state
@handle_errors
def expire(state: CliState, user: str, as_json: bool) -> None:
    """Remove serious entries whose 3-year term is over now (the worker does it daily)."""
    with state.tx() as s:
        doc = list_commands.expire(s, state.actor(s, user))
    emit(doc, as_json, lambda d: f"{d['expired']} serious entr(y/ies) removed at the end of their term ({d['date']})")


@lists.command(name="annual-report-defaults")
@click.option("--year", type=int, help="The report year (default: last year, from 1 July).")
@_USER
@json_option
@pass_state
@handle_errors
def annual_report_defaults(state: CliState, year, user: str, as_json: bool) -> None:
    """List as abnormal the entities with no annual report for the year (the worker runs it from 1 July)."""
    with state.tx() as s:
        doc = list_commands.annual_report_defaults(s, state.actor(s, user), year=year)
    emit(doc, as_json, lambda d: d.get("skipped") or f"{d['year']}: {d['listed']} listed, "
                                                     f"{d['already_listed']} already listed")


@lists.command(name="annual-report")
@click.argument("uscc")
@click.argument("year", type=int)
@click.option("--filed-on", type=click.DateTime(["%Y-%m-%d"]), help="The filing date (default: today in China).")
@_USER
@json_option
@pass_state
@handle_errors
def annual_report(state: CliState, uscc: str, year: int, filed_on, user: str, as_json: bool) -> None:
    """Record an entity's filed annual report (removes its annual_report_missing entry)."""
    with state.tx() as s:
        doc = list_commands.record_annual_report(s, state.actor(s, user), uscc=uscc, year=year,
                                                 filed_on=date(filed_on.year, filed_on.month, filed_on.day)
                                                 if filed_on else None)
    emit(doc, as_json, lambda d: f"{d['year']} report recorded; entries removed: {d['removed'] or 'none'}")
