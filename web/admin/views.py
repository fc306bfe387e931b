"""Routes of the administration area (admin role only): users, their roles, groups, jurisdiction and
API tokens; groups with their members; the system audit chain with its verification.

Every change is one ``write()`` block calling :mod:`engine.runtime.users`, which audits it on the system
chain. Refusals that would lock the administrators out (removing one's own admin role, deactivating
oneself) are checked here, before the service is called.
"""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput
from engine.runtime import audit, users
from engine.runtime.models import ApiToken, AppUser
from web.auth import ROLE_LABELS, current_user, roles_required
from web.extensions import read_session, write
from web.i18n import gettext as _

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
MIN_PASSWORD = 8


def _page_arg() -> int:
    raw = (request.args.get("page") or "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(_("The filter “{name}” must be a whole number of at least 1, not “{value}”.", name="page",
                             value=raw))
    return int(raw)


def _roles_from_form() -> list[str]:
    roles = sorted({r.strip() for r in request.form.getlist("roles") if r.strip()})
    unknown = [r for r in roles if r not in users.ROLES]
    if unknown:
        raise InvalidInput(_("Unknown role(s): {roles}. The roles are: {all}.", roles=", ".join(unknown),
                             all=", ".join(users.ROLES)))
    return roles


def _groups_from_form() -> list[str]:
    text = request.form.get("groups", "")
    groups = sorted({g.strip() for g in text.replace("，", ",").split(",") if g.strip()})
    too_long = [g for g in groups if len(g) > 120]
    if too_long:
        raise InvalidInput(_("Group names have at most 120 characters: {names}.", names=", ".join(too_long)))
    return groups


def _districts_from_form() -> list[str]:
    text = request.form.get("jurisdiction", "")
    return sorted({d.strip() for d in text.replace("，", ",").replace(" ", ",").split(",") if d.strip()})


def _render_index(status: int = 200, error: str | None = None, form: dict | None = None):
    s = read_session()
    return render_template("admin/index.html", rows=users.list_users(s), roles=users.ROLES, role_labels=ROLE_LABELS,
                           error=error, form=form or {}), status


# -------------------------------------------------------------------------------------------- users
@bp.route("/")
@roles_required("admin")
def index():
    return _render_index()


@bp.route("/users", methods=["POST"])
@roles_required("admin")
def create_user():
    me = current_user()
    form = {"username": (request.form.get("username") or "").strip(),
            "display_name": (request.form.get("display_name") or "").strip(),
            "roles": request.form.getlist("roles"), "groups": request.form.get("groups", ""),
            "jurisdiction": request.form.get("jurisdiction", "")}
    password = request.form.get("password") or ""
    if not form["username"]:
        return _render_index(400, _("Enter a user name."), form)
    if len(form["username"]) > 120 or any(c.isspace() for c in form["username"]):
        return _render_index(400, _("The user name must be at most 120 characters without spaces."), form)
    if len(password) < MIN_PASSWORD:
        return _render_index(400, _("The password must have at least {n} characters.", n=MIN_PASSWORD), form)
    if password != (request.form.get("password2") or ""):
        return _render_index(400, _("The two passwords differ."), form)
    try:
        roles, groups, districts = _roles_from_form(), _groups_from_form(), _districts_from_form()
        with write() as s:
            users.add_user(s, form["username"], password, roles, groups, actor=me.username,
                           display_name=form["display_name"] or None)
            if districts:
                users.set_jurisdiction(s, form["username"], districts, actor=me.username)
    except Conflict:
        return _render_index(409, _("A user named “{name}” already exists.", name=form["username"]), form)
    except InvalidInput as exc:
        return _render_index(400, _("The user was not created: {reason}", reason=str(exc)), form)
    flash(_("User {name} was created.", name=form["username"]), "success")
    return redirect(url_for("admin.user", username=form["username"]))


def _render_user(username: str, status: int = 200, error: str | None = None, new_token: str | None = None):
    s = read_session()
    user = users.get_user(s, username)
    return render_template("admin/user.html", u=user, groups=sorted(users.groups_of(s, username)),
                           tokens=users.tokens_of(s, username), roles=users.ROLES, role_labels=ROLE_LABELS,
                           error=error, new_token=new_token, me=current_user().username), status


@bp.route("/users/<username>")
@roles_required("admin")
def user(username: str):
    return _render_user(username)


@bp.route("/users/<username>/roles", methods=["POST"])
@roles_required("admin")
def set_roles(username: str):
    me = current_user()
    try:
        roles, groups = _roles_from_form(), _groups_from_form()
    except InvalidInput as exc:
        return _render_user(username, 400, str(exc))
    if username == me.username and "admin" not in roles:
        return _render_user(username, 400, _("You cannot remove your own administrator role; ask another "
                                             "administrator."))
    with write() as s:
        users.set_roles_and_groups(s, username, roles, groups, actor=me.username)
    flash(_("Roles and groups of {name} were saved.", name=username), "success")
    return redirect(url_for("admin.user", username=username))


@bp.route("/users/<username>/jurisdiction", methods=["POST"])
@roles_required("admin")
def set_jurisdiction(username: str):
    me = current_user()
    try:
        with write() as s:
            users.set_jurisdiction(s, username, _districts_from_form(), actor=me.username)
    except InvalidInput as exc:
        return _render_user(username, 400, _("The jurisdiction was not saved: {reason}", reason=str(exc)))
    flash(_("The jurisdiction of {name} was saved.", name=username), "success")
    return redirect(url_for("admin.user", username=username))


@bp.route("/users/<username>/active", methods=["POST"])
@roles_required("admin")
def set_active(username: str):
    me = current_user()
    value = request.form.get("active", "")
    if value not in ("0", "1"):
        return _render_user(username, 400, _("Say whether the account is active (1) or not (0)."))
    if username == me.username and value == "0":
        return _render_user(username, 400, _("You cannot deactivate your own account."))
    with write() as s:
        users.set_active(s, username, value == "1", actor=me.username)
    flash(_("{name} was activated.", name=username) if value == "1" else _("{name} was deactivated.", name=username),
          "success")
    return redirect(url_for("admin.user", username=username))


@bp.route("/users/<username>/tokens", methods=["POST"])
@roles_required("admin")
def issue_token(username: str):
    """Issue a bearer token; the page that answers is the only place it is ever shown."""
    me = current_user()
    name = (request.form.get("name") or "").strip()
    if not name:
        return _render_user(username, 400, _("Give the token a name (what machine or script uses it)."))
    if len(name) > 120:
        return _render_user(username, 400, _("The token name has at most 120 characters."))
    with write() as s:
        token = users.issue_token(s, username, name, actor=me.username)
    return _render_user(username, 201, new_token=token)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required("admin")
def revoke_token(token_id: int):
    me = current_user()
    owner = read_session().scalar(select(AppUser.username).join(ApiToken, ApiToken.user_id == AppUser.id)
                                  .where(ApiToken.id == token_id))
    with write() as w:
        users.revoke_token(w, token_id, actor=me.username)
    flash(_("Token {id} was revoked.", id=token_id), "success")
    return redirect(url_for("admin.user", username=owner) if owner else url_for("admin.index"))


# ------------------------------------------------------------------------------------------- groups
@bp.route("/groups")
@roles_required("admin")
def groups():
    return render_template("admin/groups.html", rows=users.list_groups(read_session()))


# ---------------------------------------------------------------------------------------- audit chain
@bp.route("/audit")
@roles_required("admin")
def system_audit():
    s = read_session()
    page_no = _page_arg()
    kind = (request.args.get("kind") or "").strip() or None
    actor = (request.args.get("actor") or "").strip() or None
    rows, has_next = users.system_events(s, kind=kind, actor=actor, limit=PAGE_SIZE,
                                         offset=(page_no - 1) * PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("admin/audit.html", rows=rows, has_next=has_next, page_no=page_no, args=args,
                           kinds=users.system_event_kinds(s), kind=kind or "", actor=actor or "", verdict=None)


@bp.route("/audit/verify", methods=["POST"])
@roles_required("admin")
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
