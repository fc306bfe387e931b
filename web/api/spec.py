"""The OpenAPI 3.1 document of ``/api/v1``, generated from the app's URL map and the operation table below.

Every rule under ``/api/v1`` registered in the app becomes an operation; its summary, roles, parameters,
body and responses come from :data:`OPERATIONS` (keyed by endpoint). A rule missing from the table is
still listed, marked ``x-undocumented`` (a test fails on it), so the document never silently lags the app.
"""
from __future__ import annotations

import re
from typing import Any

from flask import current_app

from engine import policy

#: the largest page of ``GET /api/v1/tasks``
MAX_LIMIT = 200

PREFIX = "/api/v1"
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_ERR_AUTH = {"401": _error("No valid bearer token or session."), "403": _error("The caller's role or the object "
                                                                                "does not allow it.")}
_ISO = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, dict] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "message": {"type": "string"},
                       "field": {"type": "string", "description": "the body field at fault"},
                       "field_errors": {"type": "object", "additionalProperties": {"type": "string"},
                                        "description": "form field path → message (422)"},
                       "rev": {"type": "integer", "description": "the instance's current rev (409 stale)"}}}}},
    "StartInstance": {"type": "object", "required": ["process_id"], "additionalProperties": False, "properties": {
        "process_id": {"type": "string", "description": "a deployed process id"},
        "business_key": {"type": ["string", "null"], "maxLength": 120, "description": "usually the entity's USCC"},
        "data": {"type": "object", "description": "start data (task data of the start event)"}}},
    "Started": {"type": "object", "required": ["instance_id", "status", "rev"], "properties": {
        "instance_id": {"type": "integer"}, "status": {"type": "string"}, "rev": {"type": "integer"},
        "process_id": {"type": "string"}, "business_key": {"type": ["string", "null"]}, "url": {"type": "string"},
        "failure": {"type": "object", "description": "a service task failed after the start (retried by a job)"}}},
    "Task": {"type": "object", "required": ["task_id", "instance_id", "bpmn_id"], "properties": {
        "task_id": {"type": "integer"}, "instance_id": {"type": "integer"}, "bpmn_id": {"type": "string"},
        "name": {"type": ["string", "null"]}, "process_id": {"type": "string"},
        "business_key": {"type": ["string", "null"]}, "form_id": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": ["open", "completed", "cancelled"]},
        "assignee": {"type": ["string", "null"]}, "candidate_groups": {"type": "array", "items": {"type": "string"}},
        "priority": {"type": "integer"}, "due_at": _ISO, "created_at": _ISO, "claimed_at": _ISO,
        "completed_at": _ISO, "completed_by": {"type": ["string", "null"]},
        "rev": {"type": "integer", "description": "the instance's rev (send it back when completing)"}}},
    "InboxRow": {"type": "object", "required": ["task_id", "instance_id", "bpmn_id"], "properties": {
        "task_id": {"type": "integer"}, "instance_id": {"type": "integer"}, "bpmn_id": {"type": "string"},
        "name": {"type": ["string", "null"]}, "process_id": {"type": "string"},
        "business_key": {"type": ["string", "null"]}, "form_id": {"type": ["string", "null"]},
        "assignee": {"type": ["string", "null"]}, "candidate_groups": {"type": "array", "items": {"type": "string"}},
        "priority": {"type": "integer"}, "due_at": _ISO, "created_at": _ISO, "reminded_at": _ISO,
        "escalated_at": _ISO, "entity_name": {"type": ["string", "null"]}, "district": {"type": ["string", "null"]},
        "campaign_id": {"type": ["integer", "null"]}, "campaign_key": {"type": ["string", "null"]}}},
    "TaskList": {"type": "object", "required": ["tasks", "total"], "properties": {
        "tasks": {"type": "array", "items": _ref("InboxRow")}, "total": {"type": "integer"},
        "capped": {"type": "boolean", "description": "the total stopped counting at 1000"},
        "limit": {"type": "integer"}, "offset": {"type": "integer"}, "next_offset": {"type": ["integer", "null"]}}},
    "CompleteTask": {"type": "object", "required": ["rev"], "properties": {
        "data": {"type": "object", "description": "the form's fields (JSON values; dates as YYYY-MM-DD)"},
        "rev": {"type": "integer", "description": "the instance rev read with the task"}}},
    "Completed": {"type": "object", "required": ["task_id", "instance_id", "rev"], "properties": {
        "task_id": {"type": "integer"}, "instance_id": {"type": "integer"}, "instance_status": {"type": "string"},
        "rev": {"type": "integer"}, "failure": {"type": "object"},
        "queued": {"type": "array", "description": "elements the step queued for the worker (asynchronous "
                   "continuations, e.g. a campaign's launch): they run after this response",
                   "items": {"type": "object", "properties": {"bpmn_id": {"type": "string"},
                                                              "process_id": {"type": "string"}}}}}},
    "Instance": {"type": "object", "required": ["instance_id", "process_id", "status", "rev"], "properties": {
        "instance_id": {"type": "integer"}, "process_id": {"type": "string"}, "definition_id": {"type": "integer"},
        "business_key": {"type": ["string", "null"]}, "status": {"type": "string"}, "rev": {"type": "integer"},
        "parent_instance_id": {"type": ["integer", "null"]}, "started_by": {"type": "string"},
        "started_at": _ISO, "ended_at": _ISO, "status_reason": {"type": ["string", "null"]},
        "open_tasks": {"type": "array", "items": _ref("Task")}}},
    "HistoryEvent": {"type": "object", "required": ["seq", "at", "actor", "kind"], "properties": {
        "seq": {"type": "integer"}, "at": _ISO, "actor": {"type": "string"}, "kind": {"type": "string"},
        "bpmn_id": {"type": ["string", "null"]}, "flow_ids": {"type": "array", "items": {"type": "string"}},
        "data_diff": {"type": "object", "description": "key → {old, new} or {deleted}"},
        "detail": {"type": "object"}, "hash": {"type": "string"}}},
    "History": {"type": "object", "required": ["instance_id", "events"], "properties": {
        "instance_id": {"type": "integer"}, "process_id": {"type": "string"}, "status": {"type": "string"},
        "events": {"type": "array", "items": _ref("HistoryEvent")}}},
    "Reason": {"type": "object", "properties": {
        "factor": {"type": "string"}, "value": {}, "delta": {"type": "number"}, "zh": {"type": "string"},
        "en": {"type": "string"}}},
    "Score": {"type": "object", "required": ["score", "risk_class", "reasons", "model_version"], "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "risk_class": {"type": "string", "enum": ["A", "B", "C", "D"]},
        "reasons": {"type": "array", "items": _ref("Reason")}, "model_version": {"type": "string"},
        "uscc": {"type": "string"}, "entity_id": {"type": "integer"}, "name": {"type": "string"},
        "stored": {"type": "object", "description": "the score recorded on the entity's row"}}},
    "Factors": {"type": "object", "required": ["factors"], "properties": {"factors": {
        "type": "object", "description": "every model input: the twelve risk factors and district; "
                                         "optional serious_list / abnormal_list flags for the class overrides",
        "properties": {
            "years_in_business": {"type": "number"}, "subscribed_capital": {"type": "number"},
            "employee_count": {"type": "integer"}, "industry_section": {"type": "string"},
            "entity_type": {"type": "string"}, "annual_report_late_3y": {"type": "integer"},
            "penalties_3y": {"type": "integer"}, "abnormal_list_ever": {"type": "boolean"},
            "complaints_12m": {"type": "integer"}, "reg_changes_24m": {"type": "integer"},
            "shared_address_count": {"type": "integer"}, "linked_bad_entities": {"type": "integer"},
            "district": {"type": "string", "pattern": "^[0-9]{6}$"}, "serious_list": {"type": "boolean"},
            "abnormal_list": {"type": "boolean"}}}}},
}

_TASK_ID = {"name": "task_id", "description": "the human task's id (task_id of the task list)"}
_INSTANCE_ID = {"name": "instance_id", "description": "the process instance's id"}

#: endpoint → operation (without the path parameters, which come from the rule)
OPERATIONS: dict[str, dict[str, Any]] = {
    "api.start_instance": {
        "summary": "Start a process instance", "roles": policy.STARTERS, "tags": ["instances"],
        "description": "Starts the latest deployed version; service tasks up to the first wait state run now.",
        "body": ("StartInstance", "process, business key and start data"),
        "responses": {"201": _json(_ref("Started"), "Started."),
                      "400": _error("Invalid body (names the field)."),
                      "404": _error("The process is not deployed."), **_ERR_AUTH}},
    "api.get_instance": {
        "summary": "Read an instance and its open tasks", "roles": policy.STARTERS + policy.INSTANCE_READERS,
        "tags": ["instances"], "params": {"instance_id": _INSTANCE_ID},
        "description": "Auditors and supervisors read any instance in their jurisdiction; others only instances "
                       "they started, worked on, or may claim a task of.",
        "responses": {"200": _json(_ref("Instance"), "The instance."), "404": _error("No such instance."),
                      **_ERR_AUTH}},
    "api.instance_history": {
        "summary": "An instance's audit history", "roles": policy.STARTERS + policy.INSTANCE_READERS,
        "tags": ["instances"], "params": {"instance_id": _INSTANCE_ID},
        "description": "Every event of the instance's hash chain in order, with its data changes.",
        "responses": {"200": _json(_ref("History"), "The events."), "404": _error("No such instance."),
                      **_ERR_AUTH}},
    "api.list_my_tasks": {
        "summary": "The caller's inbox", "roles": policy.TASK_WORKERS, "tags": ["tasks"],
        "description": "Open tasks assigned to the caller and unclaimed tasks of their groups, as on the inbox "
                       "page.",
        "query": [
            _query("scope", {"type": "string", "enum": ["all", "mine", "groups"], "default": "all"},
                   "mine = assigned to me, groups = unclaimed in my groups"),
            _query("process", {"type": "string"}, "a process id"),
            _query("campaign", {"type": "integer", "minimum": 1}, "a campaign instance id"),
            _query("entity", {"type": "string"}, "a USCC or part of an entity name"),
            _query("due", {"type": "string", "enum": ["overdue", "today", "week", "none"]}, "due-date filter"),
            _query("min_priority", {"type": "integer"}, "lowest priority shown"),
            _query("sort", {"type": "string", "enum": ["due", "priority", "created"], "default": "due"}, "order"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
                   "page size"),
            _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip")],
        "responses": {"200": _json(_ref("TaskList"), "A page of tasks."), "400": _error("A bad query parameter."),
                      **_ERR_AUTH}},
    "api.get_task": {
        "summary": "Read a task (with its instance's rev)", "roles": policy.TASK_WORKERS, "tags": ["tasks"],
        "params": {"task_id": _TASK_ID},
        "responses": {"200": _json(_ref("Task"), "The task."), "404": _error("No such task."), **_ERR_AUTH}},
    "api.claim_task": {
        "summary": "Claim a task of one of my groups", "roles": policy.TASK_WORKERS, "tags": ["tasks"],
        "params": {"task_id": _TASK_ID},
        "responses": {"200": _json(_ref("Task"), "Claimed (also when already mine)."),
                      "404": _error("No such task."),
                      "409": _error("Claimed by someone else, completed or cancelled."), **_ERR_AUTH}},
    "api.unclaim_task": {
        "summary": "Give a claimed task back to its groups", "roles": policy.TASK_WORKERS, "tags": ["tasks"],
        "params": {"task_id": _TASK_ID},
        "responses": {"200": _json(_ref("Task"), "Back in the groups' queue."), "404": _error("No such task."),
                      "409": _error("Completed or cancelled."), **_ERR_AUTH}},
    "api.complete_task": {
        "summary": "Complete a task with its form data", "roles": policy.TASK_WORKERS, "tags": ["tasks"],
        "params": {"task_id": _TASK_ID},
        "description": "Validated against the task's form; invalid data or a stale rev changes nothing.",
        "body": ("CompleteTask", "the form data and the rev it was prepared at"),
        "responses": {"200": _json(_ref("Completed"), "Completed; the process moved on."),
                      "400": _error("The body is not an object or lacks rev."),
                      "404": _error("No such task."),
                      "409": _error("Stale rev, or the task is completed or cancelled."),
                      "422": _error("The data is not valid for the form (field_errors)."), **_ERR_AUTH}},
    "api.entity_score": {
        "summary": "Score a registered entity now", "roles": policy.SCORE_READERS, "tags": ["scoring"],
        "params": {"uscc": {"name": "uscc", "description": "the entity's unified social credit code"}},
        "description": "Scores with the active model without storing; the stored score is shown beside.",
        "responses": {"200": _json(_ref("Score"), "Score, class A–D, reasons, model version."),
                      "404": _error("No such entity."), "503": _error("No usable active model."), **_ERR_AUTH}},
    "api.score_factors": {
        "summary": "Score a set of factors (what-if)", "roles": policy.WHAT_IF_SCORERS, "tags": ["scoring"],
        "body": ("Factors", "every model input"),
        "responses": {"200": _json(_ref("Score"), "Score, class A–D, reasons, model version."),
                      "400": _error("The body is not an object."),
                      "422": _error("Missing, unknown or out-of-range factors (field_errors)."),
                      "503": _error("No usable active model."), **_ERR_AUTH}},
    "api.openapi": {
        "summary": "This OpenAPI document", "roles": (), "tags": ["documentation"], "public": True,
        "responses": {"200": {"description": "OpenAPI 3.1 JSON.", "content": {"application/json": {
            "schema": {"type": "object"}}}}}},
    "api.docs": {
        "summary": "This document as an HTML table", "roles": (), "tags": ["documentation"], "public": True,
        "responses": {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}}},
}

_PATH_TYPES = {"int": {"type": "integer", "minimum": 0}, "string": {"type": "string"}, None: {"type": "string"}}


def _path_params(rule: str, documented: dict) -> tuple[str, list[dict]]:
    params = []
    for conv, name in _CONVERTER.findall(rule):
        doc = documented.get(name, {})
        params.append({"name": name, "in": "path", "required": True, "schema": _PATH_TYPES.get(conv or None,
                                                                                                {"type": "string"}),
                       "description": doc.get("description", name)})
    return _CONVERTER.sub(r"{\2}", rule), params


def _operation(endpoint: str, method: str, path_params: list[dict]) -> dict:
    spec = OPERATIONS.get(endpoint)
    if spec is None:
        return {"operationId": endpoint.split(".", 1)[-1], "summary": endpoint, "x-undocumented": True,
                "parameters": path_params, "responses": {"default": {"description": "undocumented"}}}
    op: dict[str, Any] = {"operationId": endpoint.split(".", 1)[-1], "summary": spec["summary"],
                          "tags": spec.get("tags", [])}
    if spec.get("description"):
        op["description"] = spec["description"]
    params = path_params + list(spec.get("query", []))
    if params:
        op["parameters"] = params
    if "body" in spec:
        schema, description = spec["body"]
        op["requestBody"] = {"required": True, "description": description,
                             "content": {"application/json": {"schema": _ref(schema)}}}
    op["responses"] = spec["responses"]
    if spec.get("public"):
        op["security"] = []
    else:
        op["x-roles"] = list(spec["roles"])
    return op


def query_names(endpoint: str | None) -> frozenset[str]:
    """The query parameters an operation declares (none for one the table does not describe)."""
    return frozenset(q["name"] for q in OPERATIONS.get(endpoint or "", {}).get("query", []))


def api_rules():
    """(rule, method, endpoint) of every ``/api/v1`` rule in the running app."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule == PREFIX or rule.rule.startswith(PREFIX + "/"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule.rule, method, rule.endpoint


def build() -> dict:
    paths: dict[str, dict] = {}
    for rule, method, endpoint in api_rules():
        documented = OPERATIONS.get(endpoint, {}).get("params", {})
        path, params = _path_params(rule, documented)
        paths.setdefault(path, {})[method.lower()] = _operation(endpoint, method, params)
    return {
        "openapi": "3.1.0",
        "info": {"title": "regflow API", "version": "1",
                 "description": "Start process instances, work on tasks, read histories and risk scores. "
                                "Authenticate with a bearer token issued by an administrator (Administration → "
                                "user → API tokens). x-roles names the system roles an operation accepts; the "
                                "object checks (jurisdiction, assignee, candidate groups) come on top. Errors "
                                "are {\"error\": {\"status\", \"message\", ...}}."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "bearerFormat": "rf_… (opaque)"}},
                       "schemas": SCHEMAS},
    }


def _schema_text(schema: dict | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    t = schema.get("type", "")
    text = "|".join(t) if isinstance(t, list) else str(t)
    if "enum" in schema:
        text += " (" + ", ".join(map(str, schema["enum"])) + ")"
    return text


def rows(doc: dict) -> list[dict]:
    """One row per operation for the HTML table."""
    out = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody")
            out.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "roles": op.get("x-roles", []),
                "public": op.get("security") == [],
                "params": [(p["name"], p["in"], _schema_text(p.get("schema")), p.get("description", ""))
                           for p in op.get("parameters", [])],
                "body": _schema_text(body["content"]["application/json"]["schema"]) if body else "",
                "responses": [(code, r.get("description", ""),
                               _schema_text(next(iter(r.get("content", {}).values()), {}).get("schema")))
                              for code, r in op["responses"].items()],
            })
    return out
