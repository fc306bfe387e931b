"""The CLI contract through real subprocesses: JSON shapes, exit codes, clear errors, nothing half-written."""
from __future__ import annotations

import getpass
import json
import os

import pytest
from sqlalchemy import func, select

from engine.runtime.models import AuditEvent, Deployment, HumanTask, Incident, ProcessDefinition, ProcessInstance
from tests.conftest import DATA, ROOT, cli_json, empty_database, run_cli

ENGINE = DATA / "engine"
BAD = ENGINE / "bad"


def counts(db) -> dict:
    with db.tx() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (Deployment, ProcessDefinition, ProcessInstance, HumanTask, AuditEvent, Incident)}


@pytest.fixture
def cli_people(db):
    for name, roles, groups in (("alice", "officer", "officers"), ("bob", "officer", "officers"),
                                ("sam", "supervisor", "supervisors")):
        proc = run_cli(db.env, "users", "add", name, "--roles", roles, "--groups", groups,
                       input="pw-" + name * 3 + "\n")
        assert proc.returncode == 0, proc.stderr
    return db


def test_full_cycle_json_contract(cli_people):
    db = cli_people
    env = db.env
    deployed = cli_json(env, "deploy", str(ENGINE / "minimal.bpmn"))
    assert deployed == [{"process_id": "minimal", "version": 1, "definition_id": 1, "created": True}]
    started = cli_json(env, "start", "minimal", "--key", "91350100M000100Y43", "--data", '{"amount": 9}',
                       "--user", "alice")
    assert set(started) >= {"instance_id", "status"} and started["status"] == "running"
    iid = started["instance_id"]
    tasks = cli_json(env, "tasks", "--user", "sam")
    assert len(tasks) == 1
    t = tasks[0]
    assert set(t) >= {"task_id", "instance_id", "bpmn_id", "name", "assignee", "candidate_groups", "due_at"}
    assert t["bpmn_id"] == "review" and t["candidate_groups"] == ["supervisors"] and t["instance_id"] == iid
    assert cli_json(env, "tasks", "--user", "alice") == []
    assert [x["task_id"] for x in cli_json(env, "tasks", "--group", "supervisors")] == [t["task_id"]]
    claimed = cli_json(env, "claim", str(t["task_id"]), "--user", "sam")
    assert claimed["assignee"] == "sam"
    done = cli_json(env, "complete", str(t["task_id"]), "--user", "sam", "--data", '{"approved": true}')
    assert done["status"] == "completed"
    hist = cli_json(env, "history", str(iid))
    assert hist["instance_id"] == iid
    evs = hist["events"]
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    assert set(evs[0]) >= {"seq", "at", "actor", "kind", "bpmn_id", "flow_ids", "data_diff"}
    flows = [f for e in evs for f in e["flow_ids"]]
    assert "f_high" in flows and "f_low" not in flows
    completed = next(e for e in evs if e["kind"] == "task_completed")
    assert completed["actor"] == "sam" and completed["data_diff"] == {"approved": {"new": True}}
    # the CLI is an operator's edge: its events name the operating-system user who ran the command
    assert completed["detail"]["origin"] == {"via": "cli", "os_user": getpass.getuser()}
    assert evs[0]["kind"] == "instance_started" and evs[0]["actor"] == "alice"
    assert evs[0]["detail"]["origin"]["via"] == "cli"
    assert cli_json(env, "instances", "--status", "completed")[0]["instance_id"] == iid
    assert cli_json(env, "audit", "verify")["ok"] is True


def test_exit_codes(cli_people):
    env = cli_people.env
    cli_json(env, "deploy", str(ENGINE / "minimal.bpmn"))
    iid = cli_json(env, "start", "minimal", "--data", '{"amount": 9}', "--user", "alice")["instance_id"]
    (t,) = cli_json(env, "tasks", "--instance", str(iid))
    before = counts(cli_people)
    # 3: not found
    assert run_cli(env, "start", "no_such_process", "--user", "alice").returncode == 3
    assert run_cli(env, "complete", "999", "--user", "sam").returncode == 3
    assert run_cli(env, "history", "999").returncode == 3
    # 2: invalid input
    bad = run_cli(env, "start", "minimal", "--data", "{not json", "--user", "alice")
    assert bad.returncode == 2 and "--data is not valid JSON" in bad.stderr
    deep = run_cli(env, "start", "minimal", "--data", '{"a": ' + "[" * 40 + "1" + "]" * 40 + "}", "--user", "alice")
    assert deep.returncode == 2 and "nested more than 32 levels" in deep.stderr and "a[0]" in deep.stderr
    deeper = run_cli(env, "start", "minimal", "--data", "[" * 50000 + "]" * 50000, "--user", "alice")
    assert deeper.returncode == 2 and "nested more than 32 levels" in deeper.stderr
    # 5: not allowed — alice is not a supervisor
    na = run_cli(env, "complete", str(t["task_id"]), "--user", "alice", "--data", "{}")
    assert na.returncode == 5 and "supervisors" in na.stderr
    # 4: stale rev
    stale = run_cli(env, "complete", str(t["task_id"]), "--user", "sam", "--rev", "99")
    assert stale.returncode == 4 and "rev" in stale.stderr
    assert counts(cli_people) == before
    assert run_cli(env, "complete", str(t["task_id"]), "--user", "sam").returncode == 0
    # 4: already completed
    again = run_cli(env, "complete", str(t["task_id"]), "--user", "sam")
    assert again.returncode == 4 and "already completed" in again.stderr
    # suspend needs a reason and an existing instance
    assert run_cli(env, "suspend", "999", "--user", "sam", "--reason", "x").returncode == 3
    # 5: an officer may not suspend an instance (supervisors and administrators may), nothing changes
    running = cli_json(env, "start", "minimal", "--data", '{"amount": 9}', "--user", "alice")["instance_id"]
    before = counts(cli_people)
    refused = run_cli(env, "suspend", str(running), "--user", "alice", "--reason", "x")
    assert refused.returncode == 5 and "supervisor" in refused.stderr
    assert counts(cli_people) == before
    assert cli_json(env, "suspend", str(running), "--user", "sam", "--reason", "checking")["status"] == "suspended"


@pytest.mark.parametrize("name, where", [
    ("malformed.bpmn", "malformed.bpmn:5"),
    ("invalid.bpmn", "invalid.bpmn"),
    ("unknown_operator.bpmn", "element call_it"),
    ("expr_import.bpmn", "element evil_script"),
    ("expr_open.bpmn", "element evil_script"),
    ("expr_dunder.bpmn", "element evil_script"),
    ("bad_condition.bpmn", "element f_a"),
])
def test_bad_definitions_are_rejected_with_location(sqlite_db, name, where):
    before = counts(sqlite_db)
    proc = run_cli(sqlite_db.env, "deploy", str(BAD / name))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert where in proc.stderr, proc.stderr
    assert counts(sqlite_db) == before


def test_unknown_operator_message_names_it(sqlite_db):
    proc = run_cli(sqlite_db.env, "deploy", str(BAD / "unknown_operator.bpmn"))
    assert "unknown service operator 'no.such.operator'" in proc.stderr
    assert "test.record" in proc.stderr  # the known operators are listed


def test_missing_path(sqlite_db):
    proc = run_cli(sqlite_db.env, "deploy", "/nonexistent/x.bpmn")
    assert proc.returncode == 2 and "/nonexistent/x.bpmn: no such file" in proc.stderr


def test_script_past_time_budget_becomes_incident(sqlite_db):
    env = {**sqlite_db.env, "REGFLOW_SCRIPT_TIME_BUDGET_S": "0.3"}
    assert run_cli(env, "users", "add", "alice", "--roles", "officer", "--groups", "officers",
                   input="pw-alicealicealice\n").returncode == 0
    cli_json(env, "deploy", str(BAD / "endless.bpmn"))
    out = cli_json(env, "start", "endless", "--user", "alice")
    assert out["status"] == "running" and "incident_id" in out["failure"]
    (inc,) = cli_json(env, "incidents")
    assert (inc["bpmn_id"] == "spin" and inc["error_type"] == "ScriptTimeout"
            and inc["instance_id"] == out["instance_id"])


def test_users_add_rejects_unknown_role(sqlite_db):
    proc = run_cli(sqlite_db.env, "users", "add", "eve", "--roles", "wizard", input="long-enough-pw\n")
    assert proc.returncode == 2 and "Unknown role(s): wizard" in proc.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_env(request, tmp_path):
    """A database nobody ran ``regflow init`` on."""
    with empty_database(request.param, tmp_path) as url:
        yield {**os.environ, "REGFLOW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}


def test_a_database_without_the_schema_says_to_run_init(empty_env):
    for args in (("tasks",), ("hazards", "list", "--json"), ("instances",)):
        proc = run_cli(empty_env, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "has no regflow schema" in proc.stderr and "run `regflow init`" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert run_cli(empty_env, "init").returncode == 0
    proc = run_cli(empty_env, "tasks", "--all", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
