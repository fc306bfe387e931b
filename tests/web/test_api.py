"""The JSON API /api/v1 over real HTTP with bearer tokens: start an instance, list / claim / complete
tasks (422 with nothing changed, 409 stale or done, 403 not yours), histories, scores, 401 on bad
tokens, the browser session with CSRF, and an OpenAPI document that covers every registered rule."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from http.cookiejar import DefaultCookiePolicy

import pytest
import requests
from sqlalchemy import func, select

from engine.runtime import clock, users
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance
from scoring.factors import MODEL_INPUTS
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes

PROCESS = "api_extension"
VALID = {"received_on": "2026-10-09", "reason": "设备到货延迟", "requested_until": "2026-10-30",
         "decision": "approve", "extension_days": 10, "opinion": "同意延期十个工作日"}


class Api:
    """A machine client: one keep-alive ``requests`` session sending the bearer token (no cookies kept)."""

    def __init__(self, base: str, token: str | None):
        self.base = base
        self.http = requests.Session()
        self.http.cookies.set_policy(_NoCookies())
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **kw):
        return self.http.get(self.base + "/api/v1" + path, headers=self.headers, **kw)

    def post(self, path: str, body=None):
        return self.http.post(self.base + "/api/v1" + path, json=body, headers=self.headers)


class _NoCookies(DefaultCookiePolicy):
    def set_ok(self, cookie, request):
        return False


@pytest.fixture
def api(web_env, live):
    """``api("officer")`` → a client with a fresh token of that user; the task process is deployed."""
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, (PROCESS, {"form_id": "extension_request"}))

    def make(username: str) -> Api:
        with web_env.tx() as s:
            token = users.issue_token(s, username, "test", actor="admin")
        return Api(live, token)
    return make


@pytest.fixture
def entity(web_env):
    with web_env.tx() as s:
        e = s.scalars(select(Entity).where(Entity.risk_class.is_not(None)).order_by(Entity.id).limit(1)).one()
        return {"uscc": e.uscc, "id": e.id, "district": e.district}


def _start(client: Api, key: str) -> int:
    due = (clock.now() + timedelta(days=3)).isoformat()
    r = client.post("/instances", {"process_id": PROCESS, "business_key": key, "data": {"due": due}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "running" and body["url"] == f"/api/v1/instances/{body['instance_id']}"
    return body["instance_id"]


def _state(web_env, task_id: int) -> tuple:
    with web_env.tx() as s:
        ht = s.get(HumanTask, task_id)
        inst = s.get(ProcessInstance, ht.instance_id)
        n = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == inst.id))
        return ht.status, ht.assignee, inst.rev, inst.status, n


def _error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["status"] == status and err["message"]
    return err


def test_missing_or_invalid_token_is_401_json(api, live, web_env):
    api("officer")
    for headers in ({}, {"Authorization": "Bearer rf_not-a-real-token"}, {"Authorization": "Bearer nonsense"}):
        r = requests.get(live + "/api/v1/tasks", headers=headers)
        _error(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = requests.post(live + "/api/v1/instances", json={"process_id": PROCESS},
                      headers={"Authorization": "Bearer rf_forged"})
    _error(r, 401)
    # no credentials at all: 401 too (not the browser's CSRF refusal: there is no session to forge)
    r = requests.post(live + "/api/v1/instances", json={"process_id": PROCESS})
    _error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # a deactivated user's token stops working
    client = api("officer2")
    assert client.get("/tasks").status_code == 200
    with web_env.tx() as s:
        users.set_active(s, "officer2", False, actor="admin")
    _error(client.get("/tasks"), 401)


def test_start_list_claim_and_complete(api, web_env, entity):
    officer, officer2 = api("officer"), api("officer2")
    instance_id = _start(officer, entity["uscc"])
    r = officer.get("/tasks", params={"scope": "groups", "process": PROCESS})
    assert r.status_code == 200
    listed = [t for t in r.json()["tasks"] if t["instance_id"] == instance_id]
    assert len(listed) == 1
    task = listed[0]
    assert task["bpmn_id"] == "work" and task["assignee"] is None and task["candidate_groups"] == ["officers"]
    assert task["business_key"] == entity["uscc"] and datetime.fromisoformat(task["due_at"]).tzinfo is not None
    task_id = task["task_id"]
    assert r.json()["total"] >= 1
    _error(officer.get("/tasks", params={"scope": "everyone"}), 400)
    _error(officer.get("/tasks", params={"limit": "1000"}), 400)

    r = officer.post(f"/tasks/{task_id}/claim")
    assert r.status_code == 200 and r.json()["assignee"] == "officer"
    rev = r.json()["rev"]
    assert officer.get(f"/tasks/{task_id}").json()["rev"] == rev
    assert "已被 officer 认领" in _error(officer2.post(f"/tasks/{task_id}/claim"), 409)["message"]
    assert [t for t in officer2.get("/tasks").json()["tasks"] if t["task_id"] == task_id] == []

    # someone else's task: 403, nothing changed
    before = _state(web_env, task_id)
    _error(officer2.post(f"/tasks/{task_id}/complete", {"data": VALID, "rev": rev}), 403)
    _error(officer2.post(f"/tasks/{task_id}/unclaim"), 403)
    # invalid data: 422 with field errors, nothing changed
    bad = dict(VALID, extension_days=99, requested_until="not a date")
    err = _error(officer.post(f"/tasks/{task_id}/complete", {"data": bad, "rev": rev}), 422)
    assert set(err["field_errors"]) == {"extension_days", "requested_until"}
    err = _error(officer.post(f"/tasks/{task_id}/complete", {"data": dict(VALID, surprise=1), "rev": rev}), 422)
    assert "surprise" in err["field_errors"]
    # wrong rev: 409, nothing changed; no rev or no object: 400
    err = _error(officer.post(f"/tasks/{task_id}/complete", {"data": VALID, "rev": rev - 1}), 409)
    assert err["rev"] == rev
    _error(officer.post(f"/tasks/{task_id}/complete", {"data": VALID}), 400)
    _error(officer.post(f"/tasks/{task_id}/complete", ["not", "an", "object"]), 400)
    assert _state(web_env, task_id) == before

    r = officer.post(f"/tasks/{task_id}/complete", {"data": VALID, "rev": rev})
    assert r.status_code == 200, r.text
    assert r.json()["instance_status"] == "completed" and r.json()["rev"] > rev
    assert _state(web_env, task_id)[0] == "completed"
    assert "已由 officer 办结" in _error(
        officer.post(f"/tasks/{task_id}/complete", {"data": VALID, "rev": r.json()["rev"]}), 409)["message"]
    _error(officer.post("/tasks/999999/claim"), 404)


def test_unclaim_and_roles(api, entity):
    officer, designer, auditor = api("officer"), api("designer"), api("auditor")
    instance_id = _start(officer, entity["uscc"])
    task_id = officer.get(f"/instances/{instance_id}").json()["open_tasks"][0]["task_id"]
    officer.post(f"/tasks/{task_id}/claim")
    r = officer.post(f"/tasks/{task_id}/unclaim")
    assert r.status_code == 200 and r.json()["assignee"] is None
    # designers deploy, they do not run cases; auditors read, they do not work on tasks
    _error(designer.post("/instances", {"process_id": PROCESS}), 403)
    _error(designer.get("/tasks"), 403)
    _error(auditor.post(f"/tasks/{task_id}/claim"), 403)
    _error(officer.post("/instances", {"process_id": "no_such_process"}), 404)
    err = _error(officer.post("/instances", {"process_id": PROCESS, "data": [1, 2]}), 400)
    assert err["field"] == "data"
    _error(officer.post("/instances", {"process_id": PROCESS, "colour": "red"}), 400)


def test_history_shape_and_who_may_read_it(api, entity):
    officer, officer2, auditor, supervisor = api("officer"), api("officer2"), api("auditor"), api("supervisor")
    instance_id = _start(officer, entity["uscc"])
    task_id = officer.get(f"/instances/{instance_id}").json()["open_tasks"][0]["task_id"]
    rev = officer.post(f"/tasks/{task_id}/claim").json()["rev"]
    assert officer.post(f"/tasks/{task_id}/complete", {"data": VALID, "rev": rev}).status_code == 200

    r = officer.get(f"/instances/{instance_id}/history")
    assert r.status_code == 200
    doc = r.json()
    assert doc["instance_id"] == instance_id and doc["status"] == "completed"
    events = doc["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert {"seq", "at", "actor", "kind", "bpmn_id", "flow_ids", "data_diff"} <= set(e)
        assert isinstance(e["flow_ids"], list) and isinstance(e["data_diff"], dict)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "instance_started" and "task_claimed" in kinds and "task_completed" in kinds
    done = next(e for e in events if e["kind"] == "task_completed")
    assert done["actor"] == "officer" and done["bpmn_id"] == "work"
    assert done["data_diff"]["decision"] == {"new": "approve"}
    assert events[0]["actor"] == "officer"

    for reader in (auditor, supervisor):
        assert reader.get(f"/instances/{instance_id}/history").status_code == 200
        assert reader.get(f"/instances/{instance_id}").json()["status"] == "completed"
    # officer2 never worked on it (and no open task is left to claim)
    _error(officer2.get(f"/instances/{instance_id}/history"), 403)
    _error(officer2.get(f"/instances/{instance_id}"), 403)
    _error(auditor.get("/instances/999999/history"), 404)


def test_jurisdiction_is_checked(api, web_env, entity):
    officer = api("officer")
    instance_id = _start(officer, entity["uscc"])
    other = "410185" if entity["district"] != "410185" else "410102"
    with web_env.tx() as s:
        users.set_jurisdiction(s, "officer2", [other], actor="admin")
    officer2 = api("officer2")
    task_id = officer.get(f"/instances/{instance_id}").json()["open_tasks"][0]["task_id"]
    assert "管辖范围" in _error(officer2.post(f"/tasks/{task_id}/claim"), 403)["message"]
    _error(officer2.get(f"/entities/{entity['uscc']}/score"), 403)
    _error(officer2.post("/instances", {"process_id": PROCESS, "business_key": entity["uscc"]}), 403)
    assert _state(web_env, task_id)[1] is None


def test_scores(api, web_env, entity):
    officer, designer = api("officer"), api("designer")
    r = officer.get(f"/entities/{entity['uscc']}/score")
    assert r.status_code == 200, r.text
    got = r.json()
    assert 0.0 <= got["score"] <= 1.0 and got["risk_class"] in "ABCD" and got["model_version"]
    assert isinstance(got["reasons"], list) and all({"factor", "zh", "en"} <= set(x) for x in got["reasons"])
    assert got["stored"]["risk_class"] is not None
    _error(officer.get("/entities/91410100MA00000000/score"), 404)
    _error(designer.get(f"/entities/{entity['uscc']}/score"), 403)

    with web_env.tx() as s:
        e = s.get(Entity, entity["id"])
        factors = {k: getattr(e, k) for k in MODEL_INPUTS}
        factors.update(serious_list=bool(e.serious_list), abnormal_list=bool(e.abnormal_list))
    r = designer.post("/score", {"factors": factors})
    assert r.status_code == 200, r.text
    what_if = r.json()
    assert what_if["score"] == pytest.approx(got["score"], abs=1e-6)
    assert (what_if["risk_class"], what_if["model_version"]) == (got["risk_class"], got["model_version"])
    missing = {k: v for k, v in factors.items() if k != "penalties_3y"}
    err = _error(designer.post("/score", {"factors": missing | {"colour": 1}}), 422)
    assert set(err["field_errors"]) == {"penalties_3y", "colour"}
    err = _error(designer.post("/score", {"factors": factors | {"employee_count": -5}}), 422)
    assert "employee_count" in err["field_errors"]
    err = _error(designer.post("/score", {"factors": factors | {"complaints_12m": "many"}}), 422)
    assert "complaints_12m" in err["field_errors"]
    _error(designer.post("/score", {}), 400)


def test_browser_session_works_with_csrf(http, api, entity):
    officer_api = api("officer")
    instance_id = _start(officer_api, entity["uscc"])
    task_id = officer_api.get(f"/instances/{instance_id}").json()["open_tasks"][0]["task_id"]
    browser = http("officer")
    r = browser.get("/api/v1/tasks?scope=groups")
    assert r.status_code == 200 and any(t["task_id"] == task_id for t in r.json()["tasks"])
    r = browser.http.post(browser.base + f"/api/v1/tasks/{task_id}/claim")  # no CSRF token
    assert r.status_code == 400
    r = browser.http.post(browser.base + f"/api/v1/tasks/{task_id}/claim", headers={"X-CSRF-Token": browser.csrf})
    assert r.status_code == 200 and r.json()["assignee"] == "officer"


def test_openapi_documents_every_api_rule(app, live):
    r = requests.get(live + "/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                                                  "bearerFormat": "rf_… (opaque)"}
    rules = [(rule.rule, m) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
             for m in rule.methods - {"HEAD", "OPTIONS"}]
    assert len(rules) >= 12
    schemas = doc["components"]["schemas"]
    for rule, method in rules:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        op = doc["paths"][path][method.lower()]
        assert not op.get("x-undocumented"), (method, rule)
        assert op["summary"] and op["responses"]
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path)), (method, rule)
        if op.get("security") != []:
            assert op["x-roles"] and {"401", "403"} <= set(op["responses"]), (method, rule)
        if "requestBody" in op:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert ref in schemas
        for resp in op["responses"].values():
            for media in resp.get("content", {}).values():
                ref = media["schema"].get("$ref")
                assert ref is None or ref.rsplit("/", 1)[-1] in schemas
    for endpoint in ("start_instance", "complete_task", "score_factors"):
        op = next(o for p in doc["paths"].values() for o in p.values() if o["operationId"] == endpoint)
        assert "requestBody" in op
    html = requests.get(live + "/api/v1/docs")
    assert html.status_code == 200 and "text/html" in html.headers["Content-Type"]
    for rule, method in rules:
        assert re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule) in html.text
    assert "<script" not in html.text.split("</head>")[1]


def test_refusals_name_the_parameter_or_field(api, live):
    officer = api("officer")
    r = officer.get("/tasks", params={"scope": "everything"})
    assert _error(r, 400)["field"] == "scope"
    r = officer.post("/instances", {"process_id": PROCESS, "": 1, "extra": 2})
    err = _error(r, 400)
    assert err["field"] == "extra" and "'extra'" in err["message"] and "''" in err["message"]


def test_an_undeclared_query_parameter_is_refused_naming_it(api):
    """A misspelt filter must not silently return the unfiltered inbox (schemathesis' negative cases found the API
    answering 200 to parameters its OpenAPI document does not declare)."""
    officer = api("officer")
    r = officer.get("/tasks", params={"campain": "3"})
    err = _error(r, 400)
    assert err["field"] == "campain" and "campain" in err["message"] and "campaign" in err["message"]
    assert officer.get("/tasks", params={"campaign": "3", "scope": "mine"}).status_code == 200
    assert _error(officer.get("/openapi.json", params={"x": "1"}), 400)["field"] == "x"
