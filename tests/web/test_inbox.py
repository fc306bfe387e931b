"""The officers' inbox over real HTTP: list and filters, claim / bulk claim / unclaim / delegate,
the task form (422 on invalid data with nothing saved, 409 when stale or already completed), evidence
uploads (413/415 with nothing stored), another officer's task (403), jurisdiction, the entity dossier,
reminder badges — and a browser run of the whole claim → invalid → valid path."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.demo import start_demo_campaigns
from engine.runtime import clock
from engine.runtime.models import AuditEvent, Evidence, HumanTask, ProcessInstance
from engine.runtime.reminders import run_reminders
from engine.runtime.users import set_jurisdiction
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes, start_task
from tests.web.conftest import ARTIFACTS, PASSWORD

PDF = b"%PDF-1.4\n% regflow test\n1 0 obj <<>> endobj\n%%EOF\n"
VALID = {"received_on": "2026-10-09", "reason": "设备到货延迟", "requested_until": "2026-10-30",
         "decision": "approve", "extension_days": "10", "opinion": "同意延期十个工作日"}


@pytest.fixture
def tasks(web_env):
    """Three extension-request tasks for the officers' group on demo entities (the first overdue)."""
    rt = web_env.runtime
    now = clock.now()
    with web_env.tx() as s:
        deploy_task_processes(rt, s, ("web_extension", {"form_id": "extension_request"}))
        entities = s.scalars(select(Entity).order_by(Entity.id).limit(3)).all()
        ids = [start_task(rt, s, "web_extension", key=e.uscc, due=now + timedelta(days=i) - timedelta(hours=2)).id
               for i, e in enumerate(entities)]
    return ids


def _task(web_env, task_id: int) -> HumanTask:
    with web_env.tx() as s:
        ht = s.get(HumanTask, task_id)
        s.expunge(ht)
        return ht


def _snapshot(web_env, task_id: int) -> tuple:
    with web_env.tx() as s:
        ht = s.get(HumanTask, task_id)
        inst = s.get(ProcessInstance, ht.instance_id)
        events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == inst.id))
        return ht.status, ht.assignee, inst.rev, inst.status, events


def _rev(html: str) -> int:
    m = re.search(r'action="/inbox/tasks/\d+\?rev=(\d+)"', html)
    assert m, "the task page carries no form action with its rev"
    return int(m.group(1))


def _claim(web_env, task_id: int, user: str) -> None:
    with web_env.tx() as s:
        web_env.runtime.claim(s, task_id, user)


# ------------------------------------------------------------------------------------------ the list
def test_inbox_lists_tasks_and_marks_overdue(http, tasks):
    officer = http("officer")
    r = officer.get("/inbox/")
    assert r.status_code == 200
    for tid in tasks:
        assert f'id="task-{tid}"' in r.text
    assert re.search(rf'<tr id="task-{tasks[0]}" class="overdue"', r.text)
    assert "已逾期" in r.text and "共 3 项任务" in r.text
    r = officer.get("/inbox/?due=overdue")
    assert f'id="task-{tasks[0]}"' in r.text and f'id="task-{tasks[1]}"' not in r.text
    assert officer.get("/inbox/?page=abc").status_code == 400
    assert http("designer").get("/inbox/").status_code == 403
    assert http().get("/inbox/").status_code == 302


def test_search_by_entity_name_and_uscc(http, web_env, tasks):
    ht = _task(web_env, tasks[1])
    officer = http("officer")
    r = officer.get(f"/inbox/?entity={ht.business_key}")
    assert f'id="task-{tasks[1]}"' in r.text and f'id="task-{tasks[0]}"' not in r.text

    with web_env.tx() as s:
        name = s.scalars(select(Entity.name).where(Entity.uscc == ht.business_key)).one()
    r = officer.get("/inbox/", params={"entity": name})
    assert f'id="task-{tasks[1]}"' in r.text


def test_claim_and_unclaim(http, web_env, tasks):
    officer = http("officer")
    r = officer.post(f"/inbox/tasks/{tasks[0]}/claim", {"next": "/inbox/"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/inbox/")
    assert _task(web_env, tasks[0]).assignee == "officer"
    page = officer.get("/inbox/?scope=mine").text
    assert f'id="task-{tasks[0]}"' in page and f'id="task-{tasks[1]}"' not in page
    assert f'/inbox/tasks/{tasks[0]}/unclaim' in page
    # officer2 no longer sees it
    assert f'id="task-{tasks[0]}"' not in http(username="officer2").get("/inbox/").text
    r = officer.post(f"/inbox/tasks/{tasks[0]}/unclaim", {})
    assert r.status_code == 302 and _task(web_env, tasks[0]).assignee is None
    # unclaiming a task one does not hold: a clear 403, nothing changed
    before = _snapshot(web_env, tasks[1])
    r = officer.post(f"/inbox/tasks/{tasks[1]}/unclaim", {})
    assert r.status_code == 403 and _snapshot(web_env, tasks[1]) == before


def test_bulk_claim_reports_each_task(http, web_env, tasks):
    _claim(web_env, tasks[2], "officer2")
    officer = http("officer")
    r = officer.post("/inbox/claim", {"task_id": [str(t) for t in tasks] + ["999999"], "next": "/inbox/"})
    assert r.status_code == 302
    assert [_task(web_env, t).assignee for t in tasks] == ["officer", "officer", "officer2"]
    page = officer.get("/inbox/").text
    assert f"已认领 2 项任务：{tasks[0]}, {tasks[1]}" in page
    assert f"任务 {tasks[2]} 认领失败：任务 {tasks[2]} 已被 officer2 认领。" in page
    assert "任务 999999 不存在" in page


def test_delegate_is_audited(http, web_env, tasks):
    _claim(web_env, tasks[0], "officer")
    officer = http("officer")
    page = officer.get(f"/inbox/tasks/{tasks[0]}").text
    assert 'value="officer2"' in page and 'value="designer"' not in page
    before = _snapshot(web_env, tasks[0])
    r = officer.post(f"/inbox/tasks/{tasks[0]}/delegate", {"to_user": "designer", "reason": "休假"})
    assert r.status_code == 400 and _snapshot(web_env, tasks[0]) == before
    r = officer.post(f"/inbox/tasks/{tasks[0]}/delegate", {"to_user": "officer2", "reason": ""})
    assert r.status_code == 400 and "理由" in r.text
    r = officer.post(f"/inbox/tasks/{tasks[0]}/delegate", {"to_user": "officer2", "reason": "本人休假"})
    assert r.status_code == 302
    ht = _task(web_env, tasks[0])
    assert ht.assignee == "officer2"
    with web_env.tx() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == ht.instance_id,
                                                AuditEvent.kind == "task_delegated")).one()
        assert (ev.actor, ev.detail["from"], ev.detail["to"], ev.detail["reason"]) == \
            ("officer", "officer", "officer2", "本人休假")


# ------------------------------------------------------------------------------------------ the form
def test_invalid_form_is_422_and_nothing_saved_then_valid_completes(http, web_env, tasks):
    _claim(web_env, tasks[0], "officer")
    officer = http("officer")
    page = officer.get(f"/inbox/tasks/{tasks[0]}")
    assert page.status_code == 200 and 'name="received_on"' in page.text and "延期整改申请" in page.text
    rev = _rev(page.text)
    before = _snapshot(web_env, tasks[0])
    bad = {**VALID, "received_on": "2026-13-01", "reason": "", "extension_days": "99"}
    r = officer.post(f"/inbox/tasks/{tasks[0]}?rev={rev}", bad)
    assert r.status_code == 422
    assert "此项为必填项" in r.text and "表单有错误，未保存任何内容" in r.text
    assert 'value="设备到货延迟"' not in r.text and "同意延期十个工作日" in r.text  # what was typed is kept
    assert _snapshot(web_env, tasks[0]) == before
    r = officer.post(f"/inbox/tasks/{tasks[0]}?rev={rev}", VALID)
    assert r.status_code == 302
    ht = _task(web_env, tasks[0])
    assert (ht.status, ht.completed_by) == ("completed", "officer")
    with web_env.tx() as s:
        inst = s.get(ProcessInstance, ht.instance_id)
        assert inst.status == "completed"
        done = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == inst.id,
                                                  AuditEvent.kind == "task_completed")).one()
        assert done.data_diff["extension_days"]["new"] == 10  # the clean (coerced) data was stored
    assert f'id="task-{tasks[0]}"' not in officer.get("/inbox/").text


def test_stale_or_already_completed_submission_is_409(http, web_env, tasks):
    officer = http("officer")
    rev = _rev(officer.get(f"/inbox/tasks/{tasks[1]}").text)
    before = _snapshot(web_env, tasks[1])
    r = officer.post(f"/inbox/tasks/{tasks[1]}?rev={rev + 5}", VALID)
    assert r.status_code == 409 and "在您打开后已发生变化" in r.text
    assert _snapshot(web_env, tasks[1]) == before
    assert officer.post(f"/inbox/tasks/{tasks[1]}", VALID).status_code == 400  # no rev at all
    # officer2 completes it first; officer's submission of the page rendered before is refused
    with web_env.tx() as s:
        web_env.runtime.complete_task(s, tasks[1], "officer2", {**VALID, "extension_days": 10}, rev=rev)
    after = _snapshot(web_env, tasks[1])
    r = officer.post(f"/inbox/tasks/{tasks[1]}?rev={rev}", {**VALID, "opinion": "不同意"})
    assert r.status_code == 409 and "已由 officer2 办结" in r.text and "未保存任何内容" in r.text
    assert _snapshot(web_env, tasks[1]) == after


def test_another_officers_task_is_403(http, web_env, tasks):
    _claim(web_env, tasks[2], "officer2")
    officer = http("officer")
    before = _snapshot(web_env, tasks[2])
    r = officer.get(f"/inbox/tasks/{tasks[2]}")
    assert r.status_code == 403 and "已分配给 officer2" in r.text
    assert officer.post(f"/inbox/tasks/{tasks[2]}?rev=0", VALID).status_code == 403
    assert officer.post(f"/inbox/tasks/{tasks[2]}/evidence", {},
                        files={"file": ("a.pdf", PDF, "application/pdf")}).status_code == 403
    assert officer.post(f"/inbox/tasks/{tasks[2]}/claim", {}).status_code == 409
    assert _snapshot(web_env, tasks[2]) == before
    assert officer.get("/inbox/tasks/999999").status_code == 404


# ------------------------------------------------------------------------------------------ evidence
def _blobs(web_env) -> list:
    root = web_env.tmp / "uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_evidence_goes_into_the_form(http, web_env, tasks):
    _claim(web_env, tasks[0], "officer")
    officer = http("officer")
    r = officer.post(f"/inbox/tasks/{tasks[0]}/evidence", {}, files={"file": ("通知书.pdf", PDF, "application/pdf")})
    assert r.status_code == 302
    sha = hashlib.sha256(PDF).hexdigest()
    page = officer.get(f"/inbox/tasks/{tasks[0]}").text
    assert "通知书.pdf" in page and sha in page
    assert re.search(r'<input type="hidden" name="attachments" value="[^"]*' + sha, page)
    # JSON for the page script
    r = officer.post(f"/inbox/tasks/{tasks[0]}/evidence", {}, files={"file": ("x.txt", "记录".encode(), "text/plain")},
                     headers={"Accept": "application/json"})
    assert r.status_code == 201 and r.json()["evidence"][0]["content_type"] == "text/plain"
    with web_env.tx() as s:
        ev_id = s.scalars(select(Evidence.id).where(Evidence.sha256 == sha)).one()
    got = officer.get(f"/inbox/evidence/{ev_id}")
    assert got.status_code == 200 and got.content == PDF
    assert http(username="officer2").get(f"/inbox/evidence/{ev_id}").status_code == 403
    # the reference travels with the submitted form into the task data
    data = {**VALID, "attachments": f'{{"sha256": "{sha}", "filename": "通知书.pdf", "size": {len(PDF)}}}'}
    rev = _rev(page)
    assert officer.post(f"/inbox/tasks/{tasks[0]}?rev={rev}", data).status_code == 302
    with web_env.tx() as s:
        ht = s.get(HumanTask, tasks[0])
        done = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == ht.instance_id,
                                                  AuditEvent.kind == "task_completed")).one()
        assert done.data_diff["attachments"]["new"][0]["sha256"] == sha


@pytest.mark.parametrize("name, data, status, text", [
    ("big.pdf", PDF + b"0" * (1024 * 1024), 413, "超过 1 MB 的上限"),          # over the limit, under the request cap
    ("huge.pdf", PDF + b"0" * (3 * 1024 * 1024), 413, "超过 1 MB 的上限"),     # refused by the request cap
    ("tool.exe", b"MZ\x90\x00" + b"\x00" * 64, 415, "不接受此文件类型"),
    ("scan.pdf", b"MZ\x90\x00" + b"\x00" * 64, 415, "文件内容与文件类型 .pdf 不符"),
    ("empty.txt", b"", 400, "文件为空"),
])
def test_bad_uploads_are_refused_and_nothing_stored(http, web_env, tasks, name, data, status, text):
    _claim(web_env, tasks[0], "officer")
    officer = http("officer")
    r = officer.post(f"/inbox/tasks/{tasks[0]}/evidence", {}, files={"file": (name, data, "application/pdf")})
    assert r.status_code == status and text in r.text
    assert _blobs(web_env) == []
    with web_env.tx() as s:
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0


# ---------------------------------------------------------------------------------- jurisdiction, dossier
def test_jurisdiction_limits_tasks_and_dossiers(http, web_env, tasks):
    ht = _task(web_env, tasks[0])
    with web_env.tx() as s:
        district = s.scalars(select(Entity.district).where(Entity.uscc == ht.business_key)).one()
        other = s.scalars(select(Entity.district).where(Entity.district != district)).first()
        set_jurisdiction(s, "officer2", other, actor="admin")
    officer2 = http(username="officer2")
    assert f'id="task-{tasks[0]}"' not in officer2.get("/inbox/").text
    r = officer2.get(f"/inbox/tasks/{tasks[0]}")
    assert r.status_code == 403 and "的管辖范围内" in r.text
    r = officer2.get(f"/inbox/entities/{ht.business_key}")
    assert r.status_code == 403 and district in r.text
    before = _snapshot(web_env, tasks[0])
    assert officer2.post(f"/inbox/tasks/{tasks[0]}/claim", {}).status_code == 403
    officer2.post("/inbox/claim", {"task_id": [str(tasks[0])]})
    assert _snapshot(web_env, tasks[0]) == before
    assert "的管辖范围内" in officer2.get("/inbox/").text


def test_name_part_search_within_a_jurisdiction(http, web_env, tasks):
    """Two characters of an entity's name find its task (through the name bigram index) for an officer whose
    jurisdiction holds the entity's district, in the search and in the default view; not for one whose
    jurisdiction does not."""
    ht = _task(web_env, tasks[0])
    with web_env.tx() as s:
        name, district = s.execute(select(Entity.name, Entity.district).where(Entity.uscc == ht.business_key)).one()
        other = s.scalars(select(Entity.district).where(Entity.district != district)).first()
        set_jurisdiction(s, "officer", district, actor="admin")
        set_jurisdiction(s, "officer2", other, actor="admin")
    part = name[len(name) // 2 - 1:len(name) // 2 + 1]
    officer, officer2 = http("officer"), http(username="officer2")
    assert f'id="task-{tasks[0]}"' in officer.get("/inbox/", params={"entity": part}).text
    assert f'id="task-{tasks[0]}"' in officer.get("/inbox/").text
    assert f'id="task-{tasks[0]}"' not in officer2.get("/inbox/", params={"entity": part}).text
    assert f'id="task-{tasks[0]}"' not in officer2.get("/inbox/").text


def test_dossier_shows_score_reasons_and_history(http, web_env, tasks):
    ht = _task(web_env, tasks[0])
    with web_env.tx() as s:
        e = s.scalars(select(Entity).where(Entity.uscc == ht.business_key)).one()
        name, klass, version = e.name, e.risk_class, e.model_version
    r = http("officer").get(f"/inbox/entities/{ht.business_key}")
    assert r.status_code == 200
    assert name in r.text and f'id="risk-class">{klass}<' in r.text and version in r.text
    assert 'id="hazards"' in r.text and 'id="inspections"' in r.text and 'id="cases"' in r.text
    assert http("supervisor").get(f"/inbox/entities/{ht.business_key}").status_code == 200
    assert http("auditor").get(f"/inbox/entities/{ht.business_key}").status_code == 200
    assert http("designer").get(f"/inbox/entities/{ht.business_key}").status_code == 403
    assert http("officer").get("/inbox/entities/91000000000000000X").status_code == 404


def test_reminder_and_escalation_badges(http, web_env, tasks):
    with web_env.tx() as s:
        rep = run_reminders(s, remind_within=timedelta(hours=24))
    assert rep.escalated == [tasks[0]] and rep.reminded == [tasks[1]]
    page = http("officer").get("/inbox/").text
    row0 = page.split(f'id="task-{tasks[0]}"', 1)[1].split("</tr>", 1)[0]
    row1 = page.split(f'id="task-{tasks[1]}"', 1)[1].split("</tr>", 1)[0]
    assert "已上报" in row0 and "已提醒" in row1


# ------------------------------------------------------------------------------------------ browser
def _sign_in(page, username: str) -> None:
    """Sign in through the login form (its own submit button, not the header's language switch)."""
    page.goto("/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_officer_claims_fails_then_completes_in_the_browser(page, web_env, tasks):
    task_id = tasks[0]
    _sign_in(page, "officer")
    page.goto("/inbox/")
    row = page.locator(f"#task-{task_id}")
    row.locator("button.claim").click()
    page.wait_for_load_state("networkidle")
    assert _task(web_env, task_id).assignee == "officer"
    page.locator(f"#task-{task_id} a.task-link").click()
    page.wait_for_load_state("networkidle")
    before = _snapshot(web_env, task_id)
    # invalid: required fields left empty
    page.fill("#f-received_on", "2026-10-09")
    page.select_option("#f-decision", "approve")
    page.click("form.rf-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator(".rf-error-summary").is_visible()
    assert "此项为必填项" in page.locator(".rf-error-summary").inner_text()
    assert _snapshot(web_env, task_id) == before
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inbox_task_invalid_form.png"), full_page=True)
    # valid
    page.fill("#f-reason", "设备到货延迟")
    page.fill("#f-requested_until", "2026-10-30")
    page.select_option("#f-decision", "approve")
    page.fill("#f-extension_days", "10")
    page.fill("#f-opinion", "同意延期十个工作日")
    page.click("form.rf-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/inbox/")
    assert page.locator(f"#task-{task_id}").count() == 0
    assert "已办结" in page.locator(".flash.success").inner_text()
    assert _task(web_env, task_id).status == "completed"


def test_task_page_shows_the_earlier_steps_read_only(http, web_env):
    """The approver sees the plan being approved (the planner's form, read only, from the instance's
    data); the approval form itself is not repeated among the earlier steps; a business key that is not
    an entity is labelled as such, not linked to a dossier."""

    waiting = start_demo_campaigns(web_env.runtime, web_env.factory, web_env.settings)["awaiting_approval"]
    with web_env.tx() as s:
        task_id = s.scalars(select(HumanTask.id).where(HumanTask.instance_id == waiting,
                                                       HumanTask.status == "open")).one()
    approver = http(username="approver")
    page = approver.get(f"/inbox/tasks/{task_id}").text
    steps = re.search(r'<section class="card earlier-steps" id="earlier-steps">(.*?)</section>', page, re.S).group(1)
    assert steps.count("<details") == 1 and 'data-form-id="campaign_plan"' in steps and "制定抽查计划" in steps
    assert re.search(r"<dt>计划名称</dt>\s*<dd[^>]*>演示抽查：待审批计划 \(demo\)</dd>", steps)
    assert re.search(r"<dt>D类（高风险）抽查比例</dt>\s*<dd[^>]*>3 %</dd>", steps)
    assert re.search(r"<dt>部门联合抽查</dt>\s*<dd[^>]*>是</dd>", steps)
    assert "年度报告公示信息检查" in steps and "书面检查" in steps  # the items table, method by its label
    assert "公开随机数" not in steps  # this task's own form
    assert "<dt>业务编号</dt>" in page and "/inbox/entities/DEMO-CAMPAIGN-2" not in page
    listing = approver.get("/inbox/").text
    assert "DEMO-CAMPAIGN-2" in listing and "/inbox/entities/DEMO-CAMPAIGN-2" not in listing
    en = approver.get(f"/inbox/tasks/{task_id}?lang=en").text
    assert "Earlier steps of this case" in en and re.search(r"<dt>Campaign name</dt>", en)
