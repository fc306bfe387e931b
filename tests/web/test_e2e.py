"""End to end in the browser, across roles, on the real process library: every role signs in and
lands on its area; an officer works a real inspection of a demo campaign (the merged checklist),
first with an invalid submission (error shown, nothing saved), then a valid one; an auditor then
finds that instance, sees the path on the diagram and the officer's action in the timeline."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.demo import start_demo_campaigns
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance
from engine.runtime.worker import run_due
from tests.web.conftest import ARTIFACTS, ROLE_USERS, sign_in

LANDING = {"designer": "/designer/", "officer": "/inbox/", "team_leader": "/inbox/", "supervisor": "/supervise/",
           "auditor": "/audit/", "admin": "/admin/"}


@pytest.mark.parametrize("role", sorted(LANDING))
def test_each_role_signs_in_and_lands_on_its_area(page, role):
    sign_in(page, role)
    assert page.url.endswith(LANDING[role]), page.url
    assert page.locator("#sign-out").is_visible()
    who = page.locator(".topbar .who").inner_text()
    assert ROLE_USERS[role] in who
    page.click("#sign-out")
    page.wait_for_load_state("networkidle")
    assert page.locator("#sign-in").is_visible()


@pytest.fixture
def demo_campaign(web_env):
    """A demo campaign launched through the real processes: an inspection is delegated to ``officer``."""

    start_demo_campaigns(web_env.runtime, web_env.factory, web_env.settings)
    with web_env.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.assignee == "officer", HumanTask.status == "open",
                                               HumanTask.bpmn_id == "inspect")).first()
        assert ht is not None, "the demo campaign delegated no inspection to officer"
        return ht.id, ht.instance_id, ht.business_key


def _state(web_env, instance_id: int) -> tuple:
    with web_env.tx() as s:
        inst = s.get(ProcessInstance, instance_id)
        n = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == instance_id))
        return inst.rev, inst.status, n


def _submit(page) -> None:
    page.click("form.rf-form button[type=submit]")
    page.wait_for_load_state("networkidle")


def _done_by(web_env, task_id: int) -> tuple:
    with web_env.tx() as s:
        ht = s.get(HumanTask, task_id)
        return ht.status, ht.completed_by


def test_officer_inspects_then_auditor_traces_it(page, web_env, demo_campaign):
    task_id, instance_id, uscc = demo_campaign
    sign_in(page, "officer")
    page.goto(f"/inbox/?entity={uscc}")
    page.locator(f"#task-{task_id} a.task-link").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("form.rf-form").is_visible()
    before = _state(web_env, instance_id)

    # invalid: nothing filled in
    _submit(page)
    assert page.locator(".rf-error-summary").is_visible()
    assert _state(web_env, instance_id) == before
    page.screenshot(path=str(ARTIFACTS / "e2e-1-invalid-inspection.png"), full_page=True)

    # valid: no problem found, every clause of the merged checklist compliant
    page.fill("#f-inspection_date", "2026-11-20")
    # the method route_by_risk decided is shown and proposed; another one asks for a reason (the page script)
    decided = page.locator("input[type=hidden][name=decided_method]").input_value()
    assert page.locator("#f-method").input_value() == decided in ("on_site", "documentary")
    assert page.locator("#f-method_deviation_reason").is_hidden()
    page.select_option("#f-method", "documentary" if decided == "on_site" else "on_site")
    assert page.locator("#f-method_deviation_reason").is_visible()
    page.select_option("#f-method", decided)
    assert page.locator("#f-method_deviation_reason").is_hidden()
    page.check("input[name='credentials_shown'][value='true']")
    page.select_option("#f-result_code", "result_1")
    for radio in page.locator("input[type=radio][value='compliant']").all():
        radio.check()
    page.check("input[name='party_signed'][value='true']")
    page.screenshot(path=str(ARTIFACTS / "e2e-2-filled-inspection.png"), full_page=True)
    _submit(page)
    assert page.url.endswith("/inbox/"), page.locator("body").inner_text()[:2000]
    assert _done_by(web_env, task_id) == ("completed", "officer")
    page.click("#sign-out")

    sign_in(page, "auditor")
    page.goto("/audit/")
    page.fill("#audit-search input[name=entity]", uscc)
    page.click("#audit-apply")
    page.wait_for_selector(f"#instance-{instance_id}")
    page.click(f"#instance-{instance_id} a.instance-link")
    page.wait_for_selector('#instance-diagram[data-ready="1"]')
    assert page.locator('#instance-diagram .djs-element.rf-done[data-element-id="inspect"]').count() == 1
    assert page.locator('#instance-diagram .djs-element.rf-done[data-element-id="score"]').count() == 1
    assert page.locator("#instance-diagram .djs-element.rf-flow").count() > 3
    # "no problem found" ends the inspection: the end event is on the path and nothing is current
    assert _state(web_env, instance_id)[1] == "completed"
    assert page.locator('#instance-diagram .djs-element.rf-done[data-element-id="end"]').count() == 1
    assert page.locator("#instance-diagram .djs-element.rf-current").count() == 0
    action = page.locator('#timeline li[data-kind="task_completed"][data-actor="officer"]')
    assert action.count() == 1 and "result_1" in action.inner_text()
    assert page.locator("#chain-verdict").get_attribute("data-ok") == "1"
    page.screenshot(path=str(ARTIFACTS / "e2e-3-auditor-trace.png"), full_page=True)


def test_approver_approves_a_campaign_plan_from_the_inbox(page, web_env, demo_campaign):
    """Supervisors work their own tasks in the inbox: the demo's second campaign waits at ``approve``
    (candidate group ``approvers``); ``approver`` (role supervisor only) finds it, opens it, is refused
    without the public randomness value, approves with it, and the campaign draws; the page says the launch is
    queued, and the worker launches the inspections."""
    with web_env.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.bpmn_id == "approve", HumanTask.status == "open")).one()
        task_id, campaign_instance = ht.id, ht.instance_id
    sign_in(page, username="approver")
    assert page.locator("nav.areas a[href='/inbox/']").is_visible()
    page.goto("/inbox/")
    page.locator(f"#task-{task_id} a.task-link").click()
    page.wait_for_load_state("networkidle")
    # the plan to approve is on the page, read only, above the approval form
    plan = page.locator("#earlier-steps details[data-form-id='campaign_plan']")
    assert plan.get_attribute("open") is not None
    assert "演示抽查：待审批计划 (demo)" in plan.inner_text() and "D类（高风险）抽查比例" in plan.inner_text()
    page.select_option("#f-decision", "approve")
    before = _state(web_env, campaign_instance)
    _submit(page)
    assert page.locator(".rf-error-summary").is_visible()
    assert _state(web_env, campaign_instance) == before

    page.fill("#f-public_random_value", "05 09 13 21 28 33 + 11")
    page.fill("#f-public_random_source", "福利彩票双色球 (test)")
    page.fill("#f-notice_date", "2026-12-07")
    _submit(page)
    assert page.url.endswith("/inbox/"), page.locator("body").inner_text()[:2000]
    assert _done_by(web_env, task_id) == ("completed", "approver")
    # the approval only queued the launch (async = before): the page says so, and a worker launches them
    assert any("已转入后台队列" in t and "为每个抽中主体启动一个检查流程" in t
               for t in page.locator(".flash").all_inner_texts()), page.locator("body").inner_text()[:2000]
    with web_env.tx() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)
                        .where(ProcessInstance.parent_instance_id == campaign_instance)) == 0
    assert run_due(web_env.runtime, web_env.factory, background=False).continuations_run == 1
    with web_env.tx() as s:
        children = s.scalar(select(func.count()).select_from(ProcessInstance)
                            .where(ProcessInstance.parent_instance_id == campaign_instance))
    assert children > 0
    assert page.locator(f"#task-{task_id}").count() == 0
