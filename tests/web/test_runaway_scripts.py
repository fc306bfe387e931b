"""A runaway expression started through the web (issue 17, finding 3): the request ends with the instance's step
turned into an incident naming the element and the refused operation, and the server keeps answering other
requests meanwhile. Times and memory are printed by ``bench/security.py``, never asserted here."""
from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import select

from engine.bootstrap import form_hasher
from engine.runtime import users
from engine.runtime.deploy import deploy
from engine.runtime.models import Incident, ProcessInstance
from scoring.models import Entity

SCRIPTS = {
    # one C call that would make a 2 GB value / run for tens of seconds: refused before it runs
    "huge_value": 'blob = "x" * size',
    "huge_sum": "total = sum(range(size))",
    # a loop that grows memory step by step: stopped by the memory watch (or the time budget)
    "growing_loop": "rows = []\nfor i in range(1000000):\n    rows.append('x' * 4096 + str(i))",
}


def _bpmn(process_id: str, script: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_{process_id}" targetNamespace="http://regflow.example/test">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="startableBy" value="supervisors"/>
    </spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="runaway"/>
    <bpmn:scriptTask id="runaway"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="runaway" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_a_runaway_script_becomes_an_incident_while_the_server_answers(web_env, live, kind):
    process_id = f"runaway_{kind}"
    with web_env.tx() as s:
        deploy(web_env.runtime, s, {f"{process_id}.bpmn": _bpmn(process_id, SCRIPTS[kind])}, "designer",
               form_hash=form_hasher(web_env.settings))
        uscc = s.scalars(select(Entity.uscc).order_by(Entity.id).limit(1)).one()
        token = users.issue_token(s, "supervisor", "runaway", actor="admin")

    answers: list[int] = []
    done = threading.Event()

    def poll() -> None:  # another client, all the while the start runs
        with requests.Session() as http:
            while not done.is_set():
                answers.append(http.get(f"{live}/healthz", timeout=30).status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        r = requests.post(f"{live}/api/v1/instances", headers={"Authorization": f"Bearer {token}"},
                          json={"process_id": process_id, "business_key": uscc, "data": {"size": 2 * 10 ** 9}},
                          timeout=120)
    finally:
        done.set()
        poller.join(timeout=60)
    assert r.status_code == 201, (r.status_code, r.text[:300])
    instance_id = r.json()["instance_id"]
    assert answers and set(answers) == {200}, answers
    with web_env.tx() as s:
        (incident,) = s.scalars(select(Incident).where(Incident.instance_id == instance_id)).all()
        state = s.get(ProcessInstance, instance_id).state
    # what the failed script built is not kept: the saved state holds the start data, not a list of 128 MB
    assert len(state) < 100_000 and '"rows"' not in state and '"blob"' not in state, len(state)
    assert incident.status == "open" and incident.bpmn_id == "runaway"
    assert incident.error_type == "ScriptLimitExceeded", (incident.error_type, incident.message[:300])
    assert {"huge_value": "'*'", "huge_sum": "range()", "growing_loop": "MB"}[kind] in incident.message
