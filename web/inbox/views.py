"""Routes of the officers' inbox: adapters over :mod:`engine.commands` (parse, call, render). The list comes
from :func:`engine.supervision.inbox.list_tasks` (index ranges, capped counts — never a scan of every open
task); every change is one ``write()`` block calling a command (claim, unclaim, delegate, complete with the rev
the page was rendered at, attach evidence), which applies the authorization policy (:mod:`engine.policy`);
errors render with the status they carry."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from engine import policy
from engine.commands import evidence as evidence_commands
from engine.commands import portal as portal_commands
from engine.commands import tasks
from engine.errors import Conflict, EngineError, FormValidationError, NotAllowed
from engine.runtime import clock
from engine.runtime.models import HumanTask, ProcessInstance
from engine.supervision import document_files
from engine.supervision import dossier as dossier_service
from engine.supervision import evidence as evidence_service
from engine.supervision.inbox import DUE_FILTERS, SCOPES, SORTS, TaskQuery, Viewer, colleagues, list_tasks, process_ids
from forms.loader import FormDefinitionError, UnknownForm
from forms.render import render_form, render_summary
from forms.validate import bind_runtime, nest
from scoring.models import Entity
from web import params
from web.auth import current_actor, current_user, record_read, roles_required
from web.errors import error_response, wants_json
from web.extensions import form_registry, read_session, runtime, settings, write
from web.i18n import current_locale
from web.i18n import gettext as _
from web.labels import element_label
from web.security import csrf_token

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

PAGE_SIZE = 50
BULK_MAX = 200


# ------------------------------------------------------------------------------------------ helpers
def _viewer() -> Viewer:
    user = current_user()
    return Viewer(user.username, frozenset(user.groups), tuple(user.jurisdiction))


def _int_arg(name: str, *, minimum: int | None = None) -> int | None:
    return params.int_arg(name, minimum=minimum)


def _safe_next(default: str) -> str:
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/inbox") or target.startswith("//"):
        return default
    return target


def _forms():
    return form_registry()


def _not_open_message(ht: HumanTask) -> str:
    if ht.status == "completed":
        return _("Task {id} was already completed by {user}. Nothing was saved.", id=ht.id,
                 user=ht.completed_by or "?")
    return _("Task {id} was cancelled (its process moved on or was stopped). Nothing was saved.", id=ht.id)


def _failed(task_id: int, exc: EngineError, template: str):
    """A refused claim, give-back or delegation: the error's own status, with the reason."""
    return error_response(exc.http_status, template.format(id=task_id, reason=exc.localized(_)))


_PREFILL_TYPES = {"text", "textarea", "integer", "number", "bool", "date", "datetime", "select", "multiselect"}


def _bound_form(ht: HumanTask, task_data: dict):
    if not ht.form_id:
        return None
    return bind_runtime(_forms().get(ht.form_id), task_data)


def _initial_values(form, task_data: dict, evidence_rows) -> dict:
    """Values of the task data that the form shows (simple fields), and the task's uploaded evidence in
    the form's main evidence field."""
    values = {f.name: task_data[f.name] for f in form.fields
              if f.type in _PREFILL_TYPES and task_data.get(f.name) not in (None, "")}
    target = _evidence_field(form)
    if target is not None and evidence_rows:
        values[target.name] = [evidence_service.reference(e) for e in evidence_rows]
    return values


def _evidence_field(form):
    fields = [f for f in form.fields if f.type == "evidence"]
    return next((f for f in fields if f.name == "evidence"), fields[0] if fields else None)


# --------------------------------------------------------------------------------------------- list
@bp.route("/")
@roles_required(*policy.TASK_WORKERS)
def index():
    page_no = params.page_arg(PAGE_SIZE)
    q = TaskQuery(scope=request.args.get("scope") or "all", process_id=request.args.get("process") or None,
                  campaign_id=_int_arg("campaign", minimum=1), entity=request.args.get("entity") or None,
                  due=request.args.get("due") or None, min_priority=_int_arg("min_priority"),
                  sort=request.args.get("sort") or "due", limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    s = read_session()
    page = list_tasks(s, _viewer(), q)
    args = {k: v for k, v in request.args.items() if v and k != "page"}
    return render_template("inbox/index.html", page=page, page_no=page_no, args=args, processes=process_ids(s),
                           scopes=SCOPES, sorts=SORTS, due_filters=DUE_FILTERS, me=current_user().username)


@bp.route("/claim", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def bulk_claim():
    """Claim every selected task, each in its own transaction; report each success and failure."""
    back = _safe_next(url_for("inbox.index"))
    raw = request.form.getlist("task_id")
    if not raw:
        flash(_("Select at least one task to claim."), "error")
        return redirect(back)
    if len(raw) > BULK_MAX:
        flash(_("At most {n} tasks can be claimed at once.", n=BULK_MAX), "error")
        return redirect(back)
    ids = []
    for value in raw:
        if value.isascii() and value.isdigit() and len(value) <= 18:
            ids.append(int(value))
        else:
            flash(_("“{value}” is not a task number.", value=value[:40]), "error")
    claimed = []
    for task_id in dict.fromkeys(ids):
        try:
            with write() as s:
                tasks.claim(runtime(), s, current_actor(), task_id)
            claimed.append(task_id)
        except EngineError as exc:
            flash(_("Task {id} was not claimed: {reason}", id=task_id, reason=exc.localized(_)), "error")
    if claimed:
        flash(_("Claimed {n} task(s): {ids}.", n=len(claimed), ids=", ".join(map(str, claimed))), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def claim(task_id: int):
    back = _safe_next(url_for("inbox.task", task_id=task_id))
    try:
        with write() as s:
            tasks.claim(runtime(), s, current_actor(), task_id)
    except EngineError as exc:
        return _failed(task_id, exc, _("Task {id} was not claimed: {reason}"))
    flash(_("You claimed task {id}.", id=task_id), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def unclaim(task_id: int):
    back = _safe_next(url_for("inbox.index"))
    try:
        with write() as s:
            tasks.unclaim(runtime(), s, current_actor(), task_id)
    except EngineError as exc:
        return _failed(task_id, exc, _("Task {id} was not given back: {reason}"))
    flash(_("Task {id} is back in its groups' queue.", id=task_id), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/delegate", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def delegate(task_id: int):
    to_user = request.form.get("to_user")
    try:
        with write() as s:
            tasks.delegate(runtime(), s, current_actor(), task_id, to_user, request.form.get("reason"))
    except EngineError as exc:
        return _failed(task_id, exc, _("Task {id} was not delegated: {reason}"))
    flash(_("Task {id} was delegated to {user}.", id=task_id, user=to_user.strip()), "success")
    return redirect(url_for("inbox.index"))


# --------------------------------------------------------------------------------------------- task
def _earlier_steps(s, ht: HumanTask, task_data: dict) -> list[dict]:
    """The instance's completed form tasks before this one (the latest of each form, oldest first), each
    with its form rendered read only from the instance's current data: what was planned, found or decided
    before — the plan for its approver, the inspection result for its reviewer, the investigation for the
    decision. Forms that no longer exist or do not parse are left out; this task's own form is not repeated."""
    latest: dict[str, HumanTask] = {}
    for done in s.scalars(select(HumanTask).where(HumanTask.instance_id == ht.instance_id,
                                                  HumanTask.status == "completed", HumanTask.form_id.is_not(None),
                                                  HumanTask.form_id != (ht.form_id or ""))
                          .order_by(HumanTask.completed_at, HumanTask.id)):
        latest.pop(done.form_id, None)
        latest[done.form_id] = done
    steps = []
    for done in latest.values():
        try:
            form = bind_runtime(_forms().get(done.form_id), task_data)
        except (UnknownForm, FormDefinitionError):
            continue
        values = {f.name: task_data.get(f.name) for f in form.fields}
        if not any(v not in (None, "", [], {}) for v in values.values()):
            continue
        steps.append({"task": done, "form": form, "html": render_summary(form, values, current_locale())})
    return steps


def _render_task(s, ht: HumanTask, task_data: dict, *, values=None, errors=None, status: int = 200,
                 notice: str | None = None):
    inst = s.get(ProcessInstance, ht.instance_id)
    form = _bound_form(ht, task_data)
    files = evidence_service.for_task(s, ht.id)
    earlier = _earlier_steps(s, ht, task_data)
    form_html = None
    if form is not None:
        shown = values if values is not None else _initial_values(form, task_data, files)
        form_html = render_form(form, shown, errors or {}, current_locale(), csrf_token(),
                                action=url_for("inbox.complete", task_id=ht.id, rev=inst.rev))
    entity = None
    if ht.business_key:
        entity = s.scalars(select(Entity).where(Entity.uscc == ht.business_key)).first()
    parent = s.get(ProcessInstance, inst.parent_instance_id) if inst.parent_instance_id else None
    me = current_user().username
    mates = colleagues(s, ht.candidate_groups or [], exclude=me)
    receivers = policy.eligible_receivers(s, ht, [u for u, _name in mates])
    mates = [m for m in mates if m[0] in receivers]
    return render_template("inbox/task.html", ht=ht, inst=inst, entity=entity, parent=parent, form_html=form_html,
                           files=files, colleagues=mates, earlier=earlier, me=me, now=clock.now(), errors=errors or {},
                           notice=notice, documents=document_files.instance_documents(s, inst.id),
                           evidence_field=_evidence_field(form) if form is not None else None,
                           max_upload_mb=settings().max_upload_mb,
                           allowed=", ".join(evidence_service.ALLOWED_EXTENSIONS)), status


def _closed_or_stale(task_id: int, exc: Conflict):
    """A 409 page: the task was done or cancelled meanwhile, or its instance moved on."""
    s = read_session()
    s.rollback()
    fresh = s.get(HumanTask, task_id)
    if fresh is not None and fresh.status != "open":
        return error_response(409, _not_open_message(fresh))
    return error_response(409, _stale_message(task_id))


@bp.route("/tasks/<int:task_id>")
@roles_required(*policy.TASK_WORKERS)
def task(task_id: int):
    s = read_session()
    try:
        view = tasks.read(runtime(), s, current_actor(), task_id)
    except Conflict as exc:
        return _closed_or_stale(task_id, exc)
    return _render_task(s, view.task, view.data)


@bp.route("/tasks/<int:task_id>", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def complete(task_id: int):
    """Submit the task's form: its fields nested into one JSON-like object (the canonical raw input) and
    completed by :func:`engine.commands.tasks.complete` with the rev the page was rendered at — 403 for who
    may not, 409 when stale or done, 422 with the form's errors; nothing is saved unless it completes."""
    raw = nest(request.form)
    raw.pop("csrf_token", None)
    try:
        with write() as w:
            outcome = tasks.complete(runtime(), w, current_actor(), task_id, raw, rev=request.args.get("rev", ""),
                                     lang=current_locale())
    except FormValidationError as exc:
        s = read_session()
        s.rollback()
        view = tasks.read(runtime(), s, current_actor(), task_id)
        return _render_task(s, view.task, view.data, values=raw, errors=exc.field_errors, status=422,
                            notice=_("The form has errors; nothing was saved. Correct them and submit again."))
    except Conflict as exc:
        return _closed_or_stale(task_id, exc)
    flash(_("Task {id} is completed.", id=task_id), "success")
    if outcome.queued:  # held for the worker (an asynchronous continuation, e.g. a campaign's launch)
        flash(_("Queued to run in the background, not in this request: {steps}. The worker runs it shortly; its "
                "results appear when it is done.", steps="、".join(
                    element_label(q["process_id"], q["bpmn_id"], q["name"]) for q in outcome.queued)), "info")
    return redirect(url_for("inbox.index"))


def _stale_message(task_id: int) -> str:
    return _("Task {id} changed after you opened it (someone else acted on its process). Nothing was saved: "
             "reload the task and submit again.", id=task_id)


# ----------------------------------------------------------------------------------------- evidence
@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    return error_response(413, _("The upload is larger than the limit of {mb} MB; nothing was stored.",
                                 mb=f"{settings().max_upload_mb:g}"))


def _upload_message(exc: evidence_service.EvidenceRejected) -> str:
    name = exc.details.get("filename") or "?"
    allowed = ", ".join(evidence_service.ALLOWED_EXTENSIONS)
    if exc.reason == "too_large":
        return _("{name}: the file is larger than the limit of {mb} MB; nothing was stored.", name=name,
                 mb=f"{settings().max_upload_mb:g}")
    if exc.reason == "empty":
        return _("{name}: the file is empty; nothing was stored.", name=name)
    if exc.reason == "name":
        return _("The file has no name; nothing was stored.")
    if exc.details.get("extension") in evidence_service.BY_EXTENSION:
        return _("{name}: the content does not match the file type .{ext} (it looks like {found}); nothing was "
                 "stored. Accepted types: {allowed}.", name=name, ext=exc.details["extension"],
                 found=(exc.details.get("detected") or _("unknown or binary data")), allowed=allowed)
    return _("{name}: this file type is not accepted; nothing was stored. Accepted types: {allowed}.", name=name,
             allowed=allowed)


@bp.route("/tasks/<int:task_id>/evidence", methods=["POST"])
@roles_required(*policy.TASK_WORKERS)
def upload(task_id: int):
    """Store uploaded evidence files (multipart field ``file``, one or more) for an open task."""
    files = [(f.stream, f.filename or "") for f in request.files.getlist("file")
             if f and (f.filename or f.content_length)]
    cfg = settings()
    try:
        with write() as w:
            if not files:  # who may not work on the task learns nothing more: 403 first
                tasks.authorize(w, current_actor(), task_id, "attach")
                return error_response(400, _("Choose a file to upload."))
            rows = evidence_commands.attach(runtime(), w, current_actor(), task_id, upload_dir=cfg.upload_dir,
                                            max_bytes=int(cfg.max_upload_mb * 1024 * 1024), files=files)
            stored = [evidence_service.reference(ev) | {"id": ev.id} for ev in rows]
    except evidence_service.EvidenceRejected as exc:
        return error_response(exc.http_status, _upload_message(exc))
    except Conflict as exc:
        return _closed_or_stale(task_id, exc)
    if wants_json():
        return jsonify({"evidence": stored}), 201
    flash(_("Stored {n} file(s): {names}.", n=len(stored), names=", ".join(e["filename"] for e in stored)), "success")
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.route("/evidence/<int:evidence_id>")
@roles_required(*policy.DOSSIER_READERS)
def download(evidence_id: int):
    ev, path = evidence_commands.open_file(read_session(), current_actor(), evidence_id, settings().upload_dir)
    record_read("evidence", evidence_id)
    return send_file(path, mimetype=ev.content_type, as_attachment=True, download_name=ev.filename)


# ------------------------------------------------------------------------------------------ dossier
@bp.route("/entities/<uscc>")
@roles_required(*policy.DOSSIER_READERS)
def entity(uscc: str):
    s = read_session()
    d = dossier_service.load_dossier(s, uscc)
    policy.check_entity(current_actor(), d.entity.uscc, d.district)
    record_read("dossier", d.entity.uscc)
    return render_template("inbox/entity.html", d=d, e=d.entity, lang=current_locale(),
                           read_only=not current_user().has(*policy.TASK_WORKERS), portal_codes=_portal_codes(uscc))


def _portal_codes(uscc: str) -> list[dict] | None:
    """The entity's portal access codes for its dossier page (:mod:`web.inbox.portal_codes`), or None when the
    signed-in user may not handle them."""
    try:
        return portal_commands.codes(read_session(), current_actor(), uscc)
    except NotAllowed:
        return None
