"""The auditors' area over real HTTP: instance search and its filters, the instance page (diagram path,
timeline with the officer's action, routing reasons, chain verdict), the view at a past event, JSON and
CSV exports with every event, a tampered audit row showing a broken chain, read-only access rules —
and a browser run: the auditor signs in, searches, opens the instance and sees the highlighted path."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re

import pytest
from sqlalchemy import select, update

from engine.runtime.deploy import deploy
from engine.runtime.history import CSV_COLUMNS
from engine.runtime.models import AppUser, AuditEvent, HumanTask, ProcessInstance
from engine.runtime.users import add_user
from engine.supervision import documents
from scoring.models import Entity
from tests.web.conftest import ARTIFACTS, sign_in

CHECKED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
                  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
                  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_audit_check" targetNamespace="http://regflow.example/test">
  <bpmn:process id="audit_check" name="Check and review" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:userTask id="check" name="Check the premises">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="candidateGroups" value="officers"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" name="Problem found?" default="f_ok">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_problem</bpmn:outgoing><bpmn:outgoing>f_ok</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_problem" name="problem" sourceRef="gw" targetRef="review">
      <bpmn:conditionExpression>problem == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_ok" sourceRef="gw" targetRef="end_ok"/>
    <bpmn:userTask id="review" name="Review the finding">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="candidateGroups" value="supervisors"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_problem</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_ok"><bpmn:incoming>f_ok</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d1">
    <bpmndi:BPMNPlane id="p1" bpmnElement="audit_check">
      <bpmndi:BPMNShape id="s_start" bpmnElement="start">
        <dc:Bounds x="100" y="102" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s_check" bpmnElement="check">
        <dc:Bounds x="190" y="80" width="100" height="80"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s_gw" bpmnElement="gw" isMarkerVisible="true">
        <dc:Bounds x="345" y="95" width="50" height="50"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s_review" bpmnElement="review">
        <dc:Bounds x="450" y="80" width="100" height="80"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s_end" bpmnElement="end">
        <dc:Bounds x="612" y="102" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s_end_ok" bpmnElement="end_ok">
        <dc:Bounds x="452" y="222" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="e_f1" bpmnElement="f1">
        <di:waypoint x="136" y="120"/><di:waypoint x="190" y="120"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="e_f2" bpmnElement="f2">
        <di:waypoint x="290" y="120"/><di:waypoint x="345" y="120"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="e_fp" bpmnElement="f_problem">
        <di:waypoint x="395" y="120"/><di:waypoint x="450" y="120"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="e_fo" bpmnElement="f_ok">
        <di:waypoint x="370" y="145"/><di:waypoint x="370" y="240"/><di:waypoint x="452" y="240"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="e_f3" bpmnElement="f3">
        <di:waypoint x="550" y="120"/><di:waypoint x="612" y="120"/>
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def _deploy(web_env) -> None:
    with web_env.tx() as s:
        deploy(web_env.runtime, s, {"audit_check.bpmn": CHECKED}, "designer")


@pytest.fixture
def checked(web_env):
    """An instance on a demo entity whose first task the officer completed (problem found): it waits at
    the supervisors' review. Returns (instance id, USCC, entity name)."""
    _deploy(web_env)
    rt = web_env.runtime
    with web_env.tx() as s:
        e = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        uscc, name = e.uscc, e.name
        iid = rt.start(s, "audit_check", business_key=uscc, data={"uscc": uscc}, actor="planner").instance.id
    with web_env.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).one()
        rt.claim(s, ht.id, "officer")
    with web_env.tx() as s:
        rt.complete_task(s, ht.id, "officer", {"problem": True, "finding": "灭火器过期"})
    return iid, uscc, name


def _path(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="instance-path">(.*?)</script>', html, re.S)
    assert m, "the page carries no path block for the viewer"
    return json.loads(m.group(1))


def _events(web_env, iid: int) -> int:
    with web_env.tx() as s:
        return s.get(ProcessInstance, iid).audit_seq




# ------------------------------------------------------------------------------------------- search
def test_search_filters(http, web_env, checked):
    iid, uscc, name = checked
    auditor = http("auditor")
    r = auditor.get("/audit/")
    assert r.status_code == 200 and f'id="instance-{iid}"' in r.text and "共 1 个实例" in r.text
    assert f'id="instance-{iid}"' in auditor.get(f"/audit/?entity={uscc}").text
    assert f'id="instance-{iid}"' in auditor.get("/audit/", params={"entity": name}).text
    assert f'id="instance-{iid}"' not in auditor.get("/audit/", params={"entity": "不存在的主体名称"}).text
    assert f'id="instance-{iid}"' in auditor.get("/audit/?officer=officer&status=running&process=audit_check").text
    assert f'id="instance-{iid}"' not in auditor.get("/audit/?officer=officer2").text
    assert f'id="instance-{iid}"' not in auditor.get("/audit/?status=completed").text
    assert f'id="instance-{iid}"' in auditor.get("/audit/?from=2000-01-01&to=2999-12-31").text
    assert f'id="instance-{iid}"' not in auditor.get("/audit/?from=2999-01-01").text


def test_bad_filters_are_400_with_a_reason(http):
    auditor = http("auditor")
    r = auditor.get("/audit/?from=yesterday")
    assert r.status_code == 400 and "from" in r.text and "yesterday" in r.text
    assert auditor.get("/audit/?status=lost").status_code == 400
    assert auditor.get("/audit/?page=0").status_code == 400
    assert auditor.get("/audit/?from=2026-05-02&to=2026-05-01").status_code == 400


# ------------------------------------------------------------------------------------ instance page
def test_instance_page_shows_path_timeline_and_reasons(http, web_env, checked):
    iid, uscc, _name = checked
    r = http("auditor").get(f"/audit/instances/{iid}")
    assert r.status_code == 200
    html = r.text
    path = _path(html)
    assert path["current"] == ["review"] and {"start", "check", "gw"} <= set(path["done"])
    assert {"f1", "f2", "f_problem"} <= set(path["flows"]) and "f_ok" not in path["flows"]
    # the officer's action in the timeline, with the data she entered
    m = re.search(r'<li id="event-(\d+)" class="event kind-task_completed human" data-kind="task_completed" '
                  r'data-actor="officer">(.*?)</li>', html, re.S)
    assert m, "the officer's completion is not in the timeline"
    assert "任务完成" in m.group(2) and "灭火器过期" in m.group(2) and "Check the premises" in m.group(2)
    # the gateway's reason
    assert 'id="decisions"' in html and "f_problem" in html and "problem == True" in html
    # the chain verdict
    assert 'data-ok="1"' in html and "哈希链完整" in html
    assert 'data-bpmn-viewer' in html and f"/audit/instances/{iid}/diagram.xml" in html
    assert uscc in html
    xml = http("auditor").get(f"/audit/instances/{iid}/diagram.xml")
    assert xml.status_code == 200 and xml.headers["Content-Type"].startswith("application/xml")
    assert 'id="audit_check"' in xml.text


def test_evidence_upload_appears_in_the_timeline_with_its_digest(http, web_env):
    """An officer uploads evidence over HTTP; the auditor's timeline shows who attached which file, with its
    SHA-256, as an event of the hash chain."""
    _deploy(web_env)
    with web_env.tx() as s:
        uscc = s.scalars(select(Entity.uscc).order_by(Entity.id).limit(1)).one()
        iid = web_env.runtime.start(s, "audit_check", business_key=uscc, data={"uscc": uscc}).instance.id
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).one()
        web_env.runtime.claim(s, ht.id, "officer")
    pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    r = http("officer").post(f"/inbox/tasks/{ht.id}/evidence", {},
                             files={"file": ("现场照片说明.pdf", pdf, "application/pdf")},
                             headers={"Accept": "application/json"})
    assert r.status_code == 201, r.text
    html = http("auditor").get(f"/audit/instances/{iid}").text
    m = re.search(r'<li id="event-(\d+)" class="event kind-evidence_attached human" data-kind="evidence_attached" '
                  r'data-actor="officer">(.*?)</li>', html, re.S)
    assert m, "the upload is not in the timeline"
    assert "上传证据材料" in m.group(2) and "现场照片说明.pdf" in m.group(2)
    assert hashlib.sha256(pdf).hexdigest() in m.group(2)
    assert 'data-ok="1"' in html


def test_supervisor_reads_the_audit_area_too(http, checked):
    iid, _uscc, _name = checked
    sup = http("supervisor")
    assert sup.get("/audit/").status_code == 200
    assert sup.get(f"/audit/instances/{iid}").status_code == 200


def test_state_at_a_past_event(http, web_env, checked):
    iid, _uscc, _name = checked
    with web_env.tx() as s:
        created = s.scalars(select(AuditEvent.seq).where(AuditEvent.instance_id == iid,
                                                         AuditEvent.kind == "task_created",
                                                         AuditEvent.bpmn_id == "check")).one()
    auditor = http("auditor")
    r = auditor.get(f"/audit/instances/{iid}/at/{created}")
    assert r.status_code == 200 and 'id="past-view"' in r.text
    path = _path(r.text)
    assert path["current"] == ["check"] and "check" not in path["done"] and "gw" not in path["done"]
    # the data then: the start data only, not the finding
    data = re.search(r'<pre class="diff data-state">(.*?)</pre>', r.text, re.S).group(1)
    assert "uscc" in data and "finding" not in data
    assert f'id="event-{created + 1}"' not in r.text
    assert auditor.get(f"/audit/instances/{iid}/at/{_events(web_env, iid) + 1}").status_code == 404
    assert auditor.get("/audit/instances/999999").status_code == 404


# -------------------------------------------------------------------------------------------- exports
def test_exports_carry_every_event(http, web_env, checked):
    iid, _uscc, _name = checked
    n = _events(web_env, iid)
    auditor = http("auditor")
    r = auditor.get(f"/audit/instances/{iid}/history.json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert "attachment" in r.headers["Content-Disposition"]
    doc = r.json()
    assert [e["seq"] for e in doc["events"]] == list(range(1, n + 1)) and doc["chain"]["ok"] is True
    completed = next(e for e in doc["events"] if e["kind"] == "task_completed")
    assert completed["actor"] == "officer" and completed["data_diff"]["finding"] == {"new": "灭火器过期"}
    r = auditor.get(f"/audit/instances/{iid}/history.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == n and tuple(rows[0]) == CSV_COLUMNS
    assert [int(x["seq"]) for x in rows] == list(range(1, n + 1))
    assert any(x["actor"] == "officer" and x["kind"] == "task_completed" and "灭火器过期" in x["data_diff"]
               for x in rows)


def test_tampered_row_shows_a_broken_chain(http, web_env, checked):
    iid, _uscc, _name = checked
    with web_env.tx() as s:
        s.execute(update(AuditEvent).where(AuditEvent.instance_id == iid, AuditEvent.kind == "task_completed")
                  .values(actor="mallory"))
    r = http("auditor").get(f"/audit/instances/{iid}")
    assert r.status_code == 200 and 'data-ok="0"' in r.text and "哈希链已断裂" in r.text
    assert "content does not match its hash" in r.text
    assert http("auditor").get(f"/audit/instances/{iid}/history.json").json()["chain"]["ok"] is False


# --------------------------------------------------------------------------------------------- access
@pytest.mark.parametrize("path", ["/audit/", "/audit/instances/{iid}", "/audit/instances/{iid}/history.json",
                                  "/audit/instances/{iid}/history.csv", "/audit/instances/{iid}/diagram.xml",
                                  "/audit/instances/{iid}/at/1"])
def test_only_auditors_and_supervisors_read(http, checked, path):
    url = path.format(iid=checked[0])
    assert http("auditor").get(url).status_code == 200
    for role in ("officer", "designer", "admin"):
        assert http(role).get(url).status_code == 403, role
    assert http().get(url).status_code == 302


def test_jurisdiction_limits_what_an_auditor_sees(http, web_env, checked):
    iid, _uscc, _name = checked
    with web_env.tx() as s:
        add_user(s, "auditor_far", "regflow-demo", "auditor", "")
        s.scalars(select(AppUser).where(AppUser.username == "auditor_far")).one().jurisdiction = ["999999"]
    far = http(username="auditor_far")
    assert f'id="instance-{iid}"' not in far.get("/audit/").text
    r = far.get(f"/audit/instances/{iid}")
    assert r.status_code == 403 and "管辖范围" in r.text
    assert far.get(f"/audit/instances/{iid}/history.csv").status_code == 403


def test_the_audit_area_has_no_changing_route(app, http, checked):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("audit.")]
    assert {r.endpoint for r in rules} >= {"audit.index", "audit.instance", "audit.instance_at", "audit.history_json",
                                          "audit.history_csv", "audit.diagram_xml"}
    assert all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in rules)
    r = http("auditor").post(f"/audit/instances/{checked[0]}", {})
    assert r.status_code == 405


# -------------------------------------------------------------------------------------------- browser
def test_browser_auditor_sees_the_path_and_the_officers_action(page, checked):
    iid, uscc, _name = checked
    sign_in(page, "auditor")
    page.goto("/audit/")
    page.fill("#audit-search input[name=entity]", uscc)
    page.click("#audit-apply")
    page.wait_for_selector(f"#instance-{iid}")
    page.click(f"#instance-{iid} a.instance-link")
    page.wait_for_selector('#instance-diagram[data-ready="1"]')
    # the path: completed task, taken flow, the current position
    assert page.locator('#instance-diagram .djs-element.rf-done[data-element-id="check"]').count() == 1
    assert page.locator('#instance-diagram .djs-element.rf-flow[data-element-id="f_problem"]').count() == 1
    assert page.locator('#instance-diagram .djs-element.rf-current[data-element-id="review"]').count() == 1
    assert page.locator('#instance-diagram .rf-flow[data-element-id="f_ok"]').count() == 0
    # the officer's action in the timeline
    action = page.locator('#timeline li[data-kind="task_completed"][data-actor="officer"]')
    assert action.count() == 1
    assert "灭火器过期" in action.inner_text()
    assert page.locator("#chain-verdict").get_attribute("data-ok") == "1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "audit_instance.png"), full_page=True)


def test_documents_issued_and_voided_appear_in_the_timeline(http, web_env, checked):
    """The register's events on an instance's chain are labelled on the auditor's page (issue 18)."""
    iid, uscc, _name = checked
    with web_env.tx() as s:
        doc = documents.issue(s, "郑市监", "rectification_notice", 2026, instance_id=iid, ref="order", uscc=uscc,
                              issued_by="leader")
        number = doc.number
    with web_env.tx() as s:
        documents.void(s, number, reason="送达地址有误", actor="supervisor")
    html = http("auditor").get(f"/audit/instances/{iid}").text
    issued = re.search(r'data-kind="document_issued" data-actor="leader">(.*?)</li>', html, re.S)
    voided = re.search(r'data-kind="document_voided" data-actor="supervisor">(.*?)</li>', html, re.S)
    assert issued and "制发文书" in issued.group(1) and number in issued.group(1)
    assert voided and "文书作废" in voided.group(1)
