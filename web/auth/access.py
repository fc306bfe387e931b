"""Who is asking: the signed-in user (session cookie) or the owner of a bearer token (``/api``), and the guards.

A web session holds the user's id, the user's ``session_version`` at sign-in (``sv``), the sign-in time (``iat``)
and the time of the last request (``seen``) — nothing of the password hash. It is valid while the account is
active, its version is still ``sv`` (sign-out, a password change, deactivation and a change of roles end every
session by bumping it) and it is younger than ``REGFLOW_SESSION_MAX_HOURS`` and was used within
``REGFLOW_SESSION_IDLE_HOURS``; Flask's signed cookie also expires after the idle time
(``PERMANENT_SESSION_LIFETIME``), since ``seen`` re-signs it at most every :data:`SEEN_EVERY_S` seconds.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from flask import abort, g, request, session

from engine.policy import Actor
from engine.runtime import clock
from engine.runtime.models import AppUser
from engine.runtime.users import groups_of, user_for_token
from web.extensions import read_session, settings

ROLE_LABELS = {
    "designer": "Process designer", "officer": "Officer", "team_leader": "Team leader",
    "supervisor": "Supervisor", "auditor": "Auditor", "admin": "Administrator",
}
#: how often (seconds) a used session's ``seen`` time is renewed, re-signing the cookie
SEEN_EVERY_S = 60
#: how long (seconds) a sign-in whose password was right waits for its second factor
PENDING_S = 300


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


def _now() -> int:
    return int(clock.now().timestamp())


def start_session(user_id: int, version: int) -> None:
    """A fresh session (and CSRF token) for a user who just signed in; the language choice is kept."""
    lang = session.get("lang")
    session.clear()
    now = _now()
    session.update(uid=user_id, sv=version, iat=now, seen=now)
    if lang:
        session["lang"] = lang
    session.permanent = False  # the cookie ends with the browser; the server ends it earlier (above)
    g.pop("current_user", None)


def start_pending(user_id: int, version: int, username: str, next_url: str) -> None:
    """The password was right but a second factor is needed: nobody is signed in yet; the user id, the session
    version at the password step and the time are kept for :data:`PENDING_S` seconds."""
    lang = session.get("lang")
    session.clear()
    session["pending"] = {"uid": user_id, "sv": version, "u": username, "next": next_url, "at": _now()}
    if lang:
        session["lang"] = lang
    g.pop("current_user", None)


def pending_sign_in() -> dict | None:
    """The sign-in waiting for its second factor in this browser (``uid``, ``sv``, ``u``, ``next``), if recent."""
    doc = session.get("pending")
    if not isinstance(doc, dict) or not isinstance(doc.get("at"), int) or not isinstance(doc.get("uid"), int):
        return None
    if _now() - doc["at"] > PENDING_S:
        session.pop("pending", None)
        return None
    return doc


def end_session() -> None:
    """Forget the signed-in user in this browser (the language choice is kept)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.current_user = None


def keep_session(version: int) -> None:
    """After a password change: this session goes on under the user's new session version."""
    session["sv"] = version


def _session_valid(row: AppUser | None) -> bool:
    if row is None or not row.active or session.get("sv") != row.session_version:
        return False
    cfg, now = settings(), _now()
    seen, iat = session.get("seen"), session.get("iat")
    if not isinstance(seen, int) or not isinstance(iat, int):
        return False
    return now - seen <= cfg.session_idle_hours * 3600 and now - iat <= cfg.session_max_hours * 3600


def current_user() -> WebUser | None:
    if "current_user" in g:
        return g.current_user
    user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        row = user_for_token(read_session(), header[7:].strip())
        user = _load(row, True) if row is not None else None
    elif session.get("uid"):
        uid = session["uid"]
        row = read_session().get(AppUser, uid) if isinstance(uid, int) else None
        if _session_valid(row):
            user = _load(row, False)
            if _now() - session["seen"] >= SEEN_EVERY_S:
                session["seen"] = _now()
        else:
            end_session()
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
