"""Sign-in, sign-out, the language switch, and the access-control helpers every area uses.

``current_user()`` is the signed-in user (session cookie) or the owner of a bearer token (``/api``);
``roles_required("officer", …)`` guards a view: 401 (sign-in page) when anonymous, 403 otherwise.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from engine.policy import Actor
from engine.runtime.models import AppUser
from engine.runtime.users import authenticate, groups_of, user_for_token
from web.extensions import read_session, write
from web.i18n import LOCALES
from web.i18n import gettext as _

bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="../templates")

ROLE_LABELS = {
    "designer": "Process designer", "officer": "Officer", "team_leader": "Team leader",
    "supervisor": "Supervisor", "auditor": "Auditor", "admin": "Administrator",
}


@dataclass(frozen=True)
class WebUser:
    id: int
    username: str
    display_name: str
    roles: frozenset[str]
    groups: frozenset[str]
    #: district codes; empty = every district
    jurisdiction: tuple[str, ...] = field(default=())
    via_token: bool = False

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def sees_district(self, district: str | None) -> bool:
        return not self.jurisdiction or (district in self.jurisdiction)

    @property
    def actor(self) -> Actor:
        """The user as the authorization policy sees them (:mod:`engine.policy`)."""
        return Actor(self.username, self.roles, self.groups, self.jurisdiction, "api" if self.via_token else "web")


def _load(user, via_token: bool) -> WebUser:
    return WebUser(user.id, user.username, user.display_name or user.username, frozenset(user.roles or ()),
                   frozenset(groups_of(read_session(), user.username)), tuple(user.jurisdiction or ()), via_token)


def current_user() -> WebUser | None:
    if "current_user" in g:
        return g.current_user
    user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        row = user_for_token(read_session(), header[7:].strip())
        user = _load(row, True) if row is not None else None
    elif session.get("uid"):
        row = read_session().get(AppUser, session["uid"])
        if row is not None and row.active and session.get("pwd") == (row.password_hash or "")[-16:]:
            user = _load(row, False)
        else:
            session.clear()
    g.current_user = user
    return user


def current_actor() -> Actor:
    """The signed-in user as an :class:`engine.policy.Actor` (401 when anonymous)."""
    user = current_user()
    if user is None:
        abort(401)
    return user.actor


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            abort(401)
        return view(*args, **kwargs)
    return wrapped


def roles_required(*roles: str):
    """Allow users holding any of ``roles``; anonymous → 401, others → 403."""
    def deco(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                abort(401)
            if not user.has(*roles):
                abort(403)
            return view(*args, **kwargs)
        wrapped.allowed_roles = frozenset(roles)
        return wrapped
    return deco


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target.rstrip("?") or url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        with write() as s:
            user = authenticate(s, username, password, source="web")
            uid, pwd = (user.id, (user.password_hash or "")[-16:]) if user else (None, None)
        if uid is not None:
            lang = session.get("lang")
            session.clear()  # a fresh session (and CSRF token) on every sign-in
            session["uid"], session["pwd"] = uid, pwd
            if lang:
                session["lang"] = lang
            session.permanent = False
            return redirect(_safe_next(request.args.get("next")))
        error = _("Wrong user name or password.")
    return render_template("auth/login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str):
    if code not in LOCALES:
        abort(404)
    session["lang"] = code
    return redirect(_safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path))


def init_app(app) -> None:
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["ROLE_LABELS"] = ROLE_LABELS
