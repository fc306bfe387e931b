"""``regflow portal code`` and ``regflow portal submissions`` as a subprocess: the code is printed once and works
with the installation's secret; a document's number ties it to that document; ``--user`` puts the policy on
(an officer outside the entity's jurisdiction is refused, exit 5); a code is listed without itself and
revoked; the submissions list as JSON."""
from __future__ import annotations

from sqlalchemy import select

from engine.runtime import clock
from engine.runtime.users import add_user, set_jurisdiction
from engine.supervision import portal, portal_submissions
from engine.supervision.document_models import Agency, Document
from engine.supervision.portal_models import PortalAccessCode
from scoring.models import Entity
from tests.conftest import cli_json, run_cli

USCC = "91350100M000100Y43"
SECRET = "cli-test-secret"


def test_code_and_submissions_from_the_command_line(sqlite_db, runtime):
    env = {**sqlite_db.env, "REGFLOW_SECRET_KEY": SECRET}
    with sqlite_db.tx() as s:
        s.add(Entity(uscc=USCC, name="福州某餐饮有限公司", district="350102", industry_section="H",
                     entity_type="company"))
        agency = Agency(code="榕市监", name="福州市市场监督管理局", districts=["350100"], updated_at=clock.now())
        s.add(agency)
        s.flush()
        s.add(Document(number="榕市监责改〔2026〕7号", kind="rectification_notice", agency_id=agency.id, year=2026,
                       seq=7, uscc=USCC, issued_at=clock.now(), issued_by="alice", status="issued"))
        add_user(s, "fz", "fz-password-1", "officer", "officers")
        add_user(s, "bj", "bj-password-1", "officer", "officers")
        set_jurisdiction(s, "bj", ["110101"], actor="admin")
    doc = cli_json(env, "portal", "code", "--uscc", USCC.lower(), "--document", "榕市监责改〔2026〕7号", "--days", "15")
    assert doc["uscc"] == USCC and doc["document"] == "榕市监责改〔2026〕7号" and len(doc["code"]) == 11
    with sqlite_db.tx() as s:
        row = portal.check_access_code(s, uscc=USCC, code=doc["code"], key=SECRET)
        assert row is not None and row.document_id is not None
        assert (row.expires_at - row.issued_at).days == 15
    refused = run_cli(env, "portal", "code", "--uscc", USCC, "--user", "bj")
    assert refused.returncode == 5, refused.stderr
    assert cli_json(env, "portal", "code", "--uscc", USCC, "--user", "fz")["uscc"] == USCC
    bad = run_cli(env, "portal", "code", "--uscc", "NOT-A-USCC")
    assert bad.returncode == 2 and "not a valid unified social credit code" in bad.stderr
    missing = run_cli(env, "portal", "code", "--uscc", USCC, "--document", "no such number")
    assert missing.returncode == 3
    with sqlite_db.tx() as s:
        assert len(s.scalars(select(PortalAccessCode)).all()) == 2
    listed_codes = cli_json(env, "portal", "codes", "--uscc", USCC, "--user", "fz")
    assert [c["document"] for c in listed_codes] == [None, "榕市监责改〔2026〕7号"]
    assert doc["code"] not in str(listed_codes) and doc["code"].replace("-", "") not in str(listed_codes)
    assert run_cli(env, "portal", "codes", "--uscc", USCC, "--user", "bj").returncode == 5
    assert run_cli(env, "portal", "revoke", str(row.id), "--reason", "送达错误", "--user", "bj").returncode == 5
    revoked = cli_json(env, "portal", "revoke", str(row.id), "--reason", "送达错误", "--user", "fz")
    assert revoked["code_id"] == row.id
    with sqlite_db.tx() as s:
        assert portal.check_access_code(s, uscc=USCC, code=doc["code"], key=SECRET) is None
    assert cli_json(env, "portal", "submissions") == []
    with sqlite_db.tx() as s:  # nothing waits for it: kept for the officers' group
        out = portal_submissions.submit(s, runtime, uscc=USCC, kind="extension_request",
                                        payload={"reason": "设备到货延迟", "requested_days": "10"})
        receipt = out.submission.receipt
    (listed,) = cli_json(env, "portal", "submissions", "--status", "routed", "--user", "fz")
    assert (listed["receipt"], listed["routed_group"], listed["payload"]["requested_days"]) == (receipt, "officers", 10)
    assert cli_json(env, "portal", "submissions", "--user", "bj") == []  # outside bj's jurisdiction
