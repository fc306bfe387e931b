"""``regflow publications``: what a person does to a public record ("one public") from the command line.

``revoke`` records that a published penalty was revoked (撤销) on a date: its withdrawal is due 3 working days
later, and the daily job ``publication.deadlines`` escalates it to the supervisors once overdue; ``withdraw``
takes a record off the public pages. Both as ``--user`` (a supervisor of the entity's district), each a command
of :mod:`engine.commands.publications`.
"""
from __future__ import annotations

from datetime import date, datetime

import click

from engine.commands import publications as publication_commands
from engine.supervision.calendar import SHANGHAI

from .support import CliState, emit, handle_errors, json_option, pass_state


def _day(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).date().isoformat()


_USER = click.option("--user", required=True, help="Who acts (checked by the policy; audited).")


@click.group(name="publications")
def publications() -> None:
    """Public records (plans, results, penalties): revocation and withdrawal."""


@publications.command()
@click.argument("publication_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--revoked-at", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="The China date the penalty was revoked (the 3 working days run from it).")
@click.option("--reason", help="Why, e.g. 行政复议决定撤销 (audited).")
@_USER
@json_option
@pass_state
@handle_errors
def revoke(state: CliState, publication_id: int, revoked_at, reason, user: str, as_json: bool) -> None:
    """Record that a published penalty was revoked: its withdrawal is due within 3 working days."""
    with state.tx() as s:
        doc = publication_commands.revoke(s, state.actor(s, user), publication_id,
                                          revoked_at=date(revoked_at.year, revoked_at.month, revoked_at.day),
                                          reason=reason)
    emit(doc, as_json, lambda d: f"publication #{d['id']} ({d['kind']}, {d['uscc'] or '—'}) revoked on "
                                 f"{d['revoked_on']}: withdraw by the end of {_day(d['withdraw_due'])}"
                                 + ("" if d["changed"] else " (already recorded)"))


@publications.command()
@click.argument("publication_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--note", required=True, help="Why it is withdrawn (public, masked).")
@_USER
@json_option
@pass_state
@handle_errors
def withdraw(state: CliState, publication_id: int, note: str, user: str, as_json: bool) -> None:
    """Take a published record off the public pages now."""
    with state.tx() as s:
        doc = publication_commands.withdraw(s, state.actor(s, user), publication_id, note=note)
    emit(doc, as_json, lambda d: f"publication #{d['id']} withdrawn on {_day(d['withdrawn_at'])}"
                                 + (f" (due by the end of {_day(d['withdraw_due'])}: late)" if d["late"] else ""))
