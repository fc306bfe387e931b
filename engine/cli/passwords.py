"""``regflow users reset-password NAME --user ADMIN``: an administrator sets a new password for an account (one who
forgot theirs; or their own, as the way back in for the operator of an installation whose only administrator
lost the password). The password is read from stdin and must pass the password policy
(:mod:`engine.runtime.passwords`); every session of the account ends; the system audit chain records
``password_reset`` by ``ADMIN`` (or ``password_changed`` when ``NAME`` is ``ADMIN``)."""
from __future__ import annotations

import sys

import click

from engine.commands import users as user_commands

from .support import CliState, emit, handle_errors, json_option, pass_state


@click.command("reset-password")
@click.argument("name")
@click.option("--user", "admin", required=True, help="The administrator who acts (audited).")
@json_option
@pass_state
@handle_errors
def reset_password(state: CliState, name: str, admin: str, as_json: bool) -> None:
    """Set a new password for NAME, read from stdin (at least REGFLOW_PASSWORD_MIN_LENGTH characters, not a common
    password, not the user name); NAME's sessions end."""
    password = sys.stdin.readline().rstrip("\n")
    with state.tx() as s:
        actor = state.actor(s, admin)
        user = user_commands.reset_password(s, actor, name, password)
        doc = {"username": user.username, "password_reset_by": actor.username, "sessions_ended": True}
    emit(doc, as_json, lambda d: f"new password for {d['username']}; their sessions have ended")
