"""BPMN and DMN deployment with mutated, hostile files — random attributes (also twice on one element), ids
removed or duplicated, huge names, bad expressions in conditions, scripts and decision cells, files cut short or
with raw text spliced in: through the engine's deploy command and the designer's validate / deploy endpoints.
Never a server error or an unexpected exception; a refusal lists issues that name the file and the element or
line."""
from __future__ import annotations

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from engine.bootstrap import form_hasher
from engine.commands import definitions
from engine.errors import EngineError
from engine.policy import load_actor
from engine.runtime.deploy import MAX_NAME
from engine.runtime.models import ProcessDefinition
from tests.conftest import ROOT
from tests.fuzz.strategies import fuzz_settings, mutated
from tests.fuzz.support import refusal
from tests.supervision.test_inbox_service import task_bpmn

GATEWAY_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Definitions_fuzz_gw"
                  targetNamespace="http://regflow.example/test">
  <bpmn:process id="fuzz_gateway" name="fuzz gateway" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute"/>
    <bpmn:scriptTask id="compute" name="compute"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = 3</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" default="low"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>high</bpmn:outgoing><bpmn:outgoing>low</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="high" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>score &gt; 2</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="low" sourceRef="gw" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>high</bpmn:incoming><bpmn:incoming>low</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
BPMN_SOURCES = (task_bpmn("fuzz_task", form_id="extension_request"), GATEWAY_BPMN)
DMN_SOURCES = tuple((ROOT / "processes" / n).read_text(encoding="utf-8") for n in ("route_by_risk.dmn",
                                                                                  "rectification_route.dmn"))
FILE_LEVEL = ("no executable process", "the XML is empty", "malformed XML")
ENGINE_EXAMPLES = 300
DESIGNER_EXAMPLES = 100


def check_issues(issues: list) -> None:
    """Each issue names a file (``file_name``, or a deployed file that uses what it changed) and its element, line
    or field (a whole-file problem says so)."""
    assert issues, "a refusal without issues"
    for issue in issues:
        assert str(issue.get("file") or "").endswith((".bpmn", ".dmn")), issue
        assert str(issue.get("message") or "").strip(), issue
        assert issue.get("element_id") or issue.get("line") or issue.get("field") or any(
            w in issue["message"] for w in FILE_LEVEL), issue


def test_engine_deploy_of_mutated_bpmn(web_env, tally):
    rt, hasher = web_env.runtime, form_hasher(web_env.settings)
    session = web_env.factory()

    # a mutated process alone, or a mutated decision table with a valid process (a decision alone deploys no
    # process: refused as such)
    @fuzz_settings(ENGINE_EXAMPLES)
    @given(files=st.one_of(mutated(BPMN_SOURCES).map(lambda xml: {"fuzz.bpmn": xml}),
                           mutated(DMN_SOURCES).map(lambda xml: {"fuzz.dmn": xml, "fuzz_task.bpmn": BPMN_SOURCES[0]})))
    def run(files):
        note(f"{files!r:.5000}")
        try:
            definitions.deploy(rt, session, load_actor(session, "designer"), files, hasher)
            tally.answer("deployed")
        except EngineError as exc:
            tally.answer(f"refused {exc.http_status}")
            assert 400 <= exc.http_status < 500, exc
            if exc.details.get("issues") is not None:
                check_issues(exc.details["issues"])
        finally:
            session.rollback()
        tally.case()

    try:
        run()
    finally:
        session.close()
    assert {"deployed", "refused 400"} <= set(tally.answers), tally.answers


def test_designer_validate_and_deploy_of_mutated_files(designer, tally):
    client, headers = designer

    @fuzz_settings(DESIGNER_EXAMPLES)
    @given(bpmn=mutated(BPMN_SOURCES), dmn=mutated(DMN_SOURCES))
    def run(bpmn, dmn):
        for name, xml in (("fuzz_task.bpmn", bpmn), ("route_by_risk.dmn", dmn)):
            for action in ("validate", "deploy"):
                note(f"POST /designer/{action} file_name={name} xml={xml!r:.5000}")
                r = client.post(f"/designer/{action}", data={"file_name": name, "xml": xml}, headers=headers)
                tally.answer(r.status_code)
                assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:2000])
                body = r.get_json()
                if r.status_code == 400 and "issues" in body:
                    check_issues(body["issues"])
                elif r.status_code >= 400:
                    refusal(r)
                else:
                    assert body["ok"] is True, body
        tally.case()

    run()
    assert {"200", "400"} <= set(tally.answers), tally.answers


@pytest.mark.parametrize("process_id", ["", "p" * 201])
def test_a_process_without_a_fitting_id_is_an_issue_not_a_server_error(designer, web_env, process_id):
    """Found by the fuzz run: a ``<bpmn:process>`` without an id reached the definitions table (500)."""
    client, headers = designer
    xml = task_bpmn("fuzz_noid").replace('<bpmn:process id="fuzz_noid"', f'<bpmn:process id="{process_id}"')
    for action in ("validate", "deploy"):
        r = client.post(f"/designer/{action}", data={"file_name": "fuzz_noid.bpmn", "xml": xml}, headers=headers)
        assert r.status_code == 400, r.get_data(as_text=True)
        issue, = r.get_json()["issues"]
        assert (issue["file"], issue["line"]) == ("fuzz_noid.bpmn", 5), issue  # the line of <bpmn:process>
        # the attribute is named: as the issue's field, or in the schema validator's message
        assert issue["field"] == "id" or "attribute 'id'" in issue["message"], issue


def test_a_huge_process_name_is_kept_cut_to_its_column(web_env):
    """The name column holds 400 characters (PostgreSQL refuses more): a longer name is kept cut short."""
    xml = task_bpmn("fuzz_long_name").replace('name="fuzz_long_name"', f'name="{"名" * 5000}"')
    with web_env.tx() as s:
        done, = definitions.deploy(web_env.runtime, s, load_actor(s, "designer"), {"fuzz_long_name.bpmn": xml},
                                   form_hasher(web_env.settings))
        assert len(s.get(ProcessDefinition, done.definition_id).name) == MAX_NAME
