"""The register of official documents on both databases: numbers per (agency, kind, year) in the form
``郑市监责改〔2026〕15号``, gapless under rollbacks and concurrent issuers, never reused once voided; issue and void
audited (the instance's chain, else the system chain); ``verify_register`` naming gaps, duplicates and numbers
that do not match their parts."""
from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, inspect, select, text

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import audit
from engine.runtime.models import AuditEvent
from engine.supervision import agencies, documents
from engine.supervision.document_models import Document, DocumentCounter
from tests.conftest import deploy_files

USCC = "91410105MA44XXXX1A"


class Boom(Exception):
    pass


@pytest.fixture
def city(db):
    with db.tx() as s:
        agencies.save_agency(s, code="郑市监", name="郑州市市场监督管理局", districts=["410100"])
        agencies.save_agency(s, code="郑市监金水所", name="金水市场监管所", districts=["410105"], parent="郑市监")
    return db


def _numbers(db, **where) -> list[tuple[str, int, str]]:
    with db.tx() as s:
        q = select(Document.number, Document.seq, Document.status).order_by(Document.id)
        for k, v in where.items():
            q = q.where(getattr(Document, k) == v)
        return [tuple(r) for r in s.execute(q)]


def _system_events(db, kind: str) -> list[dict]:
    with db.tx() as s:
        return [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN,
                                                                     AuditEvent.kind == kind).order_by(AuditEvent.seq))]


def test_numbers_follow_each_other_in_the_official_form(city):
    at = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    with city.tx() as s:
        got = [documents.allocate(s, "郑市监", "rectification_notice", 2026, instance_id=None, ref=f"order:{i}",
                                  uscc=USCC.lower(), issued_by="handler", now=at) for i in range(1, 4)]
        decision = documents.allocate(s, "郑市监", "penalty_decision", 2026, instance_id=None, ref="case:1")
        notice = documents.allocate(s, "郑市监", "penalty_notice", 2026, instance_id=None, ref="case:1")
        transfer = documents.allocate(s, "郑市监", "transfer_letter", 2026, instance_id=None, ref="case:2")
    assert got == ["郑市监责改〔2026〕1号", "郑市监责改〔2026〕2号", "郑市监责改〔2026〕3号"]
    assert (decision, notice, transfer) == ("郑市监罚〔2026〕1号", "郑市监罚告〔2026〕1号", "郑市监移〔2026〕1号")
    with city.tx() as s:
        doc = documents.get_document(s, "郑市监责改〔2026〕2号")
        assert (doc.kind, doc.year, doc.seq, doc.ref, doc.uscc, doc.issued_by, doc.issued_at, doc.status) == (
            "rectification_notice", 2026, 2, "order:2", USCC, "handler", at, "issued")
        assert s.get(DocumentCounter, (doc.agency_id, "rectification_notice", 2026)).last_seq == 3
        with pytest.raises(InvalidInput, match="document kind 'memo' is not one of inspection_record"):
            documents.allocate(s, "郑市监", "memo", 2026, instance_id=None, ref=None)
        with pytest.raises(NotFound, match="no agency with the code '沪市监'"):
            documents.allocate(s, "沪市监", "penalty_decision", 2026, instance_id=None, ref=None)
        with pytest.raises(NotFound, match="no document numbered"):
            documents.get_document(s, "郑市监责改〔2026〕9号")
    issued = _system_events(city, "document_issued")
    assert [e["number"] for e in issued[:3]] == got
    assert issued[0]["uscc"] == USCC and issued[0]["instance_id"] is None and issued[0]["seq"] == 1
    assert [k for k, _n in documents.DOCUMENT_KINDS.items()] == [
        "inspection_record", "rectification_notice", "filing_approval", "penalty_notice", "hearing_notice",
        "penalty_decision", "service_receipt", "transfer_letter"]
    assert documents.format_number("郑市监", "filing_approval", 2026, 7) == "郑市监立〔2026〕7号"
    assert documents.format_number("郑市监", "hearing_notice", 2026, 15) == "郑市监听〔2026〕15号"


def test_each_agency_and_year_has_its_own_register(city):
    with city.tx() as s:
        a = [documents.allocate(s, "郑市监", "rectification_notice", 2026, instance_id=None, ref=None) for _ in "xy"]
        b = documents.allocate(s, "郑市监金水所", "rectification_notice", 2026, instance_id=None, ref=None)
        c = documents.allocate(s, "郑市监", "rectification_notice", 2027, instance_id=None, ref=None)
        d = documents.allocate(s, "郑市监", "rectification_notice", 2026, instance_id=None, ref=None)
    assert a == ["郑市监责改〔2026〕1号", "郑市监责改〔2026〕2号"]
    assert (b, c, d) == ("郑市监金水所责改〔2026〕1号", "郑市监责改〔2027〕1号", "郑市监责改〔2026〕3号")
    # the year of a moment is China's: 31 December 17:00 UTC is already 1 January in Beijing
    assert documents.local_year(datetime(2026, 12, 31, 17, 0, tzinfo=timezone.utc)) == 2027


def test_a_rolled_back_transaction_issues_nothing_and_leaves_no_gap(city):
    with city.tx() as s:
        assert documents.allocate(s, "郑市监", "hearing_notice", 2026, instance_id=None,
                                  ref="a") == "郑市监听〔2026〕1号"
    with pytest.raises(Boom), city.tx() as s:
        assert documents.allocate(s, "郑市监", "hearing_notice", 2026, instance_id=None,
                                  ref="b") == "郑市监听〔2026〕2号"
        documents.allocate(s, "郑市监", "hearing_notice", 2026, instance_id=None, ref="c")
        raise Boom
    with pytest.raises(Boom), city.tx() as s:  # a register's first number rolled back, too
        documents.allocate(s, "郑市监金水所", "hearing_notice", 2026, instance_id=None, ref="d")
        raise Boom
    with city.tx() as s:
        assert documents.allocate(s, "郑市监", "hearing_notice", 2026, instance_id=None,
                                  ref="e") == "郑市监听〔2026〕2号"
        assert documents.allocate(s, "郑市监金水所", "hearing_notice", 2026, instance_id=None,
                                  ref="f") == "郑市监金水所听〔2026〕1号"
    assert _numbers(city) == [("郑市监听〔2026〕1号", 1, "issued"), ("郑市监听〔2026〕2号", 2, "issued"),
                              ("郑市监金水所听〔2026〕1号", 1, "issued")]
    assert [e["ref"] for e in _system_events(city, "document_issued")] == ["a", "e", "f"]
    with city.tx() as s:
        assert documents.verify_register(s).ok


def test_void_keeps_the_number_and_a_second_void_is_a_conflict(city):
    with city.tx() as s:
        for ref in ("a", "b"):
            documents.allocate(s, "郑市监", "penalty_decision", 2026, instance_id=None, ref=ref)
    at = datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)
    with city.tx() as s:
        with pytest.raises(InvalidInput, match="a reason is required"):
            documents.void(s, "郑市监罚〔2026〕1号", reason="  ", actor="sam")
        with pytest.raises(InvalidInput, match="at most 200"):
            documents.void(s, "郑市监罚〔2026〕1号", reason="x" * 201, actor="sam")
        with pytest.raises(NotFound, match="no document numbered"):
            documents.void(s, "郑市监罚〔2026〕3号", reason="wrong", actor="sam")
        doc = documents.void(s, " 郑市监罚〔2026〕1号 ", reason="地址写错", actor="sam", now=at)
        assert (doc.status, doc.void_reason, doc.voided_by, doc.voided_at) == ("void", "地址写错", "sam", at)
    with city.tx() as s, pytest.raises(Conflict, match="郑市监罚〔2026〕1号 is already void .*sam.*地址写错"):
        documents.void(s, "郑市监罚〔2026〕1号", reason="again", actor="root")
    with city.tx() as s:  # the voided number is never handed out again; the same ref gets a new number
        assert documents.allocate(s, "郑市监", "penalty_decision", 2026, instance_id=None,
                                  ref="a") == "郑市监罚〔2026〕3号"
        assert documents.verify_register(s).ok
    assert _numbers(city) == [("郑市监罚〔2026〕1号", 1, "void"), ("郑市监罚〔2026〕2号", 2, "issued"),
                              ("郑市监罚〔2026〕3号", 3, "issued")]
    (voided,) = _system_events(city, "document_voided")
    assert voided["number"] == "郑市监罚〔2026〕1号" and voided["reason"] == "地址写错"


def test_an_inactive_agency_issues_nothing(city):
    with city.tx() as s:
        agencies.save_agency(s, code="郑市监金水所", name="金水市场监管所", districts=["410105"], parent="郑市监",
                             active=False)
    with city.tx() as s, pytest.raises(Conflict, match="郑市监金水所 .* is inactive"):
        documents.allocate(s, "郑市监金水所", "penalty_decision", 2026, instance_id=None, ref=None)
    assert _numbers(city) == []


def test_an_instances_documents_go_to_its_chain_and_the_same_ref_is_issued_once(city, runtime):
    deploy_files(runtime, city, "minimal.bpmn")
    with city.tx() as s:
        iid = runtime.start(s, "minimal", data={"amount": 9}, actor="alice").instance.id
    with city.tx() as s:
        first = documents.allocate(s, "郑市监", "inspection_record", 2026, instance_id=iid, ref="task:inspect",
                                   uscc=USCC, issued_by="alice")
        again = documents.allocate(s, "郑市监", "inspection_record", 2026, instance_id=iid, ref="task:inspect")
        other = documents.allocate(s, "郑市监", "inspection_record", 2026, instance_id=iid, ref="task:reinspect")
        receipt = documents.allocate(s, "郑市监", "service_receipt", 2026, instance_id=iid, ref="task:inspect")
    assert first == again == "郑市监检〔2026〕1号" and other == "郑市监检〔2026〕2号"
    assert receipt == "郑市监送〔2026〕1号"
    with city.tx() as s:
        documents.void(s, first, reason="重新制作", actor="sam")
    with city.tx() as s:  # voided, the same ref is issued anew under the next number
        assert documents.allocate(s, "郑市监", "inspection_record", 2026, instance_id=iid,
                                  ref="task:inspect") == "郑市监检〔2026〕3号"
    with city.tx() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(iid),
                                                         AuditEvent.kind.like("document_%")).order_by(AuditEvent.seq)))
        assert [(e.kind, e.detail["number"], e.actor) for e in events] == [
            ("document_issued", "郑市监检〔2026〕1号", "alice"), ("document_issued", "郑市监检〔2026〕2号", "system"),
            ("document_issued", "郑市监送〔2026〕1号", "system"), ("document_voided", "郑市监检〔2026〕1号", "sam"),
            ("document_issued", "郑市监检〔2026〕3号", "system")]
        assert all(e.instance_id == iid for e in events)
        assert audit.verify(s).ok  # the instance's chain still links up
    assert _system_events(city, "document_issued") == []


def test_concurrent_issuers_get_distinct_gapless_numbers(city):
    """Several threads, each with its own connection, issue into one register at once; a third of their
    transactions roll back after taking a number. What is committed is exactly 1..n."""
    threads, per_thread = 6, 5
    start = threading.Barrier(threads)
    committed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        rng = random.Random(worker)
        try:
            start.wait()
            for i in range(per_thread):
                try:
                    with city.tx() as s:
                        number = documents.allocate(s, "郑市监", "rectification_notice", 2026, instance_id=None,
                                                    ref=f"w{worker}:{i}")
                        time.sleep(rng.random() * 0.01)  # hold the register's lock while others queue for it
                        if (worker + i) % 3 == 0:
                            raise Boom
                    with lock:
                        committed.append(number)
                except Boom:
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors, errors
    expected_commits = sum(1 for w in range(threads) for i in range(per_thread) if (w + i) % 3)
    assert len(committed) == len(set(committed)) == expected_commits
    assert sorted(committed, key=lambda n: int(n.split("〕")[1][:-1])) == [
        f"郑市监责改〔2026〕{n}号" for n in range(1, expected_commits + 1)]
    with city.tx() as s:
        assert s.scalar(select(func.max(DocumentCounter.last_seq))) == expected_commits
        assert documents.verify_register(s).ok


def _unconstrained_documents(s) -> None:
    """The document table without its constraints (what a hand edit of the database could leave); the tables that
    refer to it (its PDFs, service records, portal codes) are dropped first, as such an edit would have to."""
    tables = inspect(s.connection())
    cascade = " CASCADE" if s.get_bind().dialect.name == "postgresql" else ""
    for name in tables.get_table_names():
        if any(fk["referred_table"] == "document" for fk in tables.get_foreign_keys(name)):
            s.execute(text(f"DROP TABLE {name}{cascade}"))
    s.execute(text("CREATE TABLE document_copy AS SELECT * FROM document"))
    s.execute(text("DROP TABLE document"))
    s.execute(text("ALTER TABLE document_copy RENAME TO document"))


def test_verify_names_gaps_duplicates_and_numbers_that_do_not_match(city):
    with city.tx() as s:
        for _ in range(5):
            documents.allocate(s, "郑市监", "rectification_notice", 2026, instance_id=None, ref=None)
        documents.allocate(s, "郑市监金水所", "penalty_decision", 2026, instance_id=None, ref=None)
        assert documents.verify_register(s).to_dict() == {"ok": True, "registers": 2, "documents": 6, "problems": []}
    with city.tx() as s:
        s.execute(text("DELETE FROM document WHERE number IN ('郑市监责改〔2026〕2号', '郑市监责改〔2026〕3号')"))
        _unconstrained_documents(s)
        s.execute(text("INSERT INTO document (id, number, kind, agency_id, year, seq, issued_at, issued_by, status) "
                       "SELECT 100, '郑市监责改〔2026〕4号 bis', kind, agency_id, year, seq, issued_at, issued_by, "
                       "status "
                       "FROM document WHERE number = '郑市监责改〔2026〕4号'"))
        s.execute(text("UPDATE document SET number = '郑市监罚〔2026〕9号' WHERE number = '郑市监金水所罚〔2026〕1号'"))
    with city.tx() as s:
        report = documents.verify_register(s)
    assert not report.ok and report.registers == 2 and report.documents == 5
    assert {(p["register"], p["problem"]) for p in report.problems} == {
        ("郑市监 rectification_notice 2026", "number 郑市监责改〔2026〕4号 bis does not match its parts "
                                            "(expected 郑市监责改〔2026〕4号)"),
        ("郑市监金水所 penalty_decision 2026", "number 郑市监罚〔2026〕9号 does not match its parts "
                                             "(expected 郑市监金水所罚〔2026〕1号)"),
        ("郑市监 rectification_notice 2026", "seq 4 used more than once"),
        ("郑市监 rectification_notice 2026", "seq 2-3 missing (counter at 5)"),
    }


def test_verify_names_documents_past_the_counter_and_registers_without_one(city):
    with city.tx() as s:
        documents.allocate(s, "郑市监", "filing_approval", 2026, instance_id=None, ref=None)
        documents.allocate(s, "郑市监", "filing_approval", 2025, instance_id=None, ref=None)
    with city.tx() as s:
        s.execute(text("UPDATE document SET seq = 4, number = '郑市监立〔2026〕4号' WHERE year = 2026"))
        s.execute(text("DELETE FROM document_counter WHERE year = 2025"))
    with city.tx() as s:
        problems = {p["problem"] for p in documents.verify_register(s).problems}
    assert problems == {"seq 1 missing (counter at 1)", "seq 4 outside 1..1", "1 document(s) but no counter"}
