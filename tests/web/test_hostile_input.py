"""Hostile input over real HTTP (issue 17, finding 8): whatever a stranger or a signed-in user sends gets a
4xx, never a 500 or a traceback — oversized integers in paths (404) and query arguments (400 naming the
parameter), JSON bodies and forms nested too deeply (400 naming the path, nothing stored), bodies over the
size limit (413) — and data nested deeper than the pages show, stored before the limit, is shown cut short."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from engine.runtime import clock, users
from engine.runtime.models import HumanTask, ProcessInstance
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes, start_task
from web import params

HUGE = "9" * 30
PROCESS = "hostile_extension"
DUE = "2030-01-01T00:00:00+08:00"


def _deep(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def task_id(web_env):
    """An open extension-request task for the officers' group."""
    with web_env.tx() as s:
        deploy_task_processes(web_env.runtime, s, (PROCESS, {"form_id": "extension_request"}))
        e = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        return start_task(web_env.runtime, s, PROCESS, key=e.uscc, due=clock.now() + timedelta(days=3)).id


@pytest.fixture
def token(web_env):
    def make(username: str) -> dict:
        with web_env.tx() as s:
            return {"Authorization": f"Bearer {users.issue_token(s, username, 'test', actor='admin')}"}
    return make


def _instances(web_env) -> int:
    with web_env.tx() as s:
        return s.scalar(select(func.count()).select_from(ProcessInstance))


def _bad_request(r, name: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert name in (r.json()["error"]["message"] if "json" in r.headers["Content-Type"] else r.text)


# ------------------------------------------------------------------------------------------ integers
@pytest.mark.parametrize("path", [f"/public/{HUGE}", f"/public/{'9' * 5000}", f"/public/{2 ** 63}"])
def test_oversized_ids_in_public_paths_are_404(live, path):
    r = requests.get(live + path)
    assert r.status_code == 404, (r.status_code, r.text[:200])


@pytest.mark.parametrize("path, name", [(f"/public/?page={HUGE}", "page"), (f"/public/?page=-{HUGE}", "page"),
                                        (f"/public/feed.json?offset={HUGE}", "offset"),
                                        (f"/public/feed.json?limit={HUGE}", "limit"),
                                        ("/public/feed.json?offset=x1", "offset")])
def test_oversized_query_integers_anonymous_are_400_naming_them(live, path, name):
    _bad_request(requests.get(live + path, headers={"Accept": "text/html"}), name)


def test_public_page_numbers_still_work(live):
    assert requests.get(live + "/public/?page=2").status_code == 200
    assert requests.get(live + f"/public/?page={params.ARG_MAX // 30}").status_code == 200
    assert requests.get(live + "/public/feed.json?offset=1000000000000").json()["items"] == []


@pytest.mark.parametrize("role, path", [("supervisor", f"/audit/instances/{HUGE}"),
                                        ("supervisor", f"/audit/instances/1/at/{HUGE}"),
                                        ("officer", f"/inbox/tasks/{HUGE}"), ("officer", f"/inbox/evidence/{HUGE}"),
                                        ("supervisor", f"/supervise/incidents/{HUGE}/retry")])
def test_oversized_ids_signed_in_are_404(http, role, path):
    user = http(role)
    r = user.post(path) if path.endswith("retry") else user.get(path)
    assert r.status_code in (404, 405), (path, r.status_code, r.text[:200])


@pytest.mark.parametrize("role, path, name", [("officer", f"/inbox/?page={HUGE}", "page"),
                                              ("officer", f"/inbox/?campaign={HUGE}", "campaign"),
                                              ("officer", f"/inbox/?min_priority=-{HUGE}", "min_priority"),
                                              ("supervisor", f"/audit/?page={HUGE}", "page"),
                                              ("admin", f"/admin/audit?page={HUGE}", "page"),
                                              ("supervisor", f"/supervise/hazards?page={HUGE}", "page"),
                                              ("supervisor", f"/supervise/campaigns?campaign={HUGE}", "campaign"),
                                              ("designer", f"/designer/diff?process=x&a={HUGE}", "a"),
                                              ("designer", f"/designer/process/x/edit?version={HUGE}", "version")])
def test_oversized_query_integers_signed_in_are_400(http, role, path, name):
    """Every area reads its integer arguments through web/params.py: 400 naming the argument."""
    _bad_request(http(role).get(path), name)


@pytest.mark.parametrize("path, status, name", [(f"/tasks?offset={HUGE}", 400, "offset"),
                                                (f"/tasks?campaign={HUGE}", 400, "campaign"),
                                                (f"/tasks?limit=-{HUGE}", 400, "limit"),
                                                (f"/tasks/{HUGE}", 404, None), (f"/instances/{HUGE}", 404, None),
                                                (f"/instances/{HUGE}/history", 404, None)])
def test_oversized_integers_in_the_api(live, token, path, status, name):
    r = requests.get(live + "/api/v1" + path, headers=token("officer"))
    assert r.status_code == status, (r.status_code, r.text[:200])
    assert r.json()["error"]["status"] == status
    if name:
        assert name in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------------- nesting
def test_deep_json_is_refused_naming_the_path_and_nothing_is_stored(live, web_env, token, task_id):
    before = _instances(web_env)
    r = requests.post(live + "/api/v1/instances", headers=token("officer"),
                      json={"process_id": PROCESS, "data": {"due": DUE, "deep": _deep(params.MAX_DEPTH + 8)}})
    _bad_request(r, "data.deep[0][0]")
    ok = requests.post(live + "/api/v1/instances", headers=token("officer"),
                       json={"process_id": PROCESS, "data": {"due": DUE, "shallow": _deep(params.MAX_DEPTH - 4)}})
    assert ok.status_code == 201, ok.text
    assert _instances(web_env) == before + 1
    r = requests.post(live + f"/api/v1/tasks/{task_id}/complete", headers=token("officer"),
                      json={"rev": 1, "data": {"reason": _deep(500, "x")}})
    _bad_request(r, "data.reason")


def test_json_too_deep_to_parse_is_400(live, token, task_id):
    body = "[" * 200_000 + "]" * 200_000
    r = requests.post(live + f"/api/v1/tasks/{task_id}/complete", data=body,
                      headers={**token("officer"), "Content-Type": "application/json"})
    _bad_request(r, "(body)")
    r = requests.post(live + f"/api/v1/tasks/{task_id}/complete", data=body,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400  # without a token: the CSRF check's 400, never a 500


def test_deep_form_fields_are_refused(http, web_env, task_id):
    officer = http("officer")
    name = "reason" + "[x]" * (params.MAX_DEPTH + 1)
    r = officer.post(f"/inbox/tasks/{task_id}?rev=1", {name: "1"}, headers={"Accept": "text/html"})
    assert r.status_code == 400 and "reason[x][x]" in r.text
    with web_env.tx() as s:
        assert s.get(HumanTask, task_id).status == "open"


def test_bodies_over_the_size_limit_are_413(client, app):
    """MAX_CONTENT_LENGTH: the upload size plus 64 KiB (1 MB in the tests) → 413, a page or JSON."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"data": {"x": "a" * limit}})
    r = client.post("/api/v1/instances", data=big, content_type="application/json")
    assert r.status_code == 413 and r.get_json()["error"]["status"] == 413
    r = client.post("/inbox/tasks/1?rev=1", data={"reason": "a" * limit}, headers={"Accept": "text/html"})
    assert r.status_code == 413 and "<html" in r.get_data(as_text=True)


# ------------------------------------------------------------------------------- stored deep data shown
def test_stored_deep_data_is_shown_cut_short_or_refused_cleanly(http, live, web_env, token, task_id):
    """Data stored before the input limit (here through the runtime): the audit page and the API history
    show it cut at a depth with an ellipsis; the task page, whose workflow cannot be loaded that deep,
    answers 422 with a message, not a 500."""
    with web_env.tx() as s:
        out = web_env.runtime.start(s, PROCESS, data={"due": DUE, "deep": _deep(500)})
        iid = out.instance.id
        tid = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == iid)).one()
    r = http("supervisor").get(f"/audit/instances/{iid}")
    assert r.status_code == 200 and params.ELLIPSIS in r.text and len(r.text) < 150_000
    r = requests.get(live + f"/api/v1/instances/{iid}/history", headers=token("officer"))
    assert r.status_code in (200, 403), r.text[:200]
    r = requests.get(live + f"/api/v1/instances/{iid}/history", headers=token("auditor"))
    assert r.status_code == 200 and params.ELLIPSIS in json.dumps(r.json(), ensure_ascii=False)
    r = http("officer").get(f"/inbox/tasks/{tid}")
    assert r.status_code in (200, 422), (r.status_code, r.text[:200])
    assert "Traceback" not in r.text
    if r.status_code == 422:  # SpiffWorkflow's restore recurses once per level: the page says why
        assert "嵌套层级过深" in r.text


def test_clip_and_too_deep():
    assert params.clip({"a": [[1]]}, 2) == {"a": [params.ELLIPSIS]}
    assert params.too_deep({"a": [[1]]}, 2) == "a[0]"
    assert params.too_deep({"a": [[1]]}, 3) is None
    assert params.too_deep(_deep(10_000), 32) == "[0]" * 32  # no recursion, any depth
