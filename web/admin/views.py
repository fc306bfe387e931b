"""Routes of the administration area (admin role only): users, their roles, groups, jurisdiction and
API tokens; groups with their members; the system audit chain with its verification.

Every change is one ``write()`` block calling a command of :mod:`engine.commands.users` (which applies the
policy — administrators only, nobody removes their own admin role or deactivates themselves — and audits the
change on the system chain); a refusal re-renders the page with the error's status and message.
"""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for

from engine import policy
from engine.commands import users as user_commands
from engine.errors import EngineError, InvalidInput
from engine.runtime import audit, users
from web.auth import ROLE_LABELS, current_actor, current_user, roles_required
from web.extensions import read_session, write
from web.i18n import gettext as _
from web.params import page_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50


def _render_index(status: int = 200, error: str | None = None, form: dict | None = None):
    rows = user_commands.list_users(read_session(), current_actor())
    return render_template("admin/index.html", rows=rows, roles=users.ROLES, role_labels=ROLE_LABELS,
                           error=error, form=form or {}), status


# -------------------------------------------------------------------------------------------- users
@bp.route("/")
@roles_required(*policy.ADMINS)
def index():
    return _render_index()


@bp.route("/users", methods=["POST"])
@roles_required(*policy.ADMINS)
def create_user():
    form = {k: request.form.get(k, "") for k in ("username", "display_name", "groups", "jurisdiction")}
    form["roles"] = request.form.getlist("roles")
    password = request.form.get("password") or ""
    try:
        if password != (request.form.get("password2") or ""):
            raise InvalidInput(_("The two passwords differ."))
        with write() as s:
            user = user_commands.add(s, current_actor(), form["username"], password, roles=form["roles"],
                                     groups=form["groups"], jurisdiction=form["jurisdiction"],
                                     display_name=form["display_name"])
            username = user.username
    except EngineError as exc:
        return _render_index(exc.http_status, exc.localized(_), form)
    flash(_("User {name} was created.", name=username), "success")
    return redirect(url_for("admin.user", username=username))


def _render_user(username: str, status: int = 200, error: str | None = None, new_token: str | None = None):
    s = read_session()
    user = users.get_user(s, username)
    return render_template("admin/user.html", u=user, groups=sorted(users.groups_of(s, username)),
                           tokens=users.tokens_of(s, username), roles=users.ROLES, role_labels=ROLE_LABELS,
                           error=error, new_token=new_token, me=current_user().username), status


def _change(username: str, change, done: str):
    """Run ``change(session, actor)`` in one transaction: then flash ``done`` and show the user's page again; a
    refusal shows the page with the error's status and message."""
    try:
        with write() as s:
            change(s, current_actor())
    except EngineError as exc:
        return _render_user(username, exc.http_status, exc.localized(_))
    flash(done, "success")
    return redirect(url_for("admin.user", username=username))


@bp.route("/users/<username>")
@roles_required(*policy.ADMINS)
def user(username: str):
    return _render_user(username)


@bp.route("/users/<username>/roles", methods=["POST"])
@roles_required(*policy.ADMINS)
def set_roles(username: str):
    roles, groups = request.form.getlist("roles"), request.form.get("groups", "")
    return _change(username, lambda s, me: user_commands.set_roles_and_groups(s, me, username, roles, groups),
                   _("Roles and groups of {name} were saved.", name=username))


@bp.route("/users/<username>/jurisdiction", methods=["POST"])
@roles_required(*policy.ADMINS)
def set_jurisdiction(username: str):
    districts = request.form.get("jurisdiction", "")
    return _change(username, lambda s, me: user_commands.set_jurisdiction(s, me, username, districts),
                   _("The jurisdiction of {name} was saved.", name=username))


@bp.route("/users/<username>/active", methods=["POST"])
@roles_required(*policy.ADMINS)
def set_active(username: str):
    value = request.form.get("active", "")
    return _change(username, lambda s, me: user_commands.set_active(s, me, username, value),
                   _("{name} was activated.", name=username) if value == "1" else
                   _("{name} was deactivated.", name=username))


@bp.route("/users/<username>/password", methods=["POST"])
@roles_required(*policy.ADMINS)
def reset_password(username: str):
    """Set a new password for ``username`` (typed twice); the password policy applies, their sessions end."""
    password = request.form.get("password") or ""
    if password != (request.form.get("password2") or ""):
        return _render_user(username, 400, _("The two passwords differ."))
    return _change(username, lambda s, me: user_commands.reset_password(s, me, username, password),
                   _("The password of {name} was reset; their sessions have ended.", name=username))


@bp.route("/users/<username>/tokens", methods=["POST"])
@roles_required(*policy.ADMINS)
def issue_token(username: str):
    """Issue a bearer token; the page that answers is the only place it is ever shown."""
    try:
        with write() as s:
            token = user_commands.issue_token(s, current_actor(), username, request.form.get("name"))
    except EngineError as exc:
        return _render_user(username, exc.http_status, exc.localized(_))
    return _render_user(username, 201, new_token=token)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required(*policy.ADMINS)
def revoke_token(token_id: int):
    with write() as s:
        owner = user_commands.revoke_token(s, current_actor(), token_id)
    flash(_("Token {id} was revoked.", id=token_id), "success")
    return redirect(url_for("admin.user", username=owner))


# ------------------------------------------------------------------------------------------- groups
@bp.route("/groups")
@roles_required(*policy.ADMINS)
def groups():
    return render_template("admin/groups.html", rows=users.list_groups(read_session()))


# ---------------------------------------------------------------------------------------- audit chain
@bp.route("/audit")
@roles_required(*policy.ADMINS)
def system_audit():
    s = read_session()
    page_no = page_arg(PAGE_SIZE)
    kind = (request.args.get("kind") or "").strip() or None
    actor = (request.args.get("actor") or "").strip() or None
    rows, has_next = users.system_events(s, kind=kind, actor=actor, limit=PAGE_SIZE,
                                         offset=(page_no - 1) * PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("admin/audit.html", rows=rows, has_next=has_next, page_no=page_no, args=args,
                           kinds=users.system_event_kinds(s), kind=kind or "", actor=actor or "", verdict=None)


@bp.route("/audit/verify", methods=["POST"])
@roles_required(*policy.ADMINS)
def verify_audit():
    """Recompute the hashes of the system chain (``scope=system``) or of every chain (``scope=all``)."""
    scope = request.form.get("scope", "system")
    if scope not in ("system", "all"):
        raise InvalidInput(_("The scope of the check must be “system” or “all”, not “{value}”.", value=scope))
    s = read_session()
    report = audit.verify(s, chain=audit.SYSTEM_CHAIN if scope == "system" else None)
    rows, has_next = users.system_events(s, limit=PAGE_SIZE)
    return render_template("admin/audit.html", rows=rows, has_next=has_next, page_no=1, args={},
                           kinds=users.system_event_kinds(s), kind="", actor="", verdict=report, scope=scope)


@bp.app_template_filter("admin_json")
def admin_json(value) -> str:
    """Compact JSON for the detail column (Chinese kept readable; autoescaped by Jinja)."""
    text = json.dumps(value or {}, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 600 else text[:600] + " …"
