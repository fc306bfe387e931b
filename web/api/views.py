"""Routes of the JSON API ``/api/v1``: start instances, read them and their history, list / claim /
unclaim / complete tasks, score entities.

Authentication: a bearer token (``Authorization: Bearer rf_…``, issued on the admin pages) or the browser
session (then POSTs need the CSRF token, as everywhere). Every route checks a role, then calls a command of
:mod:`engine.commands`, which applies the authorization policy (:mod:`engine.policy`) to the object:
jurisdiction (the entity's district), the task's assignee or candidate groups, or for an instance being
an auditor, a supervisor or someone who worked on it. Errors are ``{"error": {"status", "message", …}}``
(:func:`web.errors.error_response`); invalid task data answers 422 with ``field_errors`` and changes nothing.

Who may do what (also in the OpenAPI document, ``x-roles``):

- start an instance: officer, team_leader, supervisor in one of the process' ``startableBy`` groups, for an
  entity of their jurisdiction (a process without ``startableBy`` — rectification, enforcement — is started
  only by the engine);
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

from flask import Blueprint, jsonify, render_template, request, url_for
from sqlalchemy import select

from engine import policy
from engine.commands import instances, tasks
from engine.commands import scoring as scoring_commands
from engine.errors import Conflict, EngineError, InvalidInput
from engine.runtime.models import HumanTask, ProcessInstance
from engine.supervision.inbox import DUE_FILTERS, SCOPES, SORTS, TaskQuery, Viewer, list_tasks
from web import params
from web.api import spec
from web.api.spec import MAX_LIMIT
from web.auth import current_actor, current_user
from web.errors import error_response
from web.extensions import read_session, runtime, write
from web.i18n import current_locale
from web.i18n import gettext as _

bp = Blueprint("api", __name__, url_prefix="/api/v1")



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
    return jsonify(_plain(params.clip(body, 2 * params.MAX_DEPTH))), status


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput(_("The request body must be a JSON object (Content-Type: application/json)."))
    return body


def _int_arg(name: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    return params.int_arg(name, default, minimum=minimum, maximum=maximum)


def _choice_arg(name: str, allowed: tuple[str, ...]) -> str | None:
    value = (request.args.get(name) or "").strip() or None
    if value is not None and value not in allowed:
        raise InvalidInput(_("The parameter “{name}” must be one of {values}, not “{value}”.", name=name,
                             values=", ".join(allowed), value=value), field=name)
    return value


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
    open_tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status == "open")
                            .order_by(HumanTask.id))
    return {"instance_id": inst.id, "process_id": inst.process_id, "definition_id": inst.definition_id,
            "business_key": inst.business_key, "status": inst.status, "rev": inst.rev,
            "parent_instance_id": inst.parent_instance_id, "started_by": inst.started_by,
            "started_at": inst.started_at, "ended_at": inst.ended_at, "status_reason": inst.status_reason,
            "open_tasks": [_task_json(t) for t in open_tasks]}


# -------------------------------------------------------------------------------------------- instances
@bp.route("/instances", methods=["POST"])
@api_roles(*policy.STARTERS)
def start_instance():
    """Body ``{"process_id", "business_key"?, "data"?}``: :func:`engine.commands.instances.start` (the process'
    ``startableBy`` groups and the starter's jurisdiction decide)."""
    body = _body()
    unknown = sorted(set(body) - {"process_id", "business_key", "data"})
    if unknown:
        raise InvalidInput(_("Unknown field(s) in the body: {names}.", names=", ".join(repr(n) for n in unknown)),
                           field=next((n for n in unknown if n.strip()), "body"))
    with write() as s:
        out = instances.start(runtime(), s, current_actor(), body.get("process_id"), body.get("business_key"),
                              body.get("data"))
        inst = out.instance
        result = {"instance_id": inst.id, "status": inst.status, "rev": inst.rev, "process_id": inst.process_id,
                  "business_key": inst.business_key}
        if out.failure:
            result["failure"] = out.failure
    result["url"] = url_for("api.get_instance", instance_id=result["instance_id"])
    return _ok(result, 201)


@bp.route("/instances/<int:instance_id>")
@api_roles(*(policy.STARTERS + policy.INSTANCE_READERS))
def get_instance(instance_id: int):
    s = read_session()
    return _ok(_instance_json(s, instances.read(s, current_actor(), instance_id)))


@bp.route("/instances/<int:instance_id>/history")
@api_roles(*(policy.STARTERS + policy.INSTANCE_READERS))
def instance_history(instance_id: int):
    inst, events = instances.history(read_session(), current_actor(), instance_id)
    return _ok({"instance_id": inst.id, "process_id": inst.process_id, "status": inst.status, "events": [
        {"seq": e.seq, "at": e.at, "actor": e.actor, "kind": e.kind, "bpmn_id": e.bpmn_id,
         "flow_ids": list(e.flow_ids or []), "data_diff": e.data_diff or {}, "detail": e.detail or {},
         "hash": e.hash} for e in events]})


# ------------------------------------------------------------------------------------------------ tasks
@bp.route("/tasks")
@api_roles(*policy.TASK_WORKERS)
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
@api_roles(*policy.TASK_WORKERS)
def get_task(task_id: int):
    s = read_session()
    ht = tasks.authorize(s, current_actor(), task_id)
    return _ok(_task_json(ht, s.get(ProcessInstance, ht.instance_id).rev))


def _task_action(action) -> tuple:
    """Run ``action(session, actor)`` in one transaction; answer the task as it is then."""
    with write() as s:
        ht = action(s, current_actor())
        rev = s.scalar(select(ProcessInstance.rev).where(ProcessInstance.id == ht.instance_id))
        return _ok(_task_json(ht, rev))


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@api_roles(*policy.TASK_WORKERS)
def claim_task(task_id: int):
    return _task_action(lambda s, actor: tasks.claim(runtime(), s, actor, task_id))


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@api_roles(*policy.TASK_WORKERS)
def unclaim_task(task_id: int):
    return _task_action(lambda s, actor: tasks.unclaim(runtime(), s, actor, task_id))


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@api_roles(*policy.TASK_WORKERS)
def complete_task(task_id: int):
    """Body ``{"data": {...}, "rev": n}``: :func:`engine.commands.tasks.complete` checks, in this order, that
    the task exists (404), the caller may work on it (403), the body is well formed (400), it is open (409),
    ``rev`` is current (409), the data is valid for its form (422 with ``field_errors``) — then completes it in
    one transaction."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):  # who may not work on the task learns nothing more: 403 before 400
        tasks.authorize(read_session(), current_actor(), task_id, "complete")
        body = _body()
    try:
        with write() as w:
            out = tasks.complete(runtime(), w, current_actor(), task_id, body.get("data"), rev=body.get("rev"),
                                 lang=current_locale())
            result = {"task_id": task_id, "instance_id": out.instance.id, "instance_status": out.instance.status,
                      "rev": out.instance.rev}
            if out.failure:
                result["failure"] = out.failure
            if out.queued:  # held for the worker (asynchronous continuations): not run in this request
                result["queued"] = [{"bpmn_id": q["bpmn_id"], "process_id": q["process_id"]} for q in out.queued]
    except Conflict as exc:
        return _conflict(task_id, exc, body.get("rev"))
    return _ok(result)


def _conflict(task_id: int, exc: Conflict, sent_rev=None):
    """409 in the caller's language: the task was done or cancelled meanwhile, or its instance moved on."""
    s = read_session()
    s.rollback()
    ht = s.get(HumanTask, task_id)
    if ht is not None and ht.status != "open":
        if ht.status == "completed":
            message = _("Task {id} was already completed by {user}. Nothing was saved.", id=ht.id,
                        user=ht.completed_by or "?")
        else:
            message = _("Task {id} was cancelled (its process moved on or was stopped). Nothing was saved.", id=ht.id)
        return error_response(409, message, task_status=ht.status)
    if "rev" in exc.details:
        current = exc.details["rev"]
        return error_response(409, _("Task {id}: its instance is at rev {current}, not {rev} (someone acted on it "
                                     "since). Nothing was saved: read the task again and resubmit.", id=task_id,
                                     rev=sent_rev, current=current), rev=current)
    return error_response(409, exc.localized(_))


# ---------------------------------------------------------------------------------------------- scoring
@bp.route("/entities/<uscc>/score")
@api_roles(*policy.SCORE_READERS)
def entity_score(uscc: str):
    """Score the entity now with the active model (nothing is stored; the stored score is shown beside)."""
    res = scoring_commands.entity_score(read_session(), current_actor(), uscc)
    entity = res.entity
    return _ok({"uscc": entity.uscc, "entity_id": entity.id, "name": entity.name, "score": res.score,
                "risk_class": res.risk_class, "reasons": res.reasons, "model_version": res.model_version,
                "stored": {"score": entity.risk_score, "risk_class": entity.risk_class,
                           "model_version": entity.model_version, "scored_at": entity.scored_at}})


@bp.route("/score", methods=["POST"])
@api_roles(*policy.WHAT_IF_SCORERS)
def score_factors():
    """Score a set of factors (what-if) with the active model; nothing is stored."""
    return _ok(scoring_commands.what_if(read_session(), current_actor(), _body().get("factors")))


# --------------------------------------------------------------------------------------- documentation
@bp.route("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document, built from the app's own ``/api/v1`` rules (public)."""
    return jsonify(spec.build())


@bp.route("/docs")
def docs():
    """The OpenAPI document as a readable table (public)."""
    doc = spec.build()
    return render_template("api/docs.html", doc=doc, rows=spec.rows(doc))


@bp.before_request
def only_declared_query_parameters():
    """An operation takes the query parameters its OpenAPI entry declares; any other is a 400 naming it, so that
    a misspelt filter (``campain=3``) never silently returns the unfiltered list."""
    unknown = sorted(k for k in request.args if k not in spec.query_names(request.endpoint))
    if unknown:
        allowed = ", ".join(sorted(spec.query_names(request.endpoint))) or _("none")
        raise InvalidInput(_("Unknown query parameter(s) {names}; this operation takes: {allowed}.",
                             names=", ".join(n[:40] for n in unknown[:5]), allowed=allowed), field=unknown[0][:40])


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError):
    """Every engine error (scoring's included) with the status it carries, and its field details."""
    extra = {k: v for k, v in (exc.details or {}).items() if k in ("field", "field_errors", "task_status", "rev")}
    return error_response(exc.http_status, exc.localized(_), **extra)
