"""Sign-in, sign-out, the password change, the language switch, and the access-control helpers every area uses.

``current_user()`` is the signed-in user (session cookie) or the owner of a bearer token (``/api``);
``roles_required("officer", …)`` guards a view: 401 (sign-in page) when anonymous, 403 otherwise. Sessions and
their end: :mod:`.access`; the routes: :mod:`.views`; the client address and known browsers: :mod:`.client`;
the second factor: :mod:`.two_factor`; recording reads of dossiers and evidence: :mod:`.reads`.
"""
from __future__ import annotations

from datetime import timedelta

from engine import policy

from . import two_factor
from .access import ROLE_LABELS, WebUser, current_actor, current_user, login_required, roles_required
from .reads import record_read
from .views import bp

__all__ = ["ROLE_LABELS", "WebUser", "bp", "current_actor", "current_user", "init_app", "login_required",
           "record_read", "roles_required"]


def init_app(app) -> None:
    settings = app.extensions["regflow"].settings
    app.register_blueprint(two_factor.bp)  # /auth/two-factor
    # Flask refuses a session cookie signed longer ago than this; an active session is re-signed every minute
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.session_idle_hours)
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["ROLE_LABELS"] = ROLE_LABELS
    # templates show a link or a button by the policy's role lists (``user.has(*policy.DESIGNERS)``)
    app.jinja_env.globals["policy"] = policy
