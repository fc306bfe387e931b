"""``regflow documents`` through real subprocesses: list, show, verify, void and agencies — their JSON, their human
output and the exit-code contract (0 done, 1 a broken register, 2 invalid, 3 not found, 4 conflict, 5 not allowed)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from engine.demo import DEMO_DATA
from engine.runtime.models import AuditEvent
from engine.runtime.users import add_user, set_jurisdiction
from engine.supervision import agencies, documents
from scoring.models import Entity
from tests.conftest import cli_json, run_cli

USCC = "91410105MA44XXXX1A"


@pytest.fixture
def register(db):
    """The demo's agencies, four people, one registered entity in 金水区 and five documents."""
    with db.tx() as s:
        add_user(s, "alice", "alice-pass-1", "officer", "officers")
        add_user(s, "sam", "sam-pass-123", "supervisor", "supervisors")
        add_user(s, "lim", "lim-pass-123", "supervisor", "supervisors")
        set_jurisdiction(s, "lim", "410102", actor="test")
        add_user(s, "root", "root-pass-123", "admin", "admins")
        agencies.load_agency_folder(s, DEMO_DATA)
        s.add(Entity(uscc=USCC, name="郑州示例商贸有限公司", industry_section="F", district="410105",
                     entity_type="llc"))
    with db.tx() as s:
        for ref in ("order:1", "order:2", "order:3"):
            documents.allocate(s, "郑市监金水所", "rectification_notice", 2026, instance_id=None, ref=ref, uscc=USCC,
                               issued_by="alice")
        documents.allocate(s, "郑市监", "penalty_decision", 2026, instance_id=None, ref="case:1", issued_by="handler")
        documents.allocate(s, "郑市监", "penalty_decision", 2025, instance_id=None, ref="case:0", issued_by="handler")
    return db


def test_list_and_show(register):
    env = register.env
    doc = cli_json(env, "documents", "list")
    assert doc["total"] == 5
    assert [d["number"] for d in doc["documents"]] == [
        "郑市监罚〔2025〕1号", "郑市监罚〔2026〕1号",
        "郑市监金水所责改〔2026〕1号", "郑市监金水所责改〔2026〕2号", "郑市监金水所责改〔2026〕3号"]
    assert [d["number"] for d in cli_json(env, "documents", "list", "--agency", "郑市监", "--year", "2026")[
        "documents"]] == ["郑市监罚〔2026〕1号"]
    only = cli_json(env, "documents", "list", "--kind", "rectification_notice", "--limit", "1", "--offset", "1")
    assert only["total"] == 3 and [d["seq"] for d in only["documents"]] == [2]
    human = run_cli(env, "documents", "list", "--kind", "rectification_notice")
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert lines[0] == "3 document(s); showing 3 from 0"
    assert lines[1].split() == ["number", "kind", "status", "issued_at", "issued_by", "uscc", "instance"]
    assert lines[3].split()[:3] == ["郑市监金水所责改〔2026〕1号", "rectification_notice", "issued"]
    shown = cli_json(env, "documents", "show", "郑市监金水所责改〔2026〕2号")
    assert {k: shown[k] for k in ("number", "kind", "kind_name", "agency", "agency_name", "year", "seq", "uscc",
                                  "issued_by", "status", "ref")} == {
        "number": "郑市监金水所责改〔2026〕2号", "kind": "rectification_notice", "kind_name": "责令改正通知书",
        "agency": "郑市监金水所", "agency_name": "郑州市市场监督管理局金水市场监管所", "year": 2026, "seq": 2,
        "uscc": USCC, "issued_by": "alice", "status": "issued", "ref": "order:2"}
    human = run_cli(env, "documents", "show", "郑市监金水所责改〔2026〕2号")
    assert human.stdout.splitlines()[0] == "郑市监金水所责改〔2026〕2号  责令改正通知书 (rectification_notice)  issued"
    missing = run_cli(env, "documents", "show", "郑市监罚〔2026〕7号")
    assert missing.returncode == 3 and "no document numbered '郑市监罚〔2026〕7号'" in missing.stderr
    assert run_cli(env, "documents", "list", "--agency", "沪市监").returncode == 3
    assert run_cli(env, "documents", "list", "--kind", "memo").returncode == 2  # click: not one of the kinds


def test_void_by_role_and_jurisdiction_then_conflict(register):
    env, number = register.env, "郑市监金水所责改〔2026〕2号"
    denied = run_cli(env, "documents", "void", number, "--reason", "x", "--user", "alice")
    assert denied.returncode == 5 and "supervisor, admin" in denied.stderr
    outside = run_cli(env, "documents", "void", number, "--reason", "x", "--user", "lim")
    assert outside.returncode == 5
    assert "concerns an entity in district 410105, outside the jurisdiction of lim" in outside.stderr
    citywide = run_cli(env, "documents", "void", "郑市监罚〔2025〕1号", "--reason", "x", "--user", "lim")
    assert citywide.returncode == 5 and "concerns no registered entity" in citywide.stderr
    assert run_cli(env, "documents", "void", number, "--reason", " ", "--user", "sam").returncode == 2
    assert run_cli(env, "documents", "void", "郑市监罚〔2026〕9号", "--reason", "x", "--user", "sam").returncode == 3
    assert run_cli(env, "documents", "void", number, "--reason", "x", "--user", "nobody").returncode == 5
    assert cli_json(env, "documents", "show", number)["status"] == "issued"  # nothing refused changed anything
    voided = cli_json(env, "documents", "void", number, "--reason", "送达地址错误", "--user", "sam")
    assert (voided["number"], voided["status"], voided["void_reason"], voided["voided_by"]) == (
        number, "void", "送达地址错误", "sam")
    again = run_cli(env, "documents", "void", number, "--reason", "again", "--user", "root", "--json")
    assert again.returncode == 4 and "is already void" in again.stderr
    assert "is already void" in json.loads(again.stdout)["error"]
    # an administrator voids a document about no registered entity
    human = run_cli(env, "documents", "void", "郑市监罚〔2025〕1号", "--reason", "重复", "--user", "root")
    assert human.returncode == 0 and human.stdout.strip() == "郑市监罚〔2025〕1号 void: 重复 (by root)"
    assert cli_json(env, "documents", "verify")["ok"] is True  # void numbers stay in the register
    with register.tx() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.kind == "document_voided",
                                                      AuditEvent.actor == "sam"))
        assert event.detail["number"] == number and event.detail["origin"]["via"] == "cli"


def test_verify_exits_1_naming_each_problem(register):
    env = register.env
    ok = run_cli(env, "documents", "verify")
    assert ok.returncode == 0 and ok.stdout.strip() == (
        "OK: 3 register(s), 5 document(s), 0 signed PDF(s), 5 without a PDF")  # numbered here without a PDF
    with register.tx() as s:
        s.execute(text("DELETE FROM document WHERE number = '郑市监金水所责改〔2026〕2号'"))
        s.execute(text("UPDATE document SET number = '郑市监罚〔2026〕01号' WHERE number = '郑市监罚〔2026〕1号'"))
    broken = run_cli(env, "documents", "verify")
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [
        "BROKEN: 3 register(s), 4 document(s), 0 signed PDF(s), 4 without a PDF",
        "  郑市监 penalty_decision 2026: number 郑市监罚〔2026〕01号 does not match its parts "
        "(expected 郑市监罚〔2026〕1号)",
        "  郑市监金水所 rectification_notice 2026: seq 2 missing (counter at 3)"]
    doc = json.loads(run_cli(env, "documents", "verify", "--json").stdout)
    assert doc["ok"] is False and len(doc["problems"]) == 2


def test_agencies_and_the_district_they_serve(register):
    env = register.env
    doc = cli_json(env, "documents", "agencies", "--district", "410108")
    assert [(a["code"], a["parent"], a["members"]) for a in doc["agencies"]] == [
        ("郑市监", None, 0), ("郑市监中原所", "郑市监", 0), ("郑市监金水所", "郑市监", 0)]
    assert doc["responsible"] == {"district": "410108", "code": "郑市监金水所",
                                  "name": "郑州市市场监督管理局金水市场监管所"}
    human = run_cli(env, "documents", "agencies", "--district", "410185")
    assert human.returncode == 0 and human.stdout.splitlines()[-1] == "district 410185: 郑市监 郑州市市场监督管理局"
    assert run_cli(env, "documents", "agencies", "--district", "420102").returncode == 3
    assert run_cli(env, "documents", "agencies", "--district", "41").returncode == 2
