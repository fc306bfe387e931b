"""The ``transfer`` process (移送) through the real Runtime on SQLite and PostgreSQL: the letter's facts and
materials, the receiving side's receipt by message, the 10-working-day chase with a paper receipt, a refusal and
its decision; and the service's rules (one receipt, dates, reasons, sizes)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.bootstrap import form_hasher
from engine.config import PROJECT_ROOT, load_settings
from engine.demo import DEMO_DATA
from engine.errors import Conflict, InvalidInput
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import HumanTask, ProcessInstance
from engine.runtime.users import add_user
from engine.runtime.worker import run_due
from engine.supervision import agencies, document_files, documents, transfers
from engine.supervision import calendar as cal
from engine.supervision.transfer_models import Transfer
from tests.conftest import cli_json, run_cli

SH = cal.SHANGHAI
#: Monday 9 November 2026, 10:00 in China
T0 = datetime(2026, 11, 9, 10, 0, tzinfo=SH)
USCC = "91410100MA00000T01"


@pytest.fixture
def env(runtime, db):
    with db.tx() as s:
        cal.seed_from_chinese_calendar(s)
        add_user(s, "alice", "alice-password", "officer", "officers")
        agencies.load_agency_folder(s, DEMO_DATA)  # the bureau issues the transfer letter (移送函)
    with db.tx() as s:
        deploy(runtime, s, read_paths([PROJECT_ROOT / "processes" / "transfer.bpmn"]), "designer",
               form_hash=form_hasher(load_settings()))
    with db.tx() as s:
        cal.refresh(s)
    yield runtime, db
    cal.use_calendar(None)


def _start(runtime, db, kind="other_department", receiving="郑州市金水区卫生健康委员会") -> int:
    data = {"kind": kind, "uscc": USCC, "entity_id": None, "receiving": receiving,
            "reason": "检查发现涉嫌无证行医，属卫生健康部门职责", "source_instance_id": None}
    with clock.frozen(T0), db.tx() as s:
        return runtime.start(s, "transfer", business_key=USCC, data=data, actor="alice").instance.id


def _open(db, iid) -> list[str]:
    with db.tx() as s:
        return [t.bpmn_id for t in s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                                      HumanTask.status == "open"))]


def _complete(runtime, db, iid, bpmn_id, data, at):
    with db.tx() as s:
        (task,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.bpmn_id == bpmn_id,
                                                    HumanTask.status == "open")).all()
    with clock.frozen(at), db.tx() as s:
        return runtime.complete_task(s, task.id, "alice", data)


def _prepare(runtime, db, iid, at=T0):
    _complete(runtime, db, iid, "prepare_transfer", {
        "receiving": "郑州市金水区卫生健康委员会", "facts": "2026年11月9日现场检查发现当事人在店内开展诊疗活动。",
        "materials": [{"title": "现场检查笔录"}, {"title": "现场照片 12 张"}]}, at)


def _row(db, iid) -> Transfer:
    with db.tx() as s:
        row = s.scalar(select(Transfer).where(Transfer.instance_id == iid))
        s.expunge(row)
        return row


def _status(db, iid) -> str:
    with db.tx() as s:
        return s.get(ProcessInstance, iid).status


def test_sent_then_accepted_by_message(env):
    runtime, db = env
    iid = _start(runtime, db)
    assert _row(db, iid).status == "preparing" and _open(db, iid) == ["prepare_transfer"]
    _prepare(runtime, db, iid)
    row = _row(db, iid)
    assert row.status == "sent" and row.materials == ["现场检查笔录", "现场照片 12 张"] and "诊疗" in row.facts
    # the 移送函 is an official document: numbered by the bureau, signed, its number kept by the transfer
    with db.tx() as s:
        letter = documents.get_document(s, row.letter_number)
        assert (letter.kind, letter.instance_id, letter.ref) == ("transfer_letter", iid, f"transfer:{row.id}")
        assert row.letter_number == "郑市监移〔2026〕1号"
        snapshot = document_files.document_file(s, letter).fields
        assert snapshot["receiving_department"] == "郑州市金水区卫生健康委员会"
        assert "现场照片 12 张" in snapshot["materials"] and "无证行医" in snapshot["reason"]
    with pytest.raises(Exception, match="no instance waits"):  # another transfer's id matches nothing
        with clock.frozen(T0 + timedelta(days=1)), db.tx() as s:
            runtime.correlate_message(s, "transfer_receipt", {}, {"transfer_id": row.id + 1})
    with clock.frozen(T0 + timedelta(days=2)), db.tx() as s:
        runtime.correlate_message(s, "transfer_receipt", {
            "received_on": "2026-11-10", "received_by": "王五", "reference": "金卫受〔2026〕88号", "accepted": True},
            {"transfer_id": row.id})
    row = _row(db, iid)
    assert (row.status, row.outcome, row.receipt_via, row.received_by, row.receipt_reference) == (
        "received", "accepted", "message", "王五", "金卫受〔2026〕88号")
    assert row.received_at.astimezone(SH).date() == date(2026, 11, 10)
    assert _status(db, iid) == "completed"
    with db.tx() as s:
        assert audit.verify(s).ok
    if db.kind != "sqlite":
        return  # the CLI's queries are the same on both: its subprocesses run once
    listed = cli_json(db.env, "transfers", "list", "--status", "received")
    assert listed["total"] == 1 and listed["transfers"][0]["receipt_reference"] == "金卫受〔2026〕88号"
    assert cli_json(db.env, "transfers", "list", "--status", "sent")["total"] == 0
    shown = run_cli(db.env, "transfers", "show", str(row.id))
    assert shown.returncode == 0
    assert "receipt    2026-11-10 by 王五 (message) ref 金卫受〔2026〕88号: accepted" in shown.stdout
    assert run_cli(db.env, "transfers", "show", str(row.id + 1)).returncode == 3


def test_no_receipt_in_ten_working_days_is_chased_then_a_paper_refusal_is_decided(env):
    runtime, db = env
    iid = _start(runtime, db, kind="police", receiving="郑州市公安局金水分局")
    _prepare(runtime, db, iid)
    # 10 working days from Monday 9 November end on Monday 23 November: nothing is due on the Friday before
    run_due(runtime, db.factory, now=datetime(2026, 11, 20, 18, 0, tzinfo=SH))
    assert _open(db, iid) == []
    run_due(runtime, db.factory, now=datetime(2026, 11, 24, 9, 0, tzinfo=SH))
    assert _open(db, iid) == ["chase_receipt"]
    _complete(runtime, db, iid, "chase_receipt", {"action": "chase_again", "chase_note": "电话催告"},
              datetime(2026, 11, 24, 10, 0, tzinfo=SH))
    assert _open(db, iid) == [] and _row(db, iid).status == "sent"  # waiting again, a new 10 working days
    run_due(runtime, db.factory, now=datetime(2026, 12, 9, 9, 0, tzinfo=SH))
    assert _open(db, iid) == ["chase_receipt"]
    _complete(runtime, db, iid, "chase_receipt", {
        "action": "paper_receipt", "received_on": "2026-12-01", "received_by": "赵六", "reference": "",
        "accepted": False, "refusal_reason": "不属于刑事案件管辖范围"}, datetime(2026, 12, 9, 10, 0, tzinfo=SH))
    row = _row(db, iid)
    assert (row.status, row.receipt_via, row.accepted, row.refusal_reason) == (
        "refused", "paper", False, "不属于刑事案件管辖范围")
    assert _open(db, iid) == ["handle_refusal"]
    _complete(runtime, db, iid, "handle_refusal", {"outcome": "handled_ourselves", "note": "转为本局立案调查"},
              datetime(2026, 12, 9, 11, 0, tzinfo=SH))
    row = _row(db, iid)
    assert (row.status, row.outcome, row.note) == ("closed", "handled_ourselves", "转为本局立案调查")
    assert _status(db, iid) == "completed"


def test_the_service_refuses_what_a_receipt_cannot_say(db):
    with db.tx() as s:
        row = transfers.open_transfer(s, kind="new_jurisdiction", uscc=USCC.lower(),
                                      receiving="上海市浦东新区市场监管局", reason="企业已迁出", entity_id=None,
                                      source_instance_id=None, instance_id=None,
                                      actor="alice", now=T0)
        assert row.uscc == USCC
        with pytest.raises(InvalidInput, match="transfer kind 'court'"):
            transfers.open_transfer(s, kind="court", uscc=USCC, receiving="x", reason="y", entity_id=None,
                                    source_instance_id=None, instance_id=None, actor="alice", now=T0)
        with pytest.raises(Conflict, match="only a sent transfer takes a receipt"):
            transfers.record_receipt(s, row.id, received_on="2026-11-10", received_by="x", reference=None,
                                     accepted=True, refusal_reason=None, via="message", now=T0)
        with pytest.raises(InvalidInput, match="facts is 5001 characters"):
            transfers.send(s, row.id, facts="事" * 5001, materials=[], letter_number=None, actor="alice", now=T0)
        transfers.send(s, row.id, facts="迁出", materials=["营业执照复印件"], letter_number=None, actor="alice", now=T0)
        with pytest.raises(Conflict, match="already sent"):
            transfers.send(s, row.id, facts="迁出", materials=[], letter_number=None, actor="alice", now=T0)
        later = T0 + timedelta(days=3)
        for kwargs, message in (
                ({"received_on": "2026-11-08"}, "before it was sent"),
                ({"received_on": "2026-11-13"}, "in the future"),
                ({"received_on": "11/10"}, "must be a date"),
                ({"accepted": "yes"}, "whether the matter was accepted"),
                ({"accepted": False}, "refusal_reason is required"),
                ({"via": "fax"}, "not 'fax'")):
            args = {"received_on": "2026-11-10", "received_by": "钱七", "reference": None, "accepted": True,
                    "refusal_reason": None, "via": "message", **kwargs}
            with pytest.raises(InvalidInput, match=message):
                transfers.record_receipt(s, row.id, now=later, **args)
        with pytest.raises(Conflict, match="only a refused transfer"):
            transfers.close(s, row.id, outcome="closed", note="x", now=later)
        transfers.record_receipt(s, row.id, received_on="2026-11-10", received_by="钱七", reference=None,
                                 accepted=True, refusal_reason=None, via="paper", now=later)
        with pytest.raises(Conflict, match="is received"):
            transfers.record_receipt(s, row.id, received_on="2026-11-10", received_by="钱七", reference=None,
                                     accepted=True, refusal_reason=None, via="paper", now=later)
        assert transfers.counts(s) == {"total": 1, "by_kind": {"new_jurisdiction": 1}, "by_status": {"received": 1}}
