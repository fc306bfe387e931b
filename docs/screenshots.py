"""Screenshots of a running demo workbench for the README (``./run`` first, then
``.venv/bin/python docs/screenshots.py [http://127.0.0.1:8000]``). Drives Debian's chromium."""
from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "regflow-demo"


def sign_in(page, user: str) -> None:
    page.goto(f"{BASE}/auth/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")


def shot(page, name: str, full: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print(OUT / f"{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        page = ctx.new_page()
        sign_in(page, "leader")
        shot(page, "inbox")
        page.locator("table a.task-link").first.click()
        shot(page, "task", full=True)
        page.goto(f"{BASE}/inbox/")
        page.locator("table a.entity-link, table a[href*='/inbox/entities/']").first.click()
        shot(page, "dossier", full=True)
        ctx.clear_cookies()
        sign_in(page, "designer")
        page.goto(f"{BASE}/designer/process/entity_inspection/edit")
        page.wait_for_selector(".djs-container")
        shot(page, "designer")
        ctx.clear_cookies()
        sign_in(page, "auditor")
        page.goto(f"{BASE}/audit/?process=entity_inspection")
        page.locator("a.instance-link").first.click()
        page.wait_for_selector('#instance-diagram[data-ready="1"]')
        shot(page, "audit", full=True)
        ctx.clear_cookies()
        sign_in(page, "supervisor")
        shot(page, "supervise", full=True)
        ctx.clear_cookies()
        page.goto(f"{BASE}/public/")
        shot(page, "public")
        browser.close()


if __name__ == "__main__":
    main()
