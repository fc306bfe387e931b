"""The entity portal in the browser: a business signs in with its USCC and the code printed on its order,
submits a rectification report with a photo, gets a receipt, and the waiting rectification instance moves on to
its re-inspection; a wrong or expired code is refused, and repeated failures are throttled (429)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from engine.runtime import clock
from engine.supervision.portal_models import PortalSubmission
from tests.web.test_portal import PNG, issue, open_tasks, two_entities, waiting_rectification


def started_off_the_browser_thread(web_env, uscc: str) -> int:
    """:func:`waiting_rectification` in a thread of its own: the order's notice is signed with ``asyncio.run``,
    which refuses to run in this thread, where Playwright's event loop runs (as a worker would, not a browser)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(waiting_rectification, web_env, uscc).result()


def _sign_in(page, uscc: str, code: str):
    page.goto("/portal/login")
    page.fill("input[name=uscc]", uscc)
    page.fill("input[name=code]", code)
    with page.expect_navigation() as nav:
        page.click("#portal-login button[type=submit]")
    page.wait_for_load_state("networkidle")
    return nav.value


def test_a_business_submits_its_report_with_a_photo_and_the_instance_moves_on(page, web_env, tmp_path):
    uscc, _other = two_entities(web_env)
    iid = started_off_the_browser_thread(web_env, uscc)
    code = issue(web_env, uscc)
    photo = tmp_path / "整改后.png"
    photo.write_bytes(PNG)
    _sign_in(page, uscc, code.lower())  # typed in lower case: still the code
    assert page.url.endswith("/portal/"), page.url
    assert uscc in page.locator("#portal-uscc").inner_text()
    assert page.locator("#portal-orders table").is_visible()  # its open order and deadline
    page.click("#submit-rectification_report")
    page.wait_for_load_state("networkidle")
    page.fill("textarea[name=note]", "已整改：营业执照和食品经营许可证已在店内显著位置公示。")
    page.fill("input[name=contact_phone]", "13800000000")
    page.set_input_files("input[name=files]", str(photo))
    page.click("#portal-send")
    page.wait_for_load_state("networkidle")
    assert "/portal/receipts/P" in page.url
    receipt = page.locator("#receipt-number").inner_text().strip()
    with web_env.tx() as s:
        row = s.scalars(select(PortalSubmission).where(PortalSubmission.receipt == receipt)).one()
        assert row.status == "delivered", row.kept_reason
    assert page.locator("#receipt-status").get_attribute("data-status") == "delivered"
    assert receipt in page.locator(".flash").inner_text()
    assert open_tasks(web_env, iid) == ["reinspect"]
    with web_env.tx() as s:
        row = s.scalars(select(PortalSubmission).where(PortalSubmission.receipt == receipt)).one()
        assert row.instance_id == iid and row.evidence[0]["filename"] == "整改后.png"
    page.click("#portal-home")
    page.wait_for_load_state("networkidle")
    assert receipt in page.locator("#portal-submissions").inner_text()


def test_wrong_and_expired_codes_are_refused_and_repeated_failures_throttled(page, web_env):
    uscc, other = two_entities(web_env)
    good = issue(web_env, uscc)
    expired = issue(web_env, other, days=3, now=clock.now() - timedelta(days=5))
    assert _sign_in(page, other, expired).status == 401
    assert page.locator("#portal-error").is_visible() and "/portal/login" in page.url
    statuses = [_sign_in(page, uscc, "ZZZZZ-ZZZZZ").status for _ in range(5)]
    assert statuses == [401] * 5
    throttled = _sign_in(page, uscc, good)
    assert throttled.status == 429 and int(throttled.headers["retry-after"]) >= 1
    assert "秒后再试" in page.locator("#portal-error").inner_text()
