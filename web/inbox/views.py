"""Routes of the officers' inbox. Thin: the list comes from :func:`engine.supervision.inbox.list_tasks`
(index ranges, capped counts — never a scan of every open task), every change is one ``write()`` block
calling the runtime (claim, unclaim, delegate, complete_task with the rev the page was rendered at),
evidence goes through :mod:`engine.supervision.evidence`, the dossier through
:mod:`engine.supervision.dossier`."""
from __future__ import annotations

from urllib.parse import urlsplit
from uuid import UUID

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from engine.errors import Conflict, EngineError, FormValidationError, InvalidInput, NotAllowed, NotFound
from engine.runtime import clock
from engine.runtime.models import HumanTask, ProcessInstance
from engine.supervision import dossier as dossier_service
from engine.supervision import evidence as evidence_service
from engine.supervision.inbox import DUE_FILTERS, SCOPES, SORTS, TaskQuery, Viewer, colleagues, list_tasks, process_ids
from web.auth import current_user, roles_required
from web.errors import error_response, wants_json
from web.extensions import read_session, runtime, settings, write
from web.i18n import current_locale
from web.i18n import gettext as _

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

#: who works tasks in the inbox: officers and team leaders, and supervisors for theirs (plan approval,
#: result review, the agency head's decisions); which task each may open is decided by its candidate groups
WORKERS = ("officer", "team_leader", "supervisor")
#: who may open an entity dossier (supervisors and auditors read only)
DOSSIER_READERS = ("officer", "team_leader", "supervisor", "auditor")
PAGE_SIZE = 50
BULK_MAX = 200


# ------------------------------------------------------------------------------------------ helpers
def _viewer() -> Viewer:
    user = current_user()
    return Viewer(user.username, frozenset(user.groups), tuple(user.jurisdiction))


def _int_arg(name: str, *, minimum: int | None = None) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(_("The filter “{name}” must be a whole number, not “{value}”.", name=name,
                             value=raw)) from None
    if minimum is not None and value < minimum:
        raise InvalidInput(_("The filter “{name}” must be at least {minimum}.", name=name, minimum=minimum))
    return value


def _safe_next(default: str) -> str:
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/inbox") or target.startswith("//"):
        return default
    return target


def _forms():
    from engine.bootstrap import form_registry

    return form_registry(settings())


def _task_or_404(session, task_id: int) -> HumanTask:
    ht = session.get(HumanTask, task_id)
    if ht is None:
        raise NotFound(_("Task {id} does not exist.", id=task_id))
    return ht


def _district_of(session, ht: HumanTask) -> str | None:
    return dossier_service.entity_district(session, ht.business_key) if ht.business_key else None


def _check_access(session, ht: HumanTask) -> None:
    """403 unless the user may work on the task (assignee, or an unclaimed task of their groups) and the
    task's entity lies in their jurisdiction."""
    user = current_user()
    if ht.business_key and user.jurisdiction:
        district = _district_of(session, ht)
        if district is not None and not user.sees_district(district):
            raise NotAllowed(_("Task {id} concerns an entity outside your jurisdiction.", id=ht.id))
    if ht.status != "open":  # who could have worked on it may learn that it is done (the page says 409)
        if user.username in (ht.completed_by, ht.assignee) or set(ht.candidate_groups or []) & set(user.groups):
            return
    if not runtime().may_work_on(session, ht, user.username, set(user.groups)):
        if ht.assignee:
            raise NotAllowed(_("Task {id} is assigned to {user}; only they can open it.", id=ht.id, user=ht.assignee))
        raise NotAllowed(_("Task {id} is for the groups {groups}; you are not a member of any of them.", id=ht.id,
                           groups=", ".join(ht.candidate_groups or []) or "—"))


def _check_jurisdiction(task_id: int) -> None:
    """Claiming by task number: refuse tasks of entities outside the user's jurisdiction."""
    user = current_user()
    if user.jurisdiction:
        s = read_session()
        ht = s.get(HumanTask, task_id)
        if ht is not None and ht.business_key:
            district = _district_of(s, ht)
            if district is not None and not user.sees_district(district):
                raise NotAllowed(_("Task {id} concerns an entity outside your jurisdiction.", id=task_id))


def _not_open_message(ht: HumanTask) -> str:
    if ht.status == "completed":
        return _("Task {id} was already completed by {user}. Nothing was saved.", id=ht.id,
                 user=ht.completed_by or "?")
    return _("Task {id} was cancelled (its process moved on or was stopped). Nothing was saved.", id=ht.id)


def _why_not(task_id: int, exc: EngineError) -> str:
    """A clear reason for a failed claim/unclaim/delegate, from a fresh look at the task."""
    s = read_session()
    s.rollback()
    ht = s.get(HumanTask, task_id)
    user = current_user()
    if ht is None:
        return _("Task {id} does not exist.", id=task_id)
    if ht.status == "completed":
        return _("Task {id} was already completed by {user}.", id=task_id, user=ht.completed_by or "?")
    if ht.status != "open":
        return _("Task {id} was cancelled.", id=task_id)
    if ht.assignee and ht.assignee != user.username:
        return _("Task {id} is already claimed by {user}.", id=task_id, user=ht.assignee)
    if not set(ht.candidate_groups or []) & set(user.groups) and ht.assignee != user.username:
        return _("Task {id} is for the groups {groups}; you are not a member of any of them.", id=task_id,
                 groups=", ".join(ht.candidate_groups or []) or "—")
    return str(exc)


def _task_data(session, ht: HumanTask) -> dict:
    """The data of the task's READY workflow task (one instance's state; the page shows one task)."""
    try:
        wf = runtime().load_workflow(session, ht.instance_id)
        task = wf.get_task_from_id(UUID(ht.task_guid))
    except (NotFound, KeyError, ValueError):
        return {}
    return dict(task.data) if task is not None else {}


_PREFILL_TYPES = {"text", "textarea", "integer", "number", "bool", "date", "datetime", "select", "multiselect"}


def _bound_form(ht: HumanTask, task_data: dict):
    from forms.validate import bind_runtime

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
@roles_required(*WORKERS)
def index():
    page_no = _int_arg("page", minimum=1) or 1
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
@roles_required(*WORKERS)
def bulk_claim():
    """Claim every selected task, each in its own transaction; report each success and failure."""
    user = current_user()
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
        try:
            ids.append(int(value))
        except ValueError:
            flash(_("“{value}” is not a task number.", value=value), "error")
    claimed = []
    for task_id in dict.fromkeys(ids):
        try:
            _check_jurisdiction(task_id)
        except NotAllowed as exc:
            flash(_("Task {id} was not claimed: {reason}", id=task_id, reason=str(exc)), "error")
            continue
        try:
            with write() as s:
                runtime().claim(s, task_id, user.username)
            claimed.append(task_id)
        except EngineError as exc:
            flash(_("Task {id} was not claimed: {reason}", id=task_id, reason=_why_not(task_id, exc)), "error")
    if claimed:
        flash(_("Claimed {n} task(s): {ids}.", n=len(claimed), ids=", ".join(map(str, claimed))), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@roles_required(*WORKERS)
def claim(task_id: int):
    user = current_user()
    back = _safe_next(url_for("inbox.task", task_id=task_id))
    _check_jurisdiction(task_id)
    try:
        with write() as s:
            runtime().claim(s, task_id, user.username)
    except EngineError as exc:
        return _action_failed(task_id, exc, _("Task {id} was not claimed: {reason}"))
    flash(_("You claimed task {id}.", id=task_id), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@roles_required(*WORKERS)
def unclaim(task_id: int):
    user = current_user()
    back = _safe_next(url_for("inbox.index"))
    try:
        with write() as s:
            runtime().unclaim(s, task_id, user.username)
    except EngineError as exc:
        return _action_failed(task_id, exc, _("Task {id} was not given back: {reason}"))
    flash(_("Task {id} is back in its groups' queue.", id=task_id), "success")
    return redirect(back)


@bp.route("/tasks/<int:task_id>/delegate", methods=["POST"])
@roles_required(*WORKERS)
def delegate(task_id: int):
    user = current_user()
    s = read_session()
    _check_access(s, _task_or_404(s, task_id))  # before the input checks: a stranger gets 403, not 400
    to_user = (request.form.get("to_user") or "").strip()
    reason = (request.form.get("reason") or "").strip()
    if not to_user:
        return error_response(400, _("Choose the colleague to delegate task {id} to.", id=task_id))
    if not reason:
        return error_response(400, _("Give a reason for delegating task {id}.", id=task_id))
    if len(reason) > 500:
        return error_response(400, _("The reason is too long (at most 500 characters)."))
    try:
        with write() as s:
            runtime().delegate(s, task_id, user.username, to_user, reason)
    except InvalidInput as exc:
        return error_response(400, _("Task {id} was not delegated: {reason}", id=task_id, reason=str(exc)))
    except EngineError as exc:
        return _action_failed(task_id, exc, _("Task {id} was not delegated: {reason}"))
    flash(_("Task {id} was delegated to {user}.", id=task_id, user=to_user), "success")
    return redirect(url_for("inbox.index"))


def _action_failed(task_id: int, exc: EngineError, template: str):
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, NotAllowed) else \
        409 if isinstance(exc, Conflict) else 400
    return error_response(status, template.format(id=task_id, reason=_why_not(task_id, exc)))


# --------------------------------------------------------------------------------------------- task
def _earlier_steps(s, ht: HumanTask, task_data: dict) -> list[dict]:
    """The instance's completed form tasks before this one (the latest of each form, oldest first), each
    with its form rendered read only from the instance's current data: what was planned, found or decided
    before — the plan for its approver, the inspection result for its reviewer, the investigation for the
    decision. Forms that no longer exist or do not parse are left out; this task's own form is not repeated."""
    from forms.loader import FormDefinitionError, UnknownForm
    from forms.render import render_summary
    from forms.validate import bind_runtime

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


def _render_task(s, ht: HumanTask, *, values=None, errors=None, status: int = 200, notice: str | None = None):
    from forms.render import render_form
    from web.security import csrf_token

    inst = s.get(ProcessInstance, ht.instance_id)
    task_data = _task_data(s, ht) if ht.status == "open" else {}
    form = _bound_form(ht, task_data) if ht.status == "open" else None
    files = evidence_service.for_task(s, ht.id)
    earlier = _earlier_steps(s, ht, task_data) if ht.status == "open" else []
    form_html = None
    if form is not None:
        shown = values if values is not None else _initial_values(form, task_data, files)
        form_html = render_form(form, shown, errors or {}, current_locale(), csrf_token(),
                                action=url_for("inbox.complete", task_id=ht.id, rev=inst.rev))
    entity = None
    if ht.business_key:
        from scoring.models import Entity

        entity = s.scalars(select(Entity).where(Entity.uscc == ht.business_key)).first()
    parent = s.get(ProcessInstance, inst.parent_instance_id) if inst.parent_instance_id else None
    me = current_user().username
    mates = colleagues(s, ht.candidate_groups or [], exclude=me) if ht.status == "open" else []
    return render_template("inbox/task.html", ht=ht, inst=inst, entity=entity, parent=parent, form_html=form_html,
                           files=files, colleagues=mates, earlier=earlier, me=me, now=clock.now(), errors=errors or {}, notice=notice,
                           evidence_field=_evidence_field(form) if form is not None else None,
                           max_upload_mb=settings().max_upload_mb,
                           allowed=", ".join(evidence_service.ALLOWED_EXTENSIONS)), status


@bp.route("/tasks/<int:task_id>")
@roles_required(*WORKERS)
def task(task_id: int):
    s = read_session()
    ht = _task_or_404(s, task_id)
    _check_access(s, ht)
    if ht.status != "open":
        return error_response(409, _not_open_message(ht))
    return _render_task(s, ht)


@bp.route("/tasks/<int:task_id>", methods=["POST"])
@roles_required(*WORKERS)
def complete(task_id: int):
    """Submit the task's form: validated first (422 with field errors, nothing saved), then completed
    with the rev the page was rendered at (409 when stale or already done, nothing saved)."""
    from forms.validate import validate

    user = current_user()
    s = read_session()
    ht = _task_or_404(s, task_id)
    _check_access(s, ht)  # who may not work on the task learns nothing more from a malformed submission
    rev_text = request.args.get("rev", "")
    if not rev_text.isdigit():
        return error_response(400, _("The submission does not say which version of the task it was made on "
                                     "(rev). Reload the task and submit again."))
    rev = int(rev_text)
    if ht.status != "open":
        return error_response(409, _not_open_message(ht))
    inst = s.get(ProcessInstance, ht.instance_id)
    if inst.rev != rev:
        return error_response(409, _stale_message(task_id))
    data: dict = {}
    if ht.form_id:
        form = _bound_form(ht, _task_data(s, ht))
        data, errors = validate(form, request.form, lang=current_locale())
        if errors:
            from forms.validate import nest

            return _render_task(s, ht, values=nest(request.form), errors=errors, status=422,
                                notice=_("The form has errors; nothing was saved. Correct them and submit again."))
    try:
        with write() as w:
            runtime().complete_task(w, task_id, user.username, data, rev=rev)
    except FormValidationError as exc:
        from forms.validate import nest

        s.rollback()
        return _render_task(s, ht, values=nest(request.form), errors=exc.field_errors, status=422,
                            notice=_("The form has errors; nothing was saved. Correct them and submit again."))
    except Conflict:
        s.rollback()
        fresh = s.get(HumanTask, task_id)
        return error_response(409, _not_open_message(fresh) if fresh.status != "open" else _stale_message(task_id))
    flash(_("Task {id} is completed.", id=task_id), "success")
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
@roles_required(*WORKERS)
def upload(task_id: int):
    """Store uploaded evidence files (multipart field ``file``, one or more) for an open task."""
    user = current_user()
    s = read_session()
    ht = _task_or_404(s, task_id)
    _check_access(s, ht)
    if ht.status != "open":
        return error_response(409, _not_open_message(ht))
    files = [f for f in request.files.getlist("file") if f and (f.filename or f.content_length)]
    if not files:
        return error_response(400, _("Choose a file to upload."))
    stored = []
    cfg = settings()
    try:
        with write() as w:
            for f in files:
                ev = evidence_service.attach(
                    w, runtime(), upload_dir=cfg.upload_dir, max_bytes=int(cfg.max_upload_mb * 1024 * 1024),
                    stream=f.stream, filename=f.filename or "", instance_id=ht.instance_id, task_id=ht.id,
                    uploaded_by=user.username, bpmn_id=ht.bpmn_id, task_guid=ht.task_guid)
                stored.append(evidence_service.reference(ev) | {"id": ev.id})
    except evidence_service.EvidenceRejected as exc:
        return error_response(exc.http_status, _upload_message(exc))
    if wants_json():
        return jsonify({"evidence": stored}), 201
    flash(_("Stored {n} file(s): {names}.", n=len(stored), names=", ".join(e["filename"] for e in stored)), "success")
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.route("/evidence/<int:evidence_id>")
@roles_required(*DOSSIER_READERS)
def download(evidence_id: int):
    from pathlib import Path

    s = read_session()
    ev = evidence_service.get(s, evidence_id)
    user = current_user()
    if not user.has("supervisor", "auditor"):
        ht = _task_or_404(s, ev.task_id) if ev.task_id else None
        if ht is None:
            abort(403)
        _check_access(s, ht)
    path = evidence_service.blob_path(settings().upload_dir, ev.sha256)
    if not Path(path).is_file():
        raise NotFound(_("The stored file of evidence {id} is missing.", id=evidence_id))
    return send_file(path, mimetype=ev.content_type, as_attachment=True, download_name=ev.filename)


# ------------------------------------------------------------------------------------------ dossier
@bp.route("/entities/<uscc>")
@roles_required(*DOSSIER_READERS)
def entity(uscc: str):
    s = read_session()
    d = dossier_service.load_dossier(s, uscc)
    user = current_user()
    if not user.sees_district(d.district):
        raise NotAllowed(_("Entity {uscc} is registered in district {district}, outside your jurisdiction.",
                           uscc=d.entity.uscc, district=d.district))
    return render_template("inbox/entity.html", d=d, e=d.entity, lang=current_locale(),
                           read_only=not user.has(*WORKERS))
