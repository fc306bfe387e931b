"""The second sign-in factor: enrolment, the code after the password, and an administrator's reset.

``/auth/two-factor`` serves whoever is asking:

* a browser whose sign-in waits for its second factor (the password was right, :func:`.access.start_pending`):
  the code form when the account has a second factor, else the enrolment (the account holds a role named by
  ``REGFLOW_TWO_FACTOR_ROLES``); a good code signs the browser in;
* a signed-in user: the enrolment if they have no second factor yet (anyone may add one), else its state.

The enrolment shows the secret as text and its ``otpauth://`` URI (no QR code: authenticator apps accept both
typed in) and is confirmed by a first code. Codes are throttled like passwords and accepted once
(:func:`engine.runtime.signin.second_factor`). An administrator forgets a user's second factor (a lost phone)
with ``POST /auth/two-factor/reset/<username>`` (the button on the user's admin page).
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from engine import policy
from engine.runtime import signin, totp
from engine.runtime.models import AppUser
from web.extensions import read_session, settings, write
from web.i18n import gettext as _
from web.security import AUTH_BODY_LIMIT

from .access import current_actor, current_user, pending_sign_in, roles_required, start_session
from .client import client_address, remember_device

bp = Blueprint("two_factor", __name__, url_prefix="/auth/two-factor")


@bp.before_request
def _small_bodies():
    request.max_content_length = AUTH_BODY_LIMIT  # a code: a few form fields, like every /auth/ request


def _subject() -> tuple[int, int, str, bool]:
    """``(user id, session version, user name, signing in)`` of whoever asks; 401 when nobody, 403 for a token."""
    user = current_user()
    if user is not None:
        if user.via_token:
            abort(403)  # a second factor is set up in a browser session, never with an API token
        return user.id, session["sv"], user.username, False
    pend = pending_sign_in()
    if pend is None:
        abort(401)
    return pend["uid"], pend["sv"], pend["u"], True


def _render(uid: int, signing_in: bool, *, error: str | None = None, status: int = 200, headers=None):
    row = read_session().get(AppUser, uid)
    if row is None:
        abort(401)
    if totp.enrolled(row):
        mode, secret, uri = ("code" if signing_in else "enrolled"), None, None
    else:
        with write() as s:  # the secret offered is kept until a first code confirms it
            me = s.get(AppUser, uid)
            secret = totp.begin_enrolment(me)
            uri = totp.provisioning_uri(me)
        mode = "enrol"
    return render_template("auth/two_factor.html", mode=mode, secret=secret, uri=uri, error=error,
                           signing_in=signing_in, enabled_at=row.totp_enabled_at), status, headers or {}


@bp.route("", methods=["GET"])
def page():
    uid, _sv, _name, signing_in = _subject()
    return _render(uid, signing_in)


@bp.route("", methods=["POST"])
def confirm():
    uid, version, username, signing_in = _subject()
    limits = signin.Limits.from_settings(settings())
    wait = signin.code_wait(read_session(), limits, username)
    if not wait:
        with write() as s:
            wait, user = signin.second_factor(s, limits, uid, version, request.form.get("code") or "", source="web",
                                              address=client_address(), sign_in=signing_in)
            new_version = user.session_version if user is not None else None
    if wait:
        message = _("Too many failed attempts. Wait {n} seconds and try again.", n=wait)
        return _render(uid, signing_in, error=message, status=429, headers={"Retry-After": str(wait)})
    if new_version is None:
        return _render(uid, signing_in, error=_("The code is wrong, expired or was used already."), status=400)
    if not signing_in:
        flash(_("Two-factor sign-in is set up: from now on every sign-in asks for a code."), "success")
        return redirect(url_for("two_factor.page"))
    target = (pending_sign_in() or {}).get("next") or url_for("home.index")
    start_session(uid, new_version)
    response = redirect(target)
    remember_device(response, username)
    return response


@bp.route("/reset/<username>", methods=["POST"])
@roles_required(*policy.ADMINS)
def reset(username: str):
    actor = current_actor()
    policy.check_roles(actor, policy.ADMINS)
    with write() as s:
        totp.reset(s, username, actor=actor.username)
    flash(_("The second factor of {name} was removed; their sessions ended.", name=username), "success")
    return redirect(url_for("admin.user", username=username))
