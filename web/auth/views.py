"""Sign-in, sign-out, the password change and the language switch.

Sign-in (:mod:`engine.runtime.signin`): a user name longer than 120 characters is refused (400) before anything
is done with it and counts against the address only; a throttled attempt answers 429 with ``Retry-After`` and
checks nothing; otherwise the attempt is counted, the password checked outside any transaction (a dummy hash for
unknown names: the same time), and the outcome recorded — on the system audit chain for existing accounts
only. A user with a second factor (or who must enrol one) is not signed in by the password: the sign-in waits
for a code at ``/auth/two-factor`` (:mod:`.two_factor`). Sign-out ends every session of the user. The password
change asks for the current password (throttled like a sign-in) and the new one twice, and ends the user's other
sessions.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from engine.errors import InvalidInput
from engine.runtime import passwords, signin, totp, users
from web.extensions import read_session, settings, write
from web.i18n import LOCALES
from web.i18n import gettext as _

from .access import current_user, end_session, keep_session, login_required, start_pending, start_session
from .client import client_address, known_device, remember_device

bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="../templates")


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target.rstrip("?") or url_for("home.index")


def _password_page(error: str | None = None, status: int = 200):
    return render_template("auth/password.html", error=error, config_min_length=settings().password_min_length), status


def _throttled(template: str, wait: int, **context):
    message = _("Too many failed attempts. Wait {n} seconds and try again.", n=wait)
    return render_template(template, error=message, **context), 429, {"Retry-After": str(wait)}


def _attempt(username: str | None, password: str, *, source: str, audit_success: bool = True, then=None):
    """One throttled password check of ``username``; returns ``(wait, user_id_or_None, then's result)``.
    ``then(session, user)`` runs in the recording transaction after a success."""
    limits = signin.Limits.from_settings(settings())
    address = client_address()
    device = known_device(username) if username else None
    peek = signin.begin(read_session(), limits, username, address, device, charge=False)
    if peek.wait:
        return peek.wait, None, None
    with write() as s:
        attempt = signin.begin(s, limits, username, address, device)
    if attempt.wait:
        return attempt.wait, None, None
    ok = signin.check(attempt, password)
    with write() as s:
        user = signin.finish(s, attempt, ok, password, source=source, address=address, audit_success=audit_success)
        result = then(s, user) if (user is not None and then is not None) else None
        return 0, (user.id if user is not None else None), result


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html", error=None, username="")
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    if len(username) > users.NAME_MAX:
        # nothing is kept of the name; the refusal counts against the address alone
        wait, _uid, _r = _attempt(None, "", source="web")
        if wait:
            return _throttled("auth/login.html", wait, username="")
        return render_template("auth/login.html", error=_("Wrong user name or password."), username=""), 400
    roles = totp.roles_from_setting(settings().two_factor_roles)
    address = client_address()

    def after_password(s, user):
        second = totp.needs_second_step(user, roles)
        if not second:
            signin.audit_sign_in(s, user, source="web", address=address)
        return user.session_version, second

    wait, uid, result = _attempt(username, password, source="web", audit_success=False, then=after_password)
    if wait:
        return _throttled("auth/login.html", wait, username=username)
    if uid is None:
        return render_template("auth/login.html", error=_("Wrong user name or password."), username=username), 401
    version, second = result
    target = _safe_next(request.args.get("next"))
    if second:  # not signed in until the code is right (web/auth/two_factor.py)
        start_pending(uid, version, username, target)
        return redirect(url_for("two_factor.page"))
    start_session(uid, version)
    response = redirect(target)
    remember_device(response, username)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    user = current_user()
    if user is not None and not user.via_token:
        with write() as s:
            users.end_sessions(s, user.id)
    end_session()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    user = current_user()
    if user.via_token:
        abort(403)  # a password changes in a browser session, never with an API token
    if request.method == "GET":
        return _password_page()
    current = request.form.get("current_password") or ""
    new = request.form.get("new_password") or ""
    if new != (request.form.get("new_password2") or ""):
        return _password_page(_("The two new passwords differ."), 400)
    try:
        passwords.check(new, user.username, settings().password_min_length)
    except InvalidInput as exc:
        return _password_page(exc.localized(_), 400)
    if new == current:
        return _password_page(_("The new password must differ from the current one."), 400)

    def change(s, me):
        return users.set_password(s, me.username, new, actor=me.username)

    wait, uid, version = _attempt(user.username, current, source="password_change", audit_success=False, then=change)
    if wait:
        return _throttled("auth/password.html", wait, config_min_length=settings().password_min_length)
    if uid is None:
        return _password_page(_("The current password is wrong."), 400)
    keep_session(version)
    flash(_("Your password was changed. Your sessions in other browsers have ended."), "success")
    return redirect(url_for("home.index"))


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str):
    if code not in LOCALES:
        abort(404)
    session["lang"] = code
    return redirect(_safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path))
