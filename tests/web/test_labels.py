"""Process and task names follow the page's language: the library's ``nameZh`` properties in Chinese
(the default), the BPMN names in English; a task without a Chinese name shows its form's Chinese title."""
from __future__ import annotations

import re

from sqlalchemy import select

from engine.runtime.models import HumanTask
from tests.web.test_e2e import demo_campaign  # noqa: F401 (fixture)
from tests.web.test_inbox import tasks  # noqa: F401 (fixture)


def _cell(html: str, task_id: int) -> str:
    m = re.search(rf'<tr id="task-{task_id}".*?</tr>', html, re.S)
    assert m, f"task {task_id} is not listed"
    return m.group(0)


def test_inbox_and_task_page_speak_the_page_language(http, web_env, demo_campaign):  # noqa: F811
    task_id, _instance_id, uscc = demo_campaign
    officer = http("officer")
    row = _cell(officer.get("/inbox/").text, task_id)
    assert "现场检查（合并检查单）" in row and "单户市场主体抽查检查" in row
    assert "Inspection (merged checklist)" not in row
    assert re.search(r'<option value="entity_inspection"[^>]*>单户市场主体抽查检查</option>',
                     officer.get("/inbox/").text)  # the process filter
    page = officer.get(f"/inbox/tasks/{task_id}").text
    assert re.search(r"<h1>现场检查（合并检查单）", page) and "单户市场主体抽查检查" in page

    row = _cell(officer.get("/inbox/?lang=en").text, task_id)
    assert "Inspection (merged checklist)" in row and "Inspection of one drawn entity" in row
    assert "现场检查" not in row
    assert re.search(r"<h1>Inspection \(merged checklist\)", officer.get(f"/inbox/tasks/{task_id}?lang=en").text)

    dossier = officer.get(f"/inbox/entities/{uscc}").text
    assert "现场检查（合并检查单）" in dossier
    auditor = http("auditor")
    audit = auditor.get(f"/audit/instances/{_instance_id}").text
    assert re.search(r"<h1>实例 \d+ 单户市场主体抽查检查", audit)
    # the timeline and the routing decisions name the elements in Chinese, the diagram too
    assert re.search(r'data-focus-element="score">风险评分（risk.score）</button>', audit)
    assert re.search(r'data-focus-element="route">按风险分流（DMN）</button>', audit)
    xml_url = re.search(r'data-xml-url="([^"]+)"', audit).group(1).replace("&amp;", "&")
    assert xml_url.endswith("lang=zh")
    xml = auditor.get(xml_url).text
    assert 'id="score" name="风险评分（risk.score）"' in xml and 'id="inspect" name="现场检查（合并检查单）"' in xml
    english = auditor.get(f"/audit/instances/{_instance_id}?lang=en").text
    assert 'data-focus-element="score">Score entity (risk.score)</button>' in english
    assert 'id="score" name="Score entity (risk.score)"' in auditor.get(
        re.search(r'data-xml-url="([^"]+)"', english).group(1).replace("&amp;", "&")).text


def test_a_task_without_a_chinese_name_shows_its_form_title(http, web_env, tasks):  # noqa: F811
    with web_env.tx() as s:
        ht = s.get(HumanTask, tasks[0])
        name, form_id = ht.name, ht.form_id
    assert form_id == "extension_request" and name and not re.search(r"[\u4e00-\u9fff]", name)
    officer = http("officer")
    assert "延期整改申请" in _cell(officer.get("/inbox/").text, tasks[0])
    assert name in _cell(officer.get("/inbox/?lang=en").text, tasks[0])
    with web_env.tx() as s:  # the stored name is untouched
        assert s.scalar(select(HumanTask.name).where(HumanTask.id == tasks[0])) == name
