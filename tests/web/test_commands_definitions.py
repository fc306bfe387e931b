"""Validating and deploying definitions through the one command layer (engine.commands.definitions): designers
only, from the modeler and from ``regflow deploy --user``; without ``--user`` the CLI deploys only while no active
designer exists (a new installation's first library). Refusals deploy nothing."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from engine.commands import definitions
from engine.errors import NotAllowed
from engine.policy import load_actor
from engine.runtime.models import Deployment, ProcessDefinition
from tests.conftest import DATA, ROOT, cli_json, run_cli

MINIMAL = DATA / "engine" / "minimal.bpmn"


def _deployments(web_env) -> list[str]:
    with web_env.tx() as s:
        return list(s.scalars(select(Deployment.deployed_by).order_by(Deployment.id)))


def test_cli_deploy_acts_as_a_designer(web_env):
    env = {**os.environ, "REGFLOW_DATABASE_URL": web_env.url, "PYTHONPATH": str(ROOT)}
    before = _deployments(web_env)
    proc = run_cli(env, "deploy", str(MINIMAL))
    assert proc.returncode == 5 and "designer" in proc.stderr and "--user" in proc.stderr
    proc = run_cli(env, "deploy", str(MINIMAL), "--user", "supervisor")
    assert proc.returncode == 5 and "designer" in proc.stderr
    assert _deployments(web_env) == before
    assert cli_json(env, "deploy", str(MINIMAL), "--user", "designer")[0]["process_id"] == "minimal"
    assert _deployments(web_env) == [*before, "designer"]


def test_cli_deploys_a_new_installations_library_without_user(sqlite_db):
    assert cli_json(sqlite_db.env, "deploy", str(MINIMAL))[0]["created"] is True
    with sqlite_db.tx() as s:
        assert s.scalars(select(Deployment.deployed_by)).all() == ["system"]


def test_the_commands_refuse_non_designers(web_env):
    text = MINIMAL.read_text(encoding="utf-8")
    with web_env.tx() as s:
        count = s.scalar(select(func.count()).select_from(ProcessDefinition))
        for name in ("supervisor", "auditor", "admin"):
            actor = load_actor(s, name)
            with pytest.raises(NotAllowed):
                definitions.validate(web_env.runtime, s, actor, "minimal.bpmn", text)
            with pytest.raises(NotAllowed):
                definitions.deploy_file(web_env.runtime, s, actor, "minimal.bpmn", text)
        assert s.scalar(select(func.count()).select_from(ProcessDefinition)) == count
        assert definitions.validate(web_env.runtime, s, load_actor(s, "designer"), "minimal.bpmn", text) == []


def test_the_modeler_posts_without_xml_get_a_clear_400(http):
    r = http("designer").post("/designer/validate", {"file_name": "x.bpmn"}, headers={"Accept": "application/json"})
    assert r.status_code == 400 and "xml" in r.json()["error"]["message"]
