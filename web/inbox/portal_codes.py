"""The entity's portal access codes on its dossier page (``/inbox/entities/<uscc>``): the officers of its district
list them (never the codes themselves: only their hashes are stored), issue a new one — shown once, to hand to the
business with a document — and revoke one (it signs nobody in any more and ends the sessions opened with it).
The same commands as ``regflow portal code|codes|revoke`` (:mod:`engine.commands.portal`); who may is
:func:`engine.policy.check_portal_officer`."""
from __future__ import annotations

from flask import flash, redirect, request, url_for

from engine import policy
from engine.commands import portal as portal_commands
from engine.config import app_secret
from engine.errors import EngineError
from web.auth import current_actor, roles_required
from web.extensions import settings, write
from web.i18n import gettext as _
from web.inbox.views import bp


@bp.route("/entities/<uscc>/portal-codes", methods=["POST"])
@roles_required(*policy.PORTAL_OFFICERS)
def issue_portal_code(uscc: str):
    try:
        with write() as s:
            cfg = settings()  # the code's hash is keyed with the installation's secret, as the portal's sign-in is
            out = portal_commands.issue_code(s, current_actor(), uscc=uscc, days=cfg.portal_code_days,
                                             key=app_secret(cfg))
    except EngineError as exc:
        flash(_("No access code was issued: {reason}", reason=str(exc)), "error")
    else:
        flash(_("Access code {code} for {uscc}, valid until {until}: hand it to the business now, it is not shown "
                "again.", code=out["code"], uscc=out["uscc"], until=out["expires_at"][:10]), "success")
    return redirect(url_for("inbox.entity", uscc=uscc) + "#portal-codes")


@bp.route("/entities/<uscc>/portal-codes/<int:code_id>/revoke", methods=["POST"])
@roles_required(*policy.PORTAL_OFFICERS)
def revoke_portal_code(uscc: str, code_id: int):
    reason = (request.form.get("reason") or "")[:500]
    try:
        with write() as s:
            portal_commands.revoke_code(s, current_actor(), code_id, reason)
    except EngineError as exc:
        flash(_("Access code {id} was not revoked: {reason}", id=code_id, reason=str(exc)), "error")
    else:
        flash(_("Access code {id} revoked.", id=code_id), "success")
    return redirect(url_for("inbox.entity", uscc=uscc) + "#portal-codes")
