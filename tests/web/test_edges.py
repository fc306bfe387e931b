"""One command layer behind three edges: the same raw input completes a task through the web form, the JSON API
and the CLI with identical stored data; the inbox's completion loads the workflow state once."""
from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import select

from engine.runtime import clock, users
from engine.runtime.models import HumanTask, ProcessInstance
from engine.runtime.serializer import StateSerializer
from scoring.models import Entity
from tests.conftest import run_cli
from tests.supervision.test_inbox_service import deploy_task_processes

ROOT = Path(__file__).resolve().parents[2]
PROCESS = "edge_extension"
#: what a person types, as strings (the web can send nothing else): full-width digits and padding that the one
#: validator reads (NFKC for numbers), trims and coerces (dates, the whole number)
RAW = {"received_on": "2026-10-09", "reason": "  设备到货延迟（ＡＢＣ）  ", "requested_until": "2026-10-30",
       "decision": "approve", "extension_days": "１０", "opinion": "同意延期十个工作日"}


def _start_three(web_env) -> list[HumanTask]:
    rt = web_env.runtime
    due = (clock.now() + timedelta(days=3)).isoformat()
    with web_env.tx() as s:
        deploy_task_processes(rt, s, (PROCESS, {"form_id": "extension_request"}))
        entity = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        out = [rt.start(s, PROCESS, business_key=entity.uscc, data={"due": due}) for _ in range(3)]
        ids = [o.instance.id for o in out]
    with web_env.tx() as s:
        tasks = [s.scalars(select(HumanTask).where(HumanTask.instance_id == i)).one() for i in ids]
        for t in tasks:
            rt.claim(s, t.id, "officer")
        s.expunge_all()
        return tasks


def _rev(web_env, instance_id: int) -> int:
    with web_env.tx() as s:
        return s.get(ProcessInstance, instance_id).rev


def _stored(web_env, instance_id: int) -> dict:
    with web_env.tx() as s:
        inst = s.get(ProcessInstance, instance_id)
        assert inst.status == "completed"
        return dict(web_env.runtime.load_workflow(s, instance_id).data)


def test_same_raw_input_through_web_api_and_cli_stores_the_same_data(web_env, http, live):
    web_task, api_task, cli_task = _start_three(web_env)
    # the web: the form's fields as the browser posts them
    r = http(username="officer").post(f"/inbox/tasks/{web_task.id}?rev={_rev(web_env, web_task.instance_id)}", RAW)
    assert r.status_code == 302, r.text
    # the API: the same values as JSON
    with web_env.tx() as s:
        token = users.issue_token(s, "officer", "edges", actor="admin")
    r = requests.post(live + f"/api/v1/tasks/{api_task.id}/complete", headers={"Authorization": f"Bearer {token}"},
                      json={"data": RAW, "rev": _rev(web_env, api_task.instance_id)})
    assert r.status_code == 200, r.text
    # the CLI: the same values as --data
    env = {**os.environ, "REGFLOW_DATABASE_URL": web_env.url, "PYTHONPATH": str(ROOT)}
    proc = run_cli(env, "complete", str(cli_task.id), "--user", "officer", "--data", json.dumps(RAW))
    assert proc.returncode == 0, proc.stderr

    stored = [_stored(web_env, t.instance_id) for t in (web_task, api_task, cli_task)]
    assert stored[0] == stored[1] == stored[2]
    # coerced (full-width digits read as the number 10) and trimmed, as the one validator does
    assert stored[0]["extension_days"] == 10 and stored[0]["reason"] == RAW["reason"].strip()
    with web_env.tx() as s:  # who completed each, through which edge, is the same officer
        assert {s.get(HumanTask, t.id).completed_by for t in (web_task, api_task, cli_task)} == {"officer"}


def test_invalid_raw_input_is_refused_alike_by_the_three_edges(web_env, http, live):
    web_task, api_task, cli_task = _start_three(web_env)
    bad = dict(RAW, extension_days="99", requested_until="not a date")
    r = http(username="officer").post(f"/inbox/tasks/{web_task.id}?rev={_rev(web_env, web_task.instance_id)}", bad)
    assert r.status_code == 422
    with web_env.tx() as s:
        token = users.issue_token(s, "officer", "edges", actor="admin")
    r = requests.post(live + f"/api/v1/tasks/{api_task.id}/complete", headers={"Authorization": f"Bearer {token}"},
                      json={"data": bad, "rev": _rev(web_env, api_task.instance_id)})
    assert r.status_code == 422 and set(r.json()["error"]["field_errors"]) == {"extension_days", "requested_until"}
    env = {**os.environ, "REGFLOW_DATABASE_URL": web_env.url, "PYTHONPATH": str(ROOT)}
    proc = run_cli(env, "complete", str(cli_task.id), "--user", "officer", "--data", json.dumps(bad))
    assert proc.returncode == 2 and "extension_days" in proc.stderr and "requested_until" in proc.stderr
    with web_env.tx() as s:
        assert {s.get(HumanTask, t.id).status for t in (web_task, api_task, cli_task)} == {"open"}


def test_inbox_completion_loads_the_state_once(web_env, http, monkeypatch):
    (task, *_rest) = _start_three(web_env)
    officer = http(username="officer")
    rev = _rev(web_env, task.instance_id)
    calls = []
    original = StateSerializer.loads

    def counting(self, *args, **kwargs):
        calls.append(args[0][:20] if args else "")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StateSerializer, "loads", counting)
    r = officer.post(f"/inbox/tasks/{task.id}?rev={rev}", RAW)
    assert r.status_code == 302, r.text
    assert len(calls) == 1, f"the completion deserialized the state {len(calls)} times"
    with web_env.tx() as s:
        assert s.get(HumanTask, task.id).status == "completed"
