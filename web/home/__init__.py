"""The start page: each user lands on the area of their main role."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for

from web.auth import current_user

bp = Blueprint("home", __name__)

#: where each role starts, in order of preference
LANDING = [("officer", "inbox.index"), ("team_leader", "inbox.index"), ("designer", "designer.index"),
           ("supervisor", "supervise.index"), ("auditor", "audit.index"), ("admin", "admin.index")]


@bp.route("/")
def index():
    user = current_user()
    if user is None:
        return redirect(url_for("public.index") if _has_endpoint("public.index") else url_for("auth.login"))
    for role, endpoint in LANDING:
        if user.has(role) and _has_endpoint(endpoint):
            return redirect(url_for(endpoint))
    return render_template("home/index.html")


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}


def _has_endpoint(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


