"""The entity portal (``/portal``): a business signs in with its USCC and the access code printed on the document
it was served, sees its notices, orders, cases and draws, submits, and gets a receipt number; officers list
what was kept for them (``/portal/officer/submissions``).

Sign-in (:func:`engine.commands.portal.sign_in`) is counted before it is checked: a throttled attempt answers
429 with ``Retry-After`` and checks nothing; a wrong, expired or revoked code answers 401 with one message for
all three. The sign-in body is limited like the staff's (:data:`web.security.AUTH_BODY_LIMIT`, by
:mod:`web.security`); a submission's body by the upload limit, its fields by
:data:`engine.supervision.portal_submissions.FIELDS` — a bad field re-renders the form with the message (400).
CSRF as on every form.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from engine.commands import portal as portal_commands
from engine.config import app_secret
from engine.errors import EngineError
from engine.supervision import portal_submissions
from engine.supervision.portal_models import SUBMISSION_KINDS
from web.auth import current_actor, login_required
from web.auth.client import client_address
from web.extensions import read_session, runtime, settings, write
from web.i18n import gettext as _

from .entity import current_entity, end_entity_session, entity_required, start_entity_session

bp = Blueprint("portal", __name__, url_prefix="/portal")

KIND_LABELS = {
    "rectification_report": "Rectification report", "information_publicised": "Information publicised",
    "hearing_request": "Hearing request", "statement_defence": "Statement and defence",
    "extension_request": "Extension request", "credit_repair": "Credit repair application",
}
FIELD_LABELS = {
    "note": "What was done", "reason": "Reason", "statement": "Statement and defence",
    "requested_days": "Days of extension requested", "measures": "Corrective measures",
    "contact_name": "Contact person", "contact_phone": "Contact phone",
}
STATUS_LABELS = {"delivered": "Delivered to the case", "routed": "Passed to an officer", "handled": "Handled"}
ORDER_LABELS = {"issued": "Order issued", "served": "Order served", "reported": "Rectification reported"}
CASE_LABELS = {"lead": "Lead under verification", "filed": "Case filed", "decided": "Decision made"}


@bp.app_context_processor
def _labels():
    return {"PORTAL_KINDS": KIND_LABELS, "PORTAL_FIELDS": FIELD_LABELS, "PORTAL_STATUSES": STATUS_LABELS,
            "PORTAL_ORDERS": ORDER_LABELS, "PORTAL_CASES": CASE_LABELS}


def _login_page(error: str | None = None, status: int = 200, uscc: str = "", headers=None):
    return render_template("portal/login.html", error=error, uscc=uscc), status, headers or {}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return _login_page()
    uscc = (request.form.get("uscc") or "").strip()[:40]
    code = request.form.get("code") or ""
    if not uscc or not code.strip():
        return _login_page(_("Give your USCC and the access code."), 400, uscc)
    cfg = settings()
    with write() as s:
        outcome = portal_commands.sign_in(s, uscc=uscc, code=code, address=client_address(),
                                          free=cfg.signin_free_attempts, max_delay_s=cfg.signin_max_delay_s,
                                          key=app_secret(cfg))
        signed = (outcome.code.id, outcome.code.uscc, outcome.code.session_version) if outcome.code else None
    if outcome.wait:
        message = _("Too many failed attempts. Wait {n} seconds and try again.", n=outcome.wait)
        return _login_page(message, 429, uscc, {"Retry-After": str(outcome.wait)})
    if signed is None:
        return _login_page(_("Wrong USCC or access code, or the code has expired."), 401, uscc)
    start_entity_session(*signed)
    return redirect(url_for("portal.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    held = current_entity()
    if held is not None:  # a staff session in this browser is not the portal's to end
        with write() as s:
            portal_commands.sign_out(s, held, address=client_address())
        end_entity_session()
    return redirect(url_for("portal.login"))


@bp.route("/", methods=["GET"])
@entity_required
def home():
    held = current_entity()
    view, submitted = portal_commands.overview(read_session(), held, held.uscc)
    return render_template("portal/home.html", view=view, submissions=submitted, kinds=SUBMISSION_KINDS)


def _form(kind: str, values: dict, error: str | None = None, status: int = 200):
    fields = portal_submissions.FIELDS[kind]
    return render_template("portal/submit.html", kind=kind, fields=fields, values=values, error=error,
                           with_files=kind in portal_submissions.WITH_FILES,
                           max_files=portal_submissions.MAX_FILES, max_mb=settings().max_upload_mb), status


@bp.route("/submit/<kind>", methods=["GET", "POST"])
@entity_required
def submit(kind: str):
    if kind not in SUBMISSION_KINDS:
        abort(404)
    if request.method == "GET":
        return _form(kind, {})
    held = current_entity()
    names = [name for name, *_rest in portal_submissions.FIELDS[kind]]
    values = {n: request.form.get(n, "") for n in names}
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    cfg = settings()
    try:
        with write() as s:
            out = portal_commands.submit(runtime(), s, held, uscc=held.uscc, kind=kind, fields=values,
                                         files=[(f.stream, f.filename) for f in uploads], upload_dir=cfg.upload_dir,
                                         max_bytes=int(cfg.max_upload_mb * 1024 * 1024), address=client_address())
            receipt = out.submission.receipt
    except EngineError as exc:
        if exc.http_status >= 500:
            raise
        return _form(kind, values, exc.localized(_), exc.http_status)
    flash(_("Received. Your receipt number is {receipt}.", receipt=receipt), "success")
    return redirect(url_for("portal.receipt", number=receipt))


@bp.route("/receipts/<number>", methods=["GET"])
@entity_required
def receipt(number: str):
    row = portal_commands.receipt(read_session(), current_entity(), number[:24])
    return render_template("portal/receipt.html", row=row)


# ------------------------------------------------------------------------------------------ officers
@bp.route("/officer/submissions", methods=["GET"])
@login_required
def officer_submissions():
    status = request.args.get("status") or None
    rows = portal_commands.submissions(read_session(), current_actor(), status=status[:20] if status else None)
    return render_template("portal/officer.html", rows=rows, status=status)


@bp.route("/officer/submissions/<number>/handled", methods=["POST"])
@login_required
def mark_handled(number: str):
    note = (request.form.get("note") or "").strip()
    with write() as s:
        portal_commands.mark_handled(s, current_actor(), number[:24], note)
    flash(_("Submission {receipt} is marked handled.", receipt=number[:24]), "success")
    return redirect(url_for("portal.officer_submissions"))
