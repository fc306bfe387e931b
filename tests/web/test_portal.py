"""The entity portal over real HTTP: a business signs in with its USCC and access code (wrong, expired or revoked
codes refused; repeated failures throttled with 429 and Retry-After), sees its own notices and orders, submits
a rectification report with a photo that moves the waiting instance on, gets a receipt; another business cannot
read that receipt; what no instance waits for reaches the officers' list; hostile input gets a 4xx, never a 500.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine.runtime import clock
from engine.runtime.models import HumanTask, Incident, Job, MessageSubscription
from engine.supervision import draw, portal
from engine.supervision.campaign_models import DrawResult
from engine.supervision.document_models import Agency, Document
from engine.supervision.portal_models import PortalAccessCode, PortalSubmission
from engine.supervision.registry_models import CheckItem
from scoring.models import Entity
from tests.web.conftest import HttpUser

KEY = "test-secret-key"  # the web_env fixture's secret: the app hashes codes with it
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 256


def two_entities(web_env) -> tuple[str, str]:
    with web_env.tx() as s:
        rows = s.scalars(select(Entity.uscc).where(Entity.status == "active").order_by(Entity.id).limit(2)).all()
    return rows[0], rows[1]


def issue(web_env, uscc: str, *, days: int = 30, now=None, document_id=None) -> str:
    with web_env.tx() as s:
        return portal.issue_access_code(s, uscc=uscc, ttl_days=days, now=now, document_id=document_id, key=KEY)


def waiting_rectification(web_env, uscc: str) -> int:
    """A rectification instance of ``uscc`` waiting for its order's service (and, meanwhile, the report)."""
    finding = {"item_code": "SC-FOOD-01", "clause": "C-3.2", "description": "许可证未公示", "hazard_grade": "medium"}
    with web_env.tx() as s:
        entity_id = s.scalar(select(Entity.id).where(Entity.uscc == uscc))
        data = {"uscc": uscc, "entity_id": entity_id, "findings": [finding], "risk_class": "B",
                "reinspectors": ["officer", "officer2"]}
        iid = web_env.runtime.start(s, "rectification", business_key=uscc, data=data, actor="leader").instance.id
    with web_env.tx() as s:
        waits = s.scalars(select(MessageSubscription.bpmn_id).where(MessageSubscription.instance_id == iid)).all()
        problems = [i.message for i in s.scalars(select(Incident).where(Incident.instance_id == iid))]
        problems += [f"{j.bpmn_id}: {j.last_error}" for j in s.scalars(select(Job).where(Job.instance_id == iid))
                     if j.last_error]
    assert "early_report" in waits, f"rectification {iid} does not wait for the report: {problems}"
    return iid


def open_tasks(web_env, iid: int) -> list[str]:
    with web_env.tx() as s:
        return [t.bpmn_id for t in s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                                     HumanTask.status == "open"))]


def business(live, uscc: str, code: str, expect: int = 302) -> HttpUser:
    u = HttpUser(live)
    u.refresh_csrf(u.http.get(live + "/portal/login").text)
    r = u.post("/portal/login", {"uscc": uscc, "code": code})
    assert r.status_code == expect, r.text[:500]
    if expect == 302:
        assert r.headers["Location"].endswith("/portal/")
        u.refresh_csrf(u.get("/portal/").text)
    return u


def test_a_business_signs_in_sees_its_matters_and_its_report_moves_the_instance_on(live, web_env):
    uscc, _other = two_entities(web_env)
    iid = waiting_rectification(web_env, uscc)
    assert open_tasks(web_env, iid) == ["serve_order"]
    with web_env.tx() as s:
        agency = s.scalars(select(Agency).limit(1)).first()
        if agency is None:
            agency = Agency(code="示市监", name="示例市场监督管理局", districts=[], updated_at=clock.now())
            s.add(agency)
            s.flush()
        doc = Document(number="示市监责改〔2026〕901号", kind="rectification_notice", agency_id=agency.id, year=2026,
                       seq=901, uscc=uscc, issued_at=clock.now(), issued_by="officer", status="issued")
        s.add(doc)
        s.flush()
        doc_id = doc.id
    u = business(live, uscc, issue(web_env, uscc, document_id=doc_id))
    home = u.get("/portal/")
    assert home.status_code == 200
    assert "示市监责改〔2026〕901号" in home.text and "责令改正通知书" in home.text  # its notice
    assert 'id="portal-orders"' in home.text and "#" in home.text.split('id="portal-orders"')[1][:2000]
    form = u.get("/portal/submit/rectification_report")
    assert form.status_code == 200 and 'type="file"' in form.text
    r = u.http.post(live + "/portal/submit/rectification_report",
                    data={"csrf_token": u.csrf, "note": "已整改，许可证已公示", "contact_phone": "13800000000"},
                    files=[("files", ("现场.png", PNG, "image/png"))], allow_redirects=False)
    assert r.status_code == 302 and "/portal/receipts/P" in r.headers["Location"]
    receipt = r.headers["Location"].rsplit("/", 1)[1]
    page = u.get(f"/portal/receipts/{receipt}")
    assert page.status_code == 200 and receipt in page.text and 'data-status="delivered"' in page.text
    assert open_tasks(web_env, iid) == ["reinspect"]  # the waiting instance moved on
    with web_env.tx() as s:
        row = s.scalars(select(PortalSubmission).where(PortalSubmission.receipt == receipt)).one()
        assert (row.status, row.instance_id, row.evidence[0]["filename"]) == ("delivered", iid, "现场.png")


def test_wrong_expired_and_revoked_codes_are_refused(live, web_env):
    uscc, other = two_entities(web_env)
    good = issue(web_env, uscc)
    business(live, uscc, ("1" if good[0] != "1" else "2") + good[1:], expect=401)
    business(live, other, good, expect=401)  # a code is worth nothing with another USCC
    old = issue(web_env, other, days=3, now=clock.now() - timedelta(days=4))
    business(live, other, old, expect=401)
    u = business(live, uscc, good)
    with web_env.tx() as s:
        code_id = s.scalars(select(PortalAccessCode.id).where(PortalAccessCode.uscc == uscc)).one()
        portal.revoke(s, code_id, by="officer", reason="served to the wrong person")
    r = u.get("/portal/")
    assert r.status_code == 302 and "/portal/login" in r.headers["Location"]  # the session ended with the code
    business(live, uscc, good, expect=401)


def test_repeated_failures_are_throttled_with_429_and_never_lock_out(live, web_env):
    uscc, _other = two_entities(web_env)
    good = issue(web_env, uscc)
    u = HttpUser(live)
    u.refresh_csrf(u.http.get(live + "/portal/login").text)
    statuses = [u.post("/portal/login", {"uscc": uscc, "code": "ZZZZZ-ZZZZZ"}).status_code for _ in range(5)]
    assert statuses == [401] * 5
    r = u.post("/portal/login", {"uscc": uscc, "code": good})  # even the right code waits: nothing is checked
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "秒后再试" in r.text or "seconds" in r.text


def test_a_business_cannot_read_another_business_receipt(live, web_env):
    a, b = two_entities(web_env)
    ua = business(live, a, issue(web_env, a))
    r = ua.post("/portal/submit/statement_defence", {"statement": "我方对拟处罚事实无异议"})
    assert r.status_code == 302
    receipt = r.headers["Location"].rsplit("/", 1)[1]
    ub = business(live, b, issue(web_env, b))
    assert ub.get(f"/portal/receipts/{receipt}").status_code == 403
    assert ua.get(f"/portal/receipts/{receipt}").status_code == 200
    assert receipt not in ub.get("/portal/").text


def test_a_kept_submission_reaches_the_officers_list_and_is_handled(live, web_env, http):
    uscc, _other = two_entities(web_env)
    u = business(live, uscc, issue(web_env, uscc))
    r = u.post("/portal/submit/credit_repair", {"reason": "已履行行政处罚决定", "measures": "建立合规台账"})
    assert r.status_code == 302
    receipt = r.headers["Location"].rsplit("/", 1)[1]
    assert 'data-status="routed"' in u.get(f"/portal/receipts/{receipt}").text
    officer = http("officer")
    page = officer.get("/portal/officer/submissions?status=routed")
    assert page.status_code == 200 and receipt in page.text
    assert http("designer").get("/portal/officer/submissions").status_code == 403
    done = officer.post(f"/portal/officer/submissions/{receipt}/handled", {"note": "已电话联系"})
    assert done.status_code == 302
    assert officer.post(f"/portal/officer/submissions/{receipt}/handled", {"note": "again"}).status_code == 400
    with web_env.tx() as s:
        row = s.scalars(select(PortalSubmission).where(PortalSubmission.receipt == receipt)).one()
        assert (row.status, row.handled_by) == ("handled", "officer")


@pytest.mark.parametrize("kind, fields, status", [
    ("rectification_report", {}, 400),
    ("rectification_report", {"note": "x" * 2001}, 400),
    ("extension_request", {"reason": "r", "requested_days": "99999999999999999999"}, 400),
    ("hearing_request", {"reason": "r", "contact_phone": "1" * 31}, 400),
    ("no_such_kind", {"note": "n"}, 404),
])
def test_bad_submissions_are_refused_with_4xx(live, web_env, kind, fields, status):
    uscc, _other = two_entities(web_env)
    u = business(live, uscc, issue(web_env, uscc))
    r = u.post(f"/portal/submit/{kind}", fields)
    assert r.status_code == status
    with web_env.tx() as s:
        assert s.scalars(select(PortalSubmission)).all() == []


def test_hostile_sign_in_and_upload_input_is_4xx(live, web_env, app):
    uscc, _other = two_entities(web_env)
    u = HttpUser(live)
    u.refresh_csrf(u.http.get(live + "/portal/login").text)
    assert u.post("/portal/login", {"uscc": "9" * 5000, "code": "x" * 5000}).status_code == 401
    assert u.post("/portal/login", {"uscc": "", "code": ""}).status_code == 400
    assert u.post("/portal/login", {"uscc": uscc, "code": "A", "pad": "x" * 40_000}).status_code == 413
    assert u.http.post(live + "/portal/login", data={"uscc": uscc, "code": "AAAAA-AAAAA"},
                       allow_redirects=False).status_code == 400  # no CSRF token
    b = business(live, uscc, issue(web_env, uscc))
    r = b.http.post(live + "/portal/submit/rectification_report", data={"csrf_token": b.csrf, "note": "n"},
                    files=[("files", ("a.png", b"MZ" + b"\0" * 100, "image/png"))], allow_redirects=False)
    assert r.status_code == 415 and "portal-error" in r.text  # the type is refused, the form shown again
    big = app.config["MAX_CONTENT_LENGTH"] + 1024
    r = b.http.post(live + "/portal/submit/rectification_report", data={"csrf_token": b.csrf, "note": "n"},
                    files=[("files", ("a.png", PNG + b"\0" * big, "image/png"))], allow_redirects=False)
    assert r.status_code == 413
    assert b.get("/portal/receipts/" + "P" * 300).status_code == 404
    many = [("files", (f"{i}.png", PNG, "image/png")) for i in range(6)]
    r = b.http.post(live + "/portal/submit/rectification_report", data={"csrf_token": b.csrf, "note": "n"},
                    files=many, allow_redirects=False)
    assert r.status_code == 400


def test_sign_out_ends_the_entity_session_and_keeps_staff_sessions_apart(live, web_env):
    uscc, _other = two_entities(web_env)
    u = business(live, uscc, issue(web_env, uscc))
    assert u.get("/inbox/").status_code == 302  # an entity session is nobody on the staff's pages
    assert u.post("/portal/logout").status_code == 302
    assert u.get("/portal/").status_code == 302


def test_my_draws_show_the_campaigns_that_drew_the_business_and_its_stratum(live, web_env):
    with web_env.tx() as s:
        item = s.scalars(select(CheckItem.code).order_by(CheckItem.code)).first()
        sections = sorted(set(s.scalars(select(Entity.industry_section).distinct())))
        c = draw.create_campaign(s, code="PORTAL-DRAW-1", name="门户抽查样例", departments=["market"], items=[item],
                                 window_start=date(2030, 3, 1), window_end=date(2030, 6, 30), created_by="planner",
                                 now=clock.now(), ratios={"A": "0.05", "B": "0.1", "C": "0.3", "D": "0.5"},
                                 target_industries=sections, lookback_months=0)
        draw.approve_campaign(s, c.id, approver="head", now=clock.now(), public_value="2030-03-01 05 11 18")
        draw.draw_campaign(s, c.id, clock.now())
        drawn = s.scalars(select(DrawResult).where(DrawResult.campaign_id == c.id).order_by(DrawResult.rank)).first()
        uscc, risk_class = drawn.uscc, drawn.risk_class
        not_drawn = s.scalars(select(Entity.uscc).where(Entity.uscc.not_in(
            select(DrawResult.uscc).where(DrawResult.campaign_id == c.id))).limit(1)).one()
    page = business(live, uscc, issue(web_env, uscc)).get("/portal/")
    section = page.text.split('id="portal-draws"')[1]
    assert "PORTAL-DRAW-1" in section and f'<td class="mono">{risk_class}</td>' in section
    other = business(live, not_drawn, issue(web_env, not_drawn)).get("/portal/")
    assert "PORTAL-DRAW-1" not in other.text.split('id="portal-draws"')[1]
