"""The designer area over real HTTP and in a real browser: library list, validation with file/line and
element, deploying new versions, diffs, DMN editing, simulation, access rules."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.runtime.labels import labels_from_xml
from engine.runtime.models import Deployment, ProcessDefinition, ProcessInstance
from tests.conftest import ROOT
from tests.web.conftest import ARTIFACTS, PASSWORD, ROLE_USERS

INSPECTION = "entity_inspection.bpmn"
#: renames the record_result task (another task has the same name)
RENAMED = ('id="record_result" name="Record the result code"', 'id="record_result" name="Record the result"')


def _source(name: str = INSPECTION) -> str:
    return (ROOT / "processes" / name).read_text(encoding="utf-8")


def _versions(web_env, process_id: str = "entity_inspection") -> list[int]:
    with web_env.tx() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.process_id == process_id)
                              .order_by(ProcessDefinition.version)))


def _deployments(web_env) -> int:
    with web_env.tx() as s:
        return s.scalar(select(func.count()).select_from(Deployment))


# ------------------------------------------------------------------------------------------------ HTTP
def test_library_lists_processes_versions_and_decisions(http):
    page = http("designer").get("/designer/")
    assert page.status_code == 200
    for pid in ("entity_inspection", "inspection_campaign", "rectification", "enforcement"):
        assert f'id="process-{pid}"' in page.text
    assert 'href="/designer/process/entity_inspection/edit"' in page.text
    assert "route_by_risk.dmn" in page.text and "不是 FEEL" in page.text


@pytest.mark.parametrize("role, path, status", [
    ("officer", "/designer/", 403),
    ("officer", "/designer/process/entity_inspection/v1.bpmn", 403),
    ("auditor", "/designer/", 200),
    ("auditor", "/designer/process/entity_inspection/v1", 200),
    ("auditor", "/designer/process/entity_inspection/v1.bpmn", 200),
    ("auditor", "/designer/process/entity_inspection/edit", 403),
    ("auditor", "/designer/decision/route_by_risk.dmn", 403),
    ("supervisor", "/designer/process/entity_inspection/edit", 403),
    (None, "/designer/", 302),
])
def test_read_access(http, role, path, status):
    assert http(role).get(path).status_code == status


def test_non_designers_cannot_validate_or_deploy(http, web_env):
    before = _deployments(web_env)
    for role in ("officer", "auditor", "supervisor"):
        user = http(role)
        assert user.post("/designer/validate", {"file_name": INSPECTION, "xml": _source()}).status_code == 403
        assert user.post("/designer/deploy", {"file_name": INSPECTION, "xml": _source()}).status_code == 403
    assert http("officer").post("/designer/simulate", {"entities": "60"}).status_code == 403
    assert _deployments(web_env) == before


def test_validate_invalid_xml_gives_400_with_file_and_line(http):
    broken = _source().replace('<bpmn:userTask id="review"', '<bpmn:userTask id="review" <oops')
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "<oops" in text)
    r = http("designer").post("/designer/validate", {"file_name": INSPECTION, "xml": broken},
                              headers={"Accept": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["ok"] is False and body["readable"] is False
    assert [(i["file"], i["line"]) for i in body["issues"]] == [(INSPECTION, line)]


def test_validate_names_the_offending_element(http):
    designer = http("designer")
    ok = designer.post("/designer/validate", {"file_name": INSPECTION, "xml": _source()})
    assert ok.status_code == 200 and ok.json()["ok"] is True
    r = designer.post("/designer/validate", {"file_name": INSPECTION,
                                             "xml": _source().replace('id="team.form"', 'id="team.unknown"')})
    assert r.status_code == 400
    issue, = r.json()["issues"]
    assert (issue["element_id"], issue["field"]) == ("form_team", "serviceTaskOperator")
    assert r.json()["readable"] is True


def test_deploy_creates_a_new_version_and_identical_content_does_not(http, web_env):
    designer = http("designer")
    assert _versions(web_env) == [1]
    same = designer.post("/designer/deploy", {"file_name": INSPECTION, "xml": _source()})
    assert same.status_code == 200 and same.json()["created"] is False
    assert _versions(web_env) == [1]

    changed = _source().replace('<spiffworkflow:property name="priority" value="90" />',
                                '<spiffworkflow:property name="priority" value="95" />')
    r = designer.post("/designer/deploy", {"file_name": INSPECTION, "xml": changed})
    assert r.status_code == 200 and r.json()["created"] is True
    assert {"process_id": "entity_inspection", "version": 2} in [
        {k: d[k] for k in ("process_id", "version")} for d in r.json()["deployed"]]
    assert _versions(web_env) == [1, 2]
    again = designer.post("/designer/deploy", {"file_name": INSPECTION, "xml": changed})
    assert again.json()["created"] is False and _versions(web_env) == [1, 2]

    with web_env.tx() as s:
        v2 = s.scalars(select(ProcessDefinition).where(ProcessDefinition.process_id == "entity_inspection",
                                                       ProcessDefinition.version == 2)).one()
        assert v2.deployed_by == "designer" and 'value="95"' in v2.bpmn_xml
    listing = designer.get("/designer/").text
    assert re.search(r'id="process-entity_inspection".*?data-version="2"', listing, re.S)


def test_invalid_deploy_changes_nothing(http, web_env):
    before = _deployments(web_env)
    broken = _source().replace('value="workdays(5)"', 'value="workdays(5"')
    r = http("designer").post("/designer/deploy", {"file_name": INSPECTION, "xml": broken})
    assert r.status_code == 400
    assert [(i["element_id"], i["field"]) for i in r.json()["issues"]] == [("review", "property:dueIn")]
    assert _deployments(web_env) == before and _versions(web_env) == [1]


def test_bad_file_name_is_refused(http):
    r = http("designer").post("/designer/validate", {"file_name": "../x.txt", "xml": "<a/>"},
                              headers={"Accept": "application/json"})
    assert r.status_code == 400 and "file name" in r.json()["error"]["message"]


def test_diff_page_lists_the_changes(http):
    designer = http("designer")
    changed = (_source().replace(*RENAMED)
               .replace('<dc:Bounds x="57" y="52"', '<dc:Bounds x="97" y="52"'))
    assert designer.post("/designer/deploy", {"file_name": INSPECTION, "xml": changed}).json()["created"]
    page = designer.get("/designer/diff?process=entity_inspection&a=1&b=2")
    assert page.status_code == 200
    assert 'data-element="record_result" data-change="changed"' in page.text
    assert 'data-element="start" data-change="moved"' in page.text
    assert '"changed": ["record_result"]' in page.text
    assert designer.get("/designer/diff?process=entity_inspection&a=1&b=9").status_code == 404


def test_dmn_validation_checks_cells_as_python(http):
    designer = http("designer")
    page = designer.get("/designer/decision/route_by_risk.dmn")
    assert page.status_code == 200 and 'id="python-note"' in page.text and "FEEL" in page.text
    bad = _source("route_by_risk.dmn").replace("<text>? == \"A\"</text>", "<text>? = \"A\"</text>")
    r = designer.post("/designer/validate", {"file_name": "route_by_risk.dmn", "xml": bad})
    assert r.status_code == 400
    assert [(i["element_id"], i["field"]) for i in r.json()["issues"]] == [("r_low", "inputEntry:in_class")]
    assert designer.get("/designer/decision/nope.dmn").status_code == 404


def test_supervisor_queues_a_simulation_for_the_worker(http, web_env):
    """The Simulate form queues a job and answers with its page (the run, the what-if tables, the limits:
    tests/web/test_simulation_jobs.py)."""
    r = http("supervisor").post("/designer/simulate", {"entities": "60", "seed": "3"})
    assert r.status_code == 303 and re.search(r"/designer/simulations/\d+$", r.headers["Location"])
    page = http("supervisor").get(r.headers["Location"])
    assert page.status_code == 200 and 'data-status="queued"' in page.text
    with web_env.tx() as s:  # nothing was simulated in the request
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    bad = http("designer").post("/designer/simulate", {"entities": "5"})
    assert bad.status_code == 400


# --------------------------------------------------------------------------------------------- browser
def sign_in(page, role: str) -> None:
    """conftest's ``sign_in`` clicks the first ``button[type=submit]``, which is the header's language
    switch; this one submits the sign-in form itself."""
    page.goto("/auth/login")
    page.fill("input[name=username]", ROLE_USERS[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")


def _exported_xml(page) -> str:
    with page.expect_download() as info:
        page.click("#download-button")
    return Path(info.value.path()).read_text(encoding="utf-8")


def _bounds(xml: str, element_id: str) -> tuple[float, float]:
    m = re.search(rf'bpmnElement="{element_id}"[^>]*>\s*<dc:Bounds x="([\d.]+)" y="([\d.]+)"', xml)
    assert m, f"no shape for {element_id}"
    return float(m.group(1)), float(m.group(2))


def _open_modeler(page, process_id: str = "entity_inspection"):
    sign_in(page, "designer")
    page.goto("/designer/")
    page.click(f"#process-{process_id} a.button.primary")
    page.wait_for_selector("#canvas[data-ready='1']")


def _shape(page, element_id: str):
    return page.locator(f'.djs-element.djs-shape[data-element-id="{element_id}"]')


def _bring_into_view(page, element_id: str) -> None:
    """Scroll the canvas with the mouse wheel until the shape is inside it."""
    canvas = page.locator("#canvas").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
    for _ in range(40):
        box = _shape(page, element_id).bounding_box()
        if canvas["y"] + 40 < box["y"] and box["y"] + box["height"] < canvas["y"] + canvas["height"] - 40:
            return
        page.mouse.wheel(0, 200 if box["y"] > canvas["y"] else -200)
        page.wait_for_function("() => true")  # let the canvas repaint
    raise AssertionError(f"{element_id} could not be scrolled into view")


def _open_regflow_group(page, element_id: str):
    _shape(page, element_id).click()
    page.wait_for_selector(f'.bio-properties-panel-header-label:has-text("{element_id}"), '
                           f'.bio-properties-panel-header-label')
    group = page.locator('[data-group-id="group-regflow"]')
    group.wait_for()
    header = group.locator(".bio-properties-panel-group-header")
    if "open" not in (header.get_attribute("class") or ""):
        header.click()
    return group


def _set(page, name: str, value: str) -> None:
    field = page.locator(f'[name="{name}"]')
    field.fill(value)
    field.press("Tab")


def test_designer_moves_an_element_sees_an_error_and_deploys(page, web_env):
    ARTIFACTS.mkdir(exist_ok=True)
    _open_modeler(page)
    page.screenshot(path=str(ARTIFACTS / "designer-1-opened.png"))
    before = _bounds(_exported_xml(page), "take_class")

    # drag the "Risk class for routing" script task by mouse
    box = _shape(page, "take_class").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 10, steps=8)
    page.mouse.move(x + 160, y + 20, steps=8)
    page.mouse.up()
    after = _bounds(_exported_xml(page), "take_class")
    assert after[0] > before[0] + 100

    # an invalid change through the properties panel: a broken parameter expression of the score task
    _open_regflow_group(page, "score")
    assert page.locator('input[name="regflow-param-entity_id"]').input_value() == "entity_id"
    _set(page, "regflow-param-entity_id", "entity_id +")
    page.click("#validate-button")
    page.wait_for_selector('#issues li[data-element="score"]')
    assert "parameter:entity_id" in page.locator('#issues li[data-element="score"]').inner_text()
    assert page.locator('.djs-element[data-element-id="score"].rf-invalid').count() == 1
    page.screenshot(path=str(ARTIFACTS / "designer-2-invalid.png"))

    # fix it, and make a real change: a user task's priority, then deploy
    _set(page, "regflow-param-entity_id", "entity_id")
    _bring_into_view(page, "resolve_staffing")
    _open_regflow_group(page, "resolve_staffing")
    assert page.locator('input[name="regflow-priority"]').input_value() == "90"
    assert page.locator('input[name="regflow-candidateGroups"]').input_value() == "supervisors"
    _set(page, "regflow-priority", "95")
    page.click("#validate-button")
    page.wait_for_selector("#status[data-state='ok']")
    assert page.locator(".rf-invalid").count() == 0
    page.click("#deploy-button")
    page.wait_for_selector("#deployed-link")
    assert "entity_inspection v2" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "designer-3-deployed.png"))
    assert _versions(web_env) == [1, 2]

    page.click("#deployed-link")
    page.wait_for_selector('#process-entity_inspection tr[data-version="2"]')
    with web_env.tx() as s:
        xml = s.scalars(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.process_id == "entity_inspection",
                                                                 ProcessDefinition.version == 2)).one()
    assert _bounds(xml, "take_class") == after
    assert '<spiffworkflow:property name="priority" value="95" />' in xml
    assert '<spiffworkflow:parameter id="entity_id" type="int" value="entity_id" />' in xml


def test_names_in_the_ui_languages_are_edited_in_the_regflow_group(page):
    """``nameZh``/``nameEn`` (engine/runtime/labels.py) on a user task and on the process itself."""
    _open_modeler(page, "inspection_campaign")
    _open_regflow_group(page, "approve")
    assert page.locator('input[name="regflow-nameZh"]').input_value() == "审批抽查计划（公开随机数）"
    _set(page, "regflow-nameZh", "审批抽查计划")
    _set(page, "regflow-nameEn", "Plan approval")
    # the empty canvas selects the process
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 40, box["y"] + 40)
    page.wait_for_selector('.bio-properties-panel-header-type:text-matches("process", "i")')
    group = page.locator('[data-group-id="group-regflow"]')
    group.wait_for()
    header = group.locator(".bio-properties-panel-group-header")
    if "open" not in (header.get_attribute("class") or ""):
        header.click()
    assert page.locator('input[name="regflow-nameZh"]').input_value() == "“双随机、一公开”抽查任务"
    _set(page, "regflow-nameZh", "抽查任务")
    xml = _exported_xml(page)
    labels = labels_from_xml(xml)
    assert labels["approve"] == {"": "Approve the plan (public randomness value)", "zh": "审批抽查计划",
                                 "en": "Plan approval"}
    assert labels["inspection_campaign"]["zh"] == "抽查任务"
    _bring_into_view(page, "draw")
    _open_regflow_group(page, "draw")  # a service task: its operator and its names
    assert page.locator('select[name="regflow-operator"]').input_value() == "campaign.draw"
    assert page.locator('input[name="regflow-nameZh"]').input_value() == "分层可验证抽取"


def test_four_eyes_property_is_edited_and_validated_in_the_regflow_group(page):
    """``notCompletedBy`` on a user task: set in the panel it lands in the XML; an id that is no user task of the
    process is refused by validation, naming the element and the property."""
    _open_modeler(page, "inspection_campaign")
    _open_regflow_group(page, "approve")
    assert page.locator('input[name="regflow-notCompletedBy"]').input_value() == ""
    _set(page, "regflow-notCompletedBy", "draft_plan")
    page.click("#validate-button")
    page.wait_for_selector("#status[data-state='ok']")
    assert '<spiffworkflow:property name="notCompletedBy" value="draft_plan" />' in _exported_xml(page)
    _set(page, "regflow-notCompletedBy", "draft_plann")
    page.click("#validate-button")
    page.wait_for_selector('#issues li[data-element="approve"]')
    issue = page.locator('#issues li[data-element="approve"]').inner_text()
    assert "property:notCompletedBy" in issue and "draft_plann" in issue


def test_pasting_invalid_xml_names_the_line_and_changes_nothing(page):
    _open_modeler(page)
    before = _exported_xml(page)
    page.click("#paste summary")
    page.fill("#paste-xml",
              '<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="x">\n  <bpmn:process id="p"\n</bpmn:definitions>')
    page.click("#paste-button")
    page.wait_for_selector("#status[data-state='error']")
    issue = page.locator("#issues li").first.inner_text()
    assert INSPECTION in issue and re.search(r"(行|line) 4", issue)
    page.screenshot(path=str(ARTIFACTS / "designer-paste-invalid.png"))
    assert _exported_xml(page) == before


def test_service_operator_select_lists_the_registry_and_its_parameters(page):
    _open_modeler(page)
    _open_regflow_group(page, "score")
    select_el = page.locator('select[name="regflow-operator"]')
    options = select_el.locator("option").all_inner_texts()
    assert "risk.score" in options and "team.form" in options
    assert select_el.input_value() == "risk.score"
    assert page.locator('input[name="regflow-param-entity_id"]').input_value() == "entity_id"
    select_el.select_option("team.release")
    page.wait_for_selector('input[name="regflow-param-team_id"]')
    xml = _exported_xml(page)
    assert '<spiffworkflow:serviceTaskOperator id="team.release" resultVariable="risk">' in xml
    page.click("#validate-button")
    page.wait_for_selector('#issues li[data-element="score"]')


def test_diff_view_marks_changed_elements(page, http):
    changed = _source().replace(*RENAMED)
    assert http("designer").post("/designer/deploy", {"file_name": INSPECTION, "xml": changed}).json()["created"]
    sign_in(page, "auditor")
    page.goto("/designer/diff?process=entity_inspection&a=1&b=2")
    page.wait_for_selector("#diagram-a[data-ready='1']")
    page.wait_for_selector("#diagram-b[data-ready='1']")
    assert page.locator('#diagram-b .djs-element[data-element-id="record_result"].rf-changed').count() == 1
    assert page.locator("#diagram-b .rf-added, #diagram-b .rf-removed").count() == 0
    page.evaluate("() => document.addEventListener('rf:element-click', (e) => { window.rfClicked = e.detail.id; })")
    page.locator('#diagram-a .djs-element.djs-shape[data-element-id="score"]').click()
    assert page.wait_for_function("() => window.rfClicked").json_value() == "score"


def test_dmn_editor_opens_the_table_and_validates(page):
    sign_in(page, "designer")
    page.goto("/designer/decision/route_by_risk.dmn")
    page.wait_for_selector("#dmn-editor[data-ready='1']")
    assert page.locator("#python-note").is_visible()
    assert page.locator(".tjs-table").count() == 1
    page.click("#validate-button")
    page.wait_for_selector("#status[data-state='ok']")

    cell = page.locator('td[data-row-id="r_low"][data-col-id="in_class"] [contenteditable]')
    cell.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('? = "A"')
    page.click("#validate-button")
    page.wait_for_selector("#status[data-state='error']")
    assert "r_low" in page.locator("#issues").inner_text()
    assert page.locator('td.rf-invalid-cell[data-row-id="r_low"]').count() > 0
    page.screenshot(path=str(ARTIFACTS / "designer-dmn-invalid-cell.png"))
