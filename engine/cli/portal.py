"""``regflow portal``: the entity portal from the command line.

``code`` issues a business its access code (for the document numbered ``--document``, or none), printed once:
only its keyed hash is stored; ``codes`` lists a business's codes (never the codes themselves) and ``revoke``
revokes one, ending the sessions opened with it. ``submissions`` lists what businesses sent, newest first
(``--status routed``: those kept for an officer). With ``--user`` the policy applies (an officer, the entity in their
jurisdiction); without it the installation's operator acts, as ``regflow message`` does — recorded on the audit
chain with the operating-system user.
"""
from __future__ import annotations

import click

from engine.commands import portal as portal_commands
from engine.config import app_secret

from .support import CliState, emit, handle_errors, json_option, pass_state, table


@click.group(name="portal")
def portal() -> None:
    """The entity portal: access codes and the businesses' submissions."""


@portal.command(name="code")
@click.option("--uscc", required=True, help="The business's unified social credit code.")
@click.option("--document", "document_number", help="Number of the served document the code is printed on.")
@click.option("--days", type=click.IntRange(1, 366), help="Days the code is valid (default REGFLOW_PORTAL_CODE_DAYS).")
@click.option("--user", help="Who issues it (an officer of the entity's jurisdiction); default: the operator.")
@json_option
@pass_state
@handle_errors
def code(state: CliState, uscc: str, document_number: str | None, days: int | None, user: str | None,
         as_json: bool) -> None:
    """Issue an access code for USCC (revoking the document's earlier code) and print it once."""
    with state.tx() as s:
        actor = state.actor(s, user) if user else None
        doc = portal_commands.issue_code(s, actor, uscc=uscc, document_number=document_number,
                                         days=days or state.settings.portal_code_days,
                                         key=app_secret(state.settings))
    emit(doc, as_json, lambda d: f"{d['code']}\n  uscc {d['uscc']}  document {d['document'] or '—'}  "
                                 f"valid until {d['expires_at']}")


@portal.command(name="codes")
@click.option("--uscc", required=True)
@click.option("--user", help="List as this officer (the entity in their jurisdiction); default: the operator.")
@json_option
@pass_state
@handle_errors
def codes(state: CliState, uscc: str, user: str | None, as_json: bool) -> None:
    """The access codes issued to USCC (their ids, documents, expiry, use and revocation; never the codes)."""
    with state.tx() as s:
        doc = portal_commands.codes(s, state.actor(s, user) if user else None, uscc)
    emit(doc, as_json, lambda rows: table(rows, ["code_id", "document", "issued_at", "expires_at", "used_at",
                                                 "revoked_at"]))


@portal.command(name="revoke")
@click.argument("code_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reason", required=True)
@click.option("--user", help="Who revokes it (an officer of the entity's jurisdiction); default: the operator.")
@json_option
@pass_state
@handle_errors
def revoke(state: CliState, code_id: int, reason: str, user: str | None, as_json: bool) -> None:
    """Revoke access code CODE_ID: it signs nobody in any more and its sessions end (audited)."""
    with state.tx() as s:
        row = portal_commands.revoke_code(s, state.actor(s, user) if user else None, code_id, reason)
        doc = {"code_id": row.id, "uscc": row.uscc, "revoked_at": row.revoked_at, "reason": row.revoked_reason}
    emit(doc, as_json, lambda d: f"access code {d['code_id']} of {d['uscc']} revoked")


@portal.command(name="submissions")
@click.option("--status", type=click.Choice(["delivered", "routed", "handled"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--user", help="List as this officer (their jurisdiction only); default: the operator, everything.")
@json_option
@pass_state
@handle_errors
def submissions(state: CliState, status: str | None, limit: int, user: str | None, as_json: bool) -> None:
    """What businesses submitted through the portal, newest first."""
    with state.tx() as s:
        actor = state.actor(s, user) if user else None
        doc = [portal_commands.submission_doc(r)
               for r in portal_commands.submissions(s, actor, status=status, limit=limit)]

    def human(rows):
        return table([{**r, "to": r["routed_user"] or r["routed_group"] or ""} for r in rows],
                     ["receipt", "uscc", "kind", "status", "instance_id", "to", "submitted_at"])

    emit(doc, as_json, human)
