"""Routes of the JSON API ``/api/v1``: start instances, read them and their history, list / claim /
unclaim / complete tasks, score entities.

Authentication: a bearer token (``Authorization: Bearer rf_…``, issued on the admin pages) or the browser
session (then POSTs need the CSRF token, as everywhere). Every route checks a role, then the object:
jurisdiction (the entity's district), the task's assignee or candidate groups, or for an instance being
an auditor, a supervisor or someone who worked on it. Errors are ``{"error": {"status", "message", …}}``
(:func:`web.errors.error_response`); invalid task data answers 422 with ``field_errors`` and changes nothing.

Who may do what (also in the OpenAPI document, ``x-roles``):

- start an instance: officer, team_leader, supervisor (designers deploy, they do not run cases);
- read an instance and its history: auditor, supervisor, or a user who started it, holds or held one
  of its tasks, or may claim one of its open tasks;
- tasks (list, read, claim, unclaim, complete): officer, team_leader, supervisor — for their own tasks and
  their groups' unclaimed ones;
- an entity's score: officer, team_leader, supervisor, auditor (within their jurisdiction); scoring a
  factor set (what-if): those and designer.
"""
from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any
from uuid import UUID

from flask import Blueprint, jsonify, render_template, request, url_for
from sqlalchemy import select

from engine.errors import Conflict, EngineError, FormValidationError, InvalidInput, NotAllowed, NotFound
from engine.runtime import history as history_service
from engine.runtime.models import HumanTask, ProcessInstance
from engine.supervision.inbox import DUE_FILTERS, SCOPES, SORTS, TaskQuery, Viewer, list_tasks
from web.auth import current_user
from web.errors import error_response
from web.extensions import read_session, runtime, settings, write
from web.i18n import current_locale
from web.i18n import gettext as _

bp = Blueprint("api", __name__, url_prefix="/api/v1")

STARTERS = ("officer", "team_leader", "supervisor")
TASK_WORKERS = ("officer", "team_leader", "supervisor")
INSTANCE_READERS = ("auditor", "supervisor")
SCORE_READERS = ("officer", "team_leader", "supervisor", "auditor")
WHAT_IF_SCORERS = SCORE_READERS + ("designer",)
MAX_LIMIT = 200


# ------------------------------------------------------------------------------------------ helpers
def api_roles(*roles: str):
    """401 (JSON, ``WWW-Authenticate: Bearer``) without a valid token or session; 403 without one of ``roles``."""
    def deco(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                resp, status = error_response(401, _("A valid API token is required: send the header "
                                                     "“Authorization: Bearer <token>”."))
                resp.headers["WWW-Authenticate"] = 'Bearer realm="regflow"'
                return resp, status
            if not user.has(*roles):
                return error_response(403, _("This needs one of the roles {roles}; you have {mine}.",
                                             roles=", ".join(roles), mine=", ".join(sorted(user.roles)) or "—"))
            return view(*args, **kwargs)
        wrapped.allowed_roles = frozenset(roles)
        return wrapped
    return deco


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes and dates as ISO 8601, recursively."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def _ok(body: dict, status: int = 200):
    return jsonify(_plain(body)), status


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput(_("The request body must be a JSON object (Content-Type: application/json)."))
    return body


def _int_arg(name: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(_("The parameter “{name}” must be a whole number, not “{value}”.", name=name,
                             value=raw)) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidInput(_("The parameter “{name}” must be between {low} and {high}.", name=name, low=minimum,
                             high=maximum if maximum is not None else "∞"))
    return value


def _choice_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    value = (request.args.get(name) or "").strip() or None
    if value is not None and value not in allowed:
        raise InvalidInput(_("The parameter “{name}” must be one of {values}, not “{value}”.", name=name,
                             values=", ".join(allowed), value=value))
    return value


def _district(session, uscc: str | None) -> str | None:
    if not uscc:
        return None
    from scoring.models import Entity

    return session.scalar(select(Entity.district).where(Entity.uscc == uscc))


def _check_district(session, uscc: str | None, what: str) -> None:
    user = current_user()
    if user.jurisdiction and uscc:
        district = _district(session, uscc)
        if district is not None and not user.sees_district(district):
            raise NotAllowed(_("{what} concerns an entity outside your jurisdiction.", what=what))


def _task_or_404(session, task_id: int) -> HumanTask:
    ht = session.get(HumanTask, task_id)
    if ht is None:
        raise NotFound(_("Task {id} does not exist.", id=task_id))
    return ht


def _instance_or_404(session, instance_id: int) -> ProcessInstance:
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound(_("Instance {id} does not exist.", id=instance_id))
    return inst


def _check_task(session, ht: HumanTask) -> None:
    """403 unless the caller may work on the task (assignee, or an unclaimed task of their groups; for a
    closed task: its assignee, completer or a member of its groups) within their jurisdiction."""
    user = current_user()
    _check_district(session, ht.business_key, _("Task {id}", id=ht.id))
    if ht.status != "open":
        if user.username in (ht.completed_by, ht.assignee) or set(ht.candidate_groups or []) & set(user.groups):
            return
    elif runtime().may_work_on(session, ht, user.username, set(user.groups)):
        return
    if ht.assignee and ht.assignee != user.username:
        raise NotAllowed(_("Task {id} is assigned to {user}; only they can work on it.", id=ht.id, user=ht.assignee))
    raise NotAllowed(_("Task {id} is for the groups {groups}; you are not a member of any of them.", id=ht.id,
                       groups=", ".join(ht.candidate_groups or []) or "—"))


def _check_instance(session, inst: ProcessInstance) -> None:
    """Auditors and supervisors read every instance (in their jurisdiction); others only those they
    started, hold or held a task of, or may claim an open task of."""
    user = current_user()
    _check_district(session, inst.business_key, _("Instance {id}", id=inst.id))
    if user.has(*INSTANCE_READERS) or inst.started_by == user.username:
        return
    for assignee, completed_by, groups, status in session.execute(
            select(HumanTask.assignee, HumanTask.completed_by, HumanTask.candidate_groups, HumanTask.status)
            .where(HumanTask.instance_id == inst.id)):
        if user.username in (assignee, completed_by):
            return
        if status == "open" and assignee is None and set(groups or []) & set(user.groups):
            return
    raise NotAllowed(_("You did not work on instance {id}; only auditors, supervisors and the people who worked "
                       "on it can read it.", id=inst.id))


def _task_json(ht: HumanTask, rev: int | None = None) -> dict:
    out = {"task_id": ht.id, "instance_id": ht.instance_id, "bpmn_id": ht.bpmn_id, "name": ht.name,
           "process_id": ht.process_id, "business_key": ht.business_key, "form_id": ht.form_id,
           "status": ht.status, "assignee": ht.assignee, "candidate_groups": list(ht.candidate_groups or []),
           "priority": ht.priority, "due_at": ht.due_at, "created_at": ht.created_at, "claimed_at": ht.claimed_at,
           "completed_at": ht.completed_at, "completed_by": ht.completed_by}
    if rev is not None:
        out["rev"] = rev
    return out


def _instance_json(session, inst: ProcessInstance) -> dict:
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status == "open")
                            .order_by(HumanTask.id))
    return {"instance_id": inst.id, "process_id": inst.process_id, "definition_id": inst.definition_id,
            "business_key": inst.business_key, "status": inst.status, "rev": inst.rev,
            "parent_instance_id": inst.parent_instance_id, "started_by": inst.started_by,
            "started_at": inst.started_at, "ended_at": inst.ended_at, "status_reason": inst.status_reason,
            "open_tasks": [_task_json(t) for t in tasks]}


# -------------------------------------------------------------------------------------------- instances
@bp.route("/instances", methods=["POST"])
@api_roles(*STARTERS)
def start_instance():
    body = _body()
    process_id = body.get("process_id")
    if not isinstance(process_id, str) or not process_id.strip():
        raise InvalidInput(_("“process_id” is required: the id of a deployed process."), field="process_id")
    key = body.get("business_key")
    if key is not None and (not isinstance(key, str) or len(key) > 120):
        raise InvalidInput(_("“business_key” must be a text of at most 120 characters (usually the entity's USCC)."),
                           field="business_key")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput(_("“data” must be a JSON object."), field="data")
    unknown = sorted(set(body) - {"process_id", "business_key", "data"})
    if unknown:
        raise InvalidInput(_("Unknown field(s) in the body: {names}.", names=", ".join(unknown)))
    _check_district(read_session(), key, _("The new instance"))
    user = current_user()
    with write() as s:
        out = runtime().start(s, process_id.strip(), business_key=key, data=data, actor=user.username)
        inst = out.instance
        result = {"instance_id": inst.id, "status": inst.status, "rev": inst.rev, "process_id": inst.process_id,
                  "business_key": inst.business_key}
        if out.failure:
            result["failure"] = out.failure
    result["url"] = url_for("api.get_instance", instance_id=result["instance_id"])
    return _ok(result, 201)


@bp.route("/instances/<int:instance_id>")
@api_roles(*(STARTERS + INSTANCE_READERS))
def get_instance(instance_id: int):
    s = read_session()
    inst = _instance_or_404(s, instance_id)
    _check_instance(s, inst)
    return _ok(_instance_json(s, inst))


@bp.route("/instances/<int:instance_id>/history")
@api_roles(*(STARTERS + INSTANCE_READERS))
def instance_history(instance_id: int):
    s = read_session()
    inst = _instance_or_404(s, instance_id)
    _check_instance(s, inst)
    events = [{"seq": e.seq, "at": e.at, "actor": e.actor, "kind": e.kind, "bpmn_id": e.bpmn_id,
               "flow_ids": list(e.flow_ids or []), "data_diff": e.data_diff or {}, "detail": e.detail or {},
               "hash": e.hash} for e in history_service.events_of(s, instance_id)]
    return _ok({"instance_id": inst.id, "process_id": inst.process_id, "status": inst.status, "events": events})


# ------------------------------------------------------------------------------------------------ tasks
@bp.route("/tasks")
@api_roles(*TASK_WORKERS)
def list_my_tasks():
    user = current_user()
    q = TaskQuery(scope=_choice_arg("scope", SCOPES) or "all", process_id=request.args.get("process") or None,
                  campaign_id=_int_arg("campaign", minimum=1), entity=request.args.get("entity") or None,
                  due=_choice_arg("due", DUE_FILTERS), min_priority=_int_arg("min_priority", minimum=-10**6),
                  sort=_choice_arg("sort", SORTS) or "due", limit=_int_arg("limit", 50, minimum=1, maximum=MAX_LIMIT),
                  offset=_int_arg("offset", 0))
    page = list_tasks(read_session(), Viewer(user.username, frozenset(user.groups), tuple(user.jurisdiction)), q)
    return _ok({"tasks": [r.to_dict() for r in page.rows], "total": page.total, "capped": page.capped,
                "limit": page.query.limit, "offset": page.query.offset,
                "next_offset": page.query.offset + len(page.rows) if page.has_next else None})


@bp.route("/tasks/<int:task_id>")
@api_roles(*TASK_WORKERS)
def get_task(task_id: int):
    s = read_session()
    ht = _task_or_404(s, task_id)
    _check_task(s, ht)
    inst = s.get(ProcessInstance, ht.instance_id)
    return _ok(_task_json(ht, inst.rev))


def _task_action(task_id: int, action) -> tuple:
    """Run ``action(session, user)`` on a task in one transaction, after the jurisdiction check."""
    user = current_user()
    _check_district(read_session(), _task_or_404(read_session(), task_id).business_key, _("Task {id}", id=task_id))
    with write() as s:
        ht = action(s, user.username)
        rev = s.scalar(select(ProcessInstance.rev).where(ProcessInstance.id == ht.instance_id))
        return _ok(_task_json(ht, rev))


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@api_roles(*TASK_WORKERS)
def claim_task(task_id: int):
    return _task_action(task_id, lambda s, me: runtime().claim(s, task_id, me))


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@api_roles(*TASK_WORKERS)
def unclaim_task(task_id: int):
    return _task_action(task_id, lambda s, me: runtime().unclaim(s, task_id, me))


def _task_data(session, ht: HumanTask) -> dict:
    try:
        wf = runtime().load_workflow(session, ht.instance_id)
        task = wf.get_task_from_id(UUID(ht.task_guid))
    except (NotFound, KeyError, ValueError):
        return {}
    return dict(task.data) if task is not None else {}


def _not_open(ht: HumanTask) -> str:
    if ht.status == "completed":
        return _("Task {id} was already completed by {user}. Nothing was saved.", id=ht.id, user=ht.completed_by or "?")
    return _("Task {id} was cancelled (its process moved on or was stopped). Nothing was saved.", id=ht.id)


def _stale(task_id: int, rev: int, current: int) -> str:
    return _("Task {id}: its instance is at rev {current}, not {rev} (someone acted on it since). Nothing was "
             "saved: read the task again and resubmit.", id=task_id, rev=rev, current=current)


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@api_roles(*TASK_WORKERS)
def complete_task(task_id: int):
    """Body ``{"data": {...}, "rev": n}``: checked in this order — the task exists (404), the caller may
    work on it (403), the body is well formed (400), it is open (409), ``rev`` is current (409), the data
    is valid for its form (422
    with ``field_errors``) — then completed in one transaction."""
    from forms.validate import bind_runtime, validate

    user = current_user()
    s = read_session()
    ht = _task_or_404(s, task_id)
    _check_task(s, ht)
    body = _body()
    data, rev = body.get("data") or {}, body.get("rev")
    if not isinstance(data, dict):
        raise InvalidInput(_("“data” must be a JSON object."), field="data")
    if isinstance(rev, bool) or not isinstance(rev, int):
        raise InvalidInput(_("“rev” is required: the instance revision the data was prepared at (GET the task "
                             "to read it)."), field="rev")
    if ht.status != "open":
        return error_response(409, _not_open(ht), task_status=ht.status)
    inst = s.get(ProcessInstance, ht.instance_id)
    if inst.rev != rev:
        return error_response(409, _stale(task_id, rev, inst.rev), rev=inst.rev)
    if ht.form_id:
        from engine.bootstrap import form_registry

        form = bind_runtime(form_registry(settings()).get(ht.form_id), _task_data(s, ht))
        data, errors = validate(form, data, lang=current_locale())
        if errors:
            return error_response(422, _("The data is not valid for form {form}; nothing was saved.",
                                         form=ht.form_id), field_errors=errors)
    try:
        with write() as w:
            out = runtime().complete_task(w, task_id, user.username, data, rev=rev)
            result = {"task_id": task_id, "instance_id": out.instance.id, "instance_status": out.instance.status,
                      "rev": out.instance.rev}
            if out.failure:
                result["failure"] = out.failure
    except FormValidationError as exc:
        return error_response(422, _("The data is not valid for form {form}; nothing was saved.", form=ht.form_id),
                              field_errors=exc.field_errors)
    except Conflict as exc:
        s.rollback()
        fresh = s.get(HumanTask, task_id)
        return error_response(409, _not_open(fresh) if fresh.status != "open" else str(exc))
    return _ok(result)


# ---------------------------------------------------------------------------------------------- scoring
def _scoring_error(exc) -> tuple:
    from scoring.errors import EntityNotFound, InvalidFactors, NoActiveModel

    if isinstance(exc, EntityNotFound):
        return error_response(404, str(exc))
    if isinstance(exc, InvalidFactors):
        return error_response(422, _("Factor “{field}” = {value}: {reason}", field=exc.field, value=repr(exc.value),
                                     reason=exc.reason), field_errors={exc.field: exc.reason})
    if isinstance(exc, NoActiveModel):
        return error_response(503, _("No risk model is active; an administrator must train or activate one."))
    return error_response(503, _("The risk model cannot be used: {reason}", reason=str(exc)))


@bp.route("/entities/<uscc>/score")
@api_roles(*SCORE_READERS)
def entity_score(uscc: str):
    """Score the entity now with the active model (nothing is stored; the stored score is shown beside)."""
    from scoring.errors import ScoringError
    from scoring.models import Entity
    from scoring.service import score_entity

    s = read_session()
    entity = s.scalar(select(Entity).where(Entity.uscc == uscc.strip().upper()))
    if entity is None:
        raise NotFound(_("No entity with the USCC {uscc} is registered.", uscc=uscc))
    if not current_user().sees_district(entity.district):
        raise NotAllowed(_("Entity {uscc} is registered in district {district}, outside your jurisdiction.",
                           uscc=entity.uscc, district=entity.district))
    try:
        res = score_entity(s, entity.id, record=False)
    except ScoringError as exc:
        return _scoring_error(exc)
    return _ok({"uscc": entity.uscc, "entity_id": entity.id, "name": entity.name, "score": res.score,
                "risk_class": res.risk_class, "reasons": res.reasons, "model_version": res.model_version,
                "stored": {"score": entity.risk_score, "risk_class": entity.risk_class,
                           "model_version": entity.model_version, "scored_at": entity.scored_at}})


@bp.route("/score", methods=["POST"])
@api_roles(*WHAT_IF_SCORERS)
def score_factors():
    """Score a set of factors (what-if) with the active model; nothing is stored."""
    from scoring.errors import ScoringError
    from scoring.factors import MODEL_INPUTS
    from scoring.registry import load_active
    from scoring.service import class_config

    body = _body()
    factors = body.get("factors")
    if not isinstance(factors, dict):
        raise InvalidInput(_("“factors” is required: an object of the factor values."), field="factors")
    allowed = set(MODEL_INPUTS) | {"serious_list", "abnormal_list"}
    unknown = sorted(set(factors) - allowed)
    missing = sorted(set(MODEL_INPUTS) - set(factors))
    if unknown or missing:
        errors = {k: _("unknown factor") for k in unknown} | {k: _("required") for k in missing}
        return error_response(422, _("The factors are not complete or not known: {names}.",
                                     names=", ".join(unknown + missing)), field_errors=errors)
    try:
        version, model = load_active(read_session())
        score, klass, reasons = model.score_one(dict(factors), entity_id="request", config=class_config())
    except ScoringError as exc:
        return _scoring_error(exc)
    return _ok({"score": round(score, 6), "risk_class": klass, "reasons": reasons, "model_version": version})


# --------------------------------------------------------------------------------------- documentation
@bp.route("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document, built from the app's own ``/api/v1`` rules (public)."""
    from web.api.spec import build

    return jsonify(build())


@bp.route("/docs")
def docs():
    """The OpenAPI document as a readable table (public)."""
    from web.api.spec import build, rows

    doc = build()
    return render_template("api/docs.html", doc=doc, rows=rows(doc))


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError):
    from web.errors import status_of

    extra = {k: v for k, v in (exc.details or {}).items() if k in ("field", "field_errors")}
    return error_response(status_of(exc), str(exc), **extra)
