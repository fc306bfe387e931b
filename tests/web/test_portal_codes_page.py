"""The entity's portal access codes on its dossier page, over real HTTP (issue 18: officers had only the CLI): an
officer issues a code — shown once, in the flash message — with which the business signs in, sees the code's
row (never the code), and revokes it, after which it signs nobody in; an auditor reads the dossier without the
codes; a revocation needs a reason."""
from __future__ import annotations

import re

from sqlalchemy import select

from engine.supervision.portal_models import PortalAccessCode
from tests.web.test_portal import business, two_entities

CODE = re.compile(r"\b[0-9A-Z]{5}-[0-9A-Z]{5}\b")


def test_an_officer_issues_and_revokes_a_code_on_the_dossier_page(live, web_env, http):
    uscc, _ = two_entities(web_env)
    officer = http("officer")
    page = officer.get(f"/inbox/entities/{uscc}")
    assert page.status_code == 200 and 'id="portal-codes"' in page.text and 'id="portal-code-rows"' not in page.text
    officer.refresh_csrf(page.text)

    r = officer.post(f"/inbox/entities/{uscc}/portal-codes", {})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/inbox/entities/{uscc}#portal-codes")
    shown = officer.get(f"/inbox/entities/{uscc}").text
    (code,) = set(CODE.findall(shown))  # once, in the flash message
    with web_env.tx() as s:
        (row,) = s.scalars(select(PortalAccessCode).where(PortalAccessCode.uscc == uscc)).all()
        assert row.issued_by == "officer" and code not in (row.code_hash or "")
    assert f'id="portal-code-{row.id}"' in shown
    assert not CODE.findall(officer.get(f"/inbox/entities/{uscc}").text)  # never shown again
    business(live, uscc, code)  # the business signs in with it

    officer.refresh_csrf(officer.get(f"/inbox/entities/{uscc}").text)
    assert officer.post(f"/inbox/entities/{uscc}/portal-codes/{row.id}/revoke", {"reason": ""}).status_code == 302
    with web_env.tx() as s:
        assert s.get(PortalAccessCode, row.id).revoked_at is None  # no reason, nothing revoked
    assert officer.post(f"/inbox/entities/{uscc}/portal-codes/{row.id}/revoke",
                        {"reason": "企业申请更换访问码"}).status_code == 302
    with web_env.tx() as s:
        revoked = s.get(PortalAccessCode, row.id)
        assert revoked.revoked_at is not None and revoked.revoked_reason == "企业申请更换访问码"
    assert "企业申请更换访问码" in officer.get(f"/inbox/entities/{uscc}").text
    business(live, uscc, code, expect=401)  # it signs nobody in any more


def test_an_auditor_reads_the_dossier_without_the_codes(web_env, http):
    uscc, _ = two_entities(web_env)
    page = http("auditor").get(f"/inbox/entities/{uscc}")
    assert page.status_code == 200 and 'id="portal-codes"' not in page.text
