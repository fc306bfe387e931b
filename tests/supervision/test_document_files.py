"""Official documents as signed PDFs: issued by a BPMN step (``document.issue``) in the step's transaction —
numbered by the agency covering the entity's district, rendered, signed, stored, its ``document_issued`` event
with the PDF's SHA-256 in the instance's own chain — served once (送达回证), and verified (digest and
signature against the demo root). ``pdftotext`` reads back what a rectification notice and a penalty decision
must show."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from engine.bootstrap import build_runtime
from engine.config import PROJECT_ROOT, load_settings
from engine.demo import DEMO_DATA
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import audit, clock
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AuditEvent, Incident
from engine.supervision import agencies, document_files, documents, importer, portal, signing
from engine.supervision import calendar as cal
from engine.supervision.document_file_models import DocumentFile, DocumentService
from engine.supervision.document_models import Document, DocumentCounter
from engine.supervision.document_render import prepare_fields, render_pdf
from scoring.models import Entity
from scoring.uscc import uscc_check_digit
from tests.conftest import IN_CI

USCC = "91410105MA44XXXX1A"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 2 March 2026, 10:00 in China
BPMN = PROJECT_ROOT / "tests" / "data" / "supervision" / "document_issue.bpmn"
FIELDS = {"findings": ["食品经营许可证未在经营场所显著位置公示"],
          "legal_basis": "《中华人民共和国食品安全法》第一百二十六条", "requirements": "在经营场所显著位置公示许可证",
          "deadline_days": 10}
#: outside CI only: ./test installs poppler-utils (bin/pdf-deps), so in CI a missing pdftotext fails the test
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None and not IN_CI,
                                     reason="pdftotext missing: poppler-utils (bin/pdf-deps)")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    signing.ensure_demo_keys(folder, [("郑市监", "郑州市市场监督管理局"), ("郑市监金水所", "金水市场监管所")])
    return folder


@pytest.fixture
def city(db):
    with db.tx() as s:
        agencies.save_agency(s, code="郑市监", name="郑州市市场监督管理局", districts=["410100"])
        agencies.save_agency(s, code="郑市监金水所", name="金水市场监管所", districts=["410105"], parent="郑市监")
        s.add(Entity(uscc=USCC, name="郑州市金水区好味道餐饮店", industry_section="H", district="410105",
                     entity_type="individual"))
        s.add(Entity(uscc="91410305MA44XXXX2B", name="洛阳某厂", industry_section="C", district="410305",
                     entity_type="company"))
        cal.seed_from_chinese_calendar(s)
    with db.tx() as s:
        cal.refresh(s)
    yield db
    cal.use_calendar(None)


@pytest.fixture
def rt(city, keys):
    import tests.support.services  # noqa: F401, PLC0415  (registers the test operators)

    runtime = build_runtime(load_settings(retry_backoff_s=60.0, service_retries=0, keys_dir=str(keys)))
    with city.tx() as s:
        deploy(runtime, s, read_paths([BPMN]), "designer")
    return runtime


def start(rt, db, uscc: str = USCC, mode: str = "ok", fields: dict | None = None) -> int:
    with clock.frozen(T0), db.tx() as s:
        return rt.start(s, "document_issue", business_key=uscc, actor="alice",
                        data={"uscc": uscc, "fields": FIELDS if fields is None else fields, "mode": mode}).instance.id


def pdftotext(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_a_step_issues_a_numbered_signed_pdf_of_its_entitys_station(rt, city, keys):
    iid = start(rt, city)
    second = start(rt, city)
    with city.tx() as s:
        docs = list(s.scalars(select(Document).order_by(Document.id)))
        assert [(d.number, d.instance_id, d.uscc, d.issued_by) for d in docs] == [
            ("郑市监金水所责改〔2026〕1号", iid, USCC, "alice"), ("郑市监金水所责改〔2026〕2号", second, USCC, "alice")]
        f = document_files.document_file(s, docs[0])
        assert f.sha256 == hashlib.sha256(f.pdf).hexdigest() and f.size == len(f.pdf)
        assert f.fields["deadline_text"] == "10个工作日（至2026年3月16日）" and f.template == "rectification_notice/1"
        assert signing.verify_pdf(f.pdf, keys).ok
        assert f.signer_fingerprint == signing.load_signer(keys, "郑市监金水所").fingerprint
        waiting = [t for t in rt.load_workflow(s, iid).get_tasks() if t.task_spec.bpmn_id == "serve"]
        result = waiting[0].data["notice"]
        assert result == {"number": "郑市监金水所责改〔2026〕1号", "document_id": docs[0].id,
                          "kind": "rectification_notice", "sha256": f.sha256}
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(iid))
                                .order_by(AuditEvent.seq)))
        issued = [e for e in events if e.kind == "document_issued"]
        assert len(issued) == 1 and issued[0].detail["sha256"] == f.sha256
        assert issued[0].detail["number"] == "郑市监金水所责改〔2026〕1号" and issued[0].actor == "alice"
        assert audit.verify(s).ok  # one chain, linked through the step's own events
        assert documents.verify_register(s).ok
        assert document_files.verify_files(s, keys) == {"files_checked": 2, "without_pdf": 0, "problems": []}


def test_a_rolled_back_step_issues_nothing(rt, city):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), clock.frozen(T0), city.tx() as s:
        rt.start(s, "document_issue", business_key=USCC, actor="alice",
                 data={"uscc": USCC, "fields": FIELDS, "mode": "ok"})
        assert s.scalar(select(Document.number)) == "郑市监金水所责改〔2026〕1号"
        raise Boom()
    with city.tx() as s:
        assert s.scalars(select(Document)).all() == [] and s.scalars(select(DocumentFile)).all() == []
        assert s.scalars(select(DocumentCounter)).all() == []
    start(rt, city)  # the number was never taken: the next step gets 1
    with city.tx() as s:
        assert s.scalars(select(Document.number)).all() == ["郑市监金水所责改〔2026〕1号"]


def test_a_failing_issue_takes_its_number_back_and_the_retry_issues_it(rt, city, keys, tmp_path):
    empty = tmp_path / "nokeys"
    empty.mkdir()
    lacking = build_runtime(load_settings(service_retries=0, keys_dir=str(empty)))
    iid = start(lacking, city)
    with city.tx() as s:
        incident = s.scalar(select(Incident).where(Incident.instance_id == iid))
        assert "agency 郑市监金水所 has no signing key" in incident.message
        assert "regflow documents keys --demo" in incident.message
        assert s.scalars(select(Document)).all() == [] and documents.verify_register(s).ok
    with clock.frozen(T0 + timedelta(hours=1)), city.tx() as s:
        rt.retry_incident(s, incident.id, "sam")
    with city.tx() as s:
        assert s.scalars(select(Document.number)).all() == ["郑市监金水所责改〔2026〕1号"]


def test_a_failure_later_in_the_step_keeps_the_issued_document_with_its_event(rt, city):
    iid = start(rt, city, mode="fail")  # test.record fails after the issue: an incident, the step kept
    with city.tx() as s:
        assert s.scalar(select(Incident.bpmn_id).where(Incident.instance_id == iid)) == "record"
        assert s.scalars(select(Document.number)).all() == ["郑市监金水所责改〔2026〕1号"]
        kinds = s.scalars(select(AuditEvent.kind).where(AuditEvent.chain == audit.instance_chain(iid))).all()
        assert "document_issued" in kinds and audit.verify(s).ok


def test_no_agency_for_the_district_is_an_incident_naming_it(rt, city):
    iid = start(rt, city, uscc="91410305MA44XXXX2B")  # 410305 (洛阳) is outside both agencies
    with city.tx() as s:
        message = s.scalar(select(Incident.message).where(Incident.instance_id == iid))
        assert "no active agency covers district 410305" in message
        assert s.scalars(select(Document)).all() == []


def test_bad_fields_are_refused_before_anything_is_issued(rt, city):
    iid = start(rt, city, fields={**FIELDS, "deadline_days": 0})
    huge = start(rt, city, fields={"findings": "x" * 5000})
    with city.tx() as s:
        messages = dict(s.execute(select(Incident.instance_id, Incident.message)).all())
        assert "deadline_days must be a number of working days from 1 to 365" in messages[iid]
        assert "document field 'findings' is 5000 characters; at most 4000" in messages[huge]
        assert s.scalars(select(Document)).all() == [] and documents.verify_register(s).ok


def test_serving_is_recorded_once_and_audited(rt, city):
    iid = start(rt, city)
    number = "郑市监金水所责改〔2026〕1号"
    at = T0 + timedelta(days=1)
    with city.tx() as s:
        with pytest.raises(InvalidInput, match="service method 'by_pigeon' is not one of in_person"):
            document_files.serve(s, number, method="by_pigeon", served_to="张三", served_at=at, recorded_by="alice",
                                 now=at)
        with pytest.raises(InvalidInput, match="cannot have been served before"):
            document_files.serve(s, number, method="in_person", served_to="张三", served_at=T0 - timedelta(days=1),
                                 recorded_by="alice", now=at)
        with pytest.raises(InvalidInput, match="recipient"):
            document_files.serve(s, number, method="in_person", served_to=" ", served_at=at, recorded_by="alice")
        document_files.serve(s, number, method="left_at_address", served_to="张三（拒收）", served_at=at,
                             recorded_by="alice", note="拒绝签收，已拍照留证", now=at)
    with city.tx() as s:
        with pytest.raises(Conflict, match="was served already"):
            document_files.serve(s, number, method="in_person", served_to="李四", served_at=at, recorded_by="bob",
                                 now=at)
        row = s.get(DocumentService, s.scalar(select(Document.id)))
        assert (row.method, row.served_to, row.served_at, row.recorded_by) == (
            "left_at_address", "张三（拒收）", at, "alice")
        served = s.scalar(select(AuditEvent).where(AuditEvent.chain == audit.instance_chain(iid),
                                                   AuditEvent.kind == "document_served"))
        assert served.detail["method"] == "left_at_address" and served.actor == "alice" and audit.verify(s).ok
        with pytest.raises(NotFound):
            document_files.serve(s, "郑市监责改〔2026〕99号", method="in_person", served_to="x", served_at=at,
                                 recorded_by="alice")


def test_verify_finds_a_changed_pdf_and_a_changed_digest(rt, city, keys):
    start(rt, city)
    start(rt, city)
    with city.tx() as s:
        first, second = s.scalars(select(DocumentFile).order_by(DocumentFile.document_id)).all()
        pdf = bytearray(document_files.document_file(s, s.get(Document, first.document_id)).pdf)
        at = pdf.index(b"stream") + 300
        pdf[at] = (pdf[at] + 1) % 256
        digest = hashlib.sha256(bytes(pdf)).hexdigest()  # the digest recomputed too: the signature still tells
        s.execute(update(DocumentFile).where(DocumentFile.document_id == first.document_id)
                  .values(pdf=bytes(pdf), sha256=digest))
        s.execute(update(DocumentFile).where(DocumentFile.document_id == second.document_id)
                  .values(sha256="0" * 64))
    with city.tx() as s:
        report = document_files.verify_files(s, keys)
    assert report["files_checked"] == 2
    assert report["problems"] == [
        {"number": "郑市监金水所责改〔2026〕1号",
         "problem": "signature: the signed bytes were changed or the signature is invalid"},
        {"number": "郑市监金水所责改〔2026〕2号", "problem": "the PDF's SHA-256 differs from the recorded one"}]


def test_signature_is_valid_and_a_changed_byte_invalidates_it(keys, tmp_path):
    fields = prepare_fields("inspection_record", {"findings": "未发现问题", "result": "未发现问题"},
                            number="郑市监检〔2026〕1号", agency_name="郑州市市场监督管理局", entity_name="某店",
                            uscc=USCC, issued_at=T0)
    signer = signing.load_signer(keys, "郑市监")
    signed = signer.sign(render_pdf("inspection_record", fields), reason="签发")
    check = signing.verify_pdf(signed, keys)
    assert check.ok and check.signer_fingerprint == signer.fingerprint
    assert "郑州市市场监督管理局" in check.signer_subject
    for where in (signed.index(b"/Contents") + 40, signed.index(b"stream") + 100, len(signed) // 2):
        changed = bytearray(signed)
        changed[where] ^= 0x01
        assert not signing.verify_pdf(bytes(changed), keys).ok, where
    appended = signed + b"\n% appended after signing\n"
    assert not signing.verify_pdf(appended, keys).ok
    other = tmp_path / "other"
    signing.ensure_demo_keys(other, [])  # another root: the signature is intact but not trusted
    assert signing.verify_pdf(signed, other).problem == "the signer's certificate does not chain to the root"


def test_signing_and_checking_work_inside_a_running_event_loop(keys):
    """pyHanko's synchronous API starts an event loop of its own: called where one already runs (an asyncio server,
    a test driving a browser) it would raise; the signer then runs it on a thread of its own."""
    fields = prepare_fields("inspection_record", {"findings": "未发现问题"}, number="郑市监检〔2026〕2号",
                            agency_name="郑州市市场监督管理局", entity_name="某店", uscc=USCC, issued_at=T0)
    pdf = render_pdf("inspection_record", fields)

    async def inside():
        signed = signing.load_signer(keys, "郑市监").sign(pdf, reason="签发")
        return signed, signing.verify_pdf(signed, keys)

    signed, check = asyncio.run(inside())
    assert check.ok and signed.startswith(pdf[:8])


def test_demo_keys_are_created_once(tmp_path):
    first = signing.ensure_demo_keys(tmp_path, [("郑市监", "郑州市市场监督管理局")])
    key = tmp_path / f"{signing.key_stem('郑市监')}.key.pem"
    before = key.read_bytes()
    again = signing.ensure_demo_keys(tmp_path, [("郑市监", "郑州市市场监督管理局"), ("郑市监中原所", "中原市场监管所")])
    assert first["root_created"] and first["created"] == ["郑市监"]
    assert not again["root_created"] and again["created"] == ["郑市监中原所"] and again["existing"] == ["郑市监"]
    assert key.read_bytes() == before and first["root_fingerprint"] == again["root_fingerprint"]
    assert key.stat().st_mode & 0o077 == 0  # the private key is its owner's only


@needs_pdftotext
def test_pdftotext_reads_a_rectification_notice(rt, city, tmp_path):
    start(rt, city)
    with city.tx() as s:
        _doc, pdf = document_files.pdf_bytes(s, "郑市监金水所责改〔2026〕1号")
    text = pdftotext(pdf, tmp_path)
    for expected in ("责令改正通知书", "郑市监金水所责改〔2026〕1号", "郑州市金水区好味道餐饮店", USCC,
                     "《中华人民共和国食品安全法》第一百二十六条", "10个工作日（至2026年3月16日）", "2026年3月2日",
                     "金水市场监管所"):
        assert expected in text, expected


@needs_pdftotext
def test_a_notice_to_a_party_carries_its_portal_access_code(rt, city, tmp_path):
    """A document served to a party prints a new entity-portal code for its USCC: the code signs the party in, it is
    stored only as a hash (not in the document's fields), and its issue is in the instance's own hash chain."""
    valid = "91410105MA44XXXX1" + uscc_check_digit("91410105MA44XXXX1")
    iid = start(rt, city, uscc=valid)
    with city.tx() as s:
        doc, pdf = document_files.pdf_bytes(s, "郑市监金水所责改〔2026〕1号")
        fields = document_files.document_file(s, doc).fields
    text = pdftotext(pdf, tmp_path)
    found = re.search(r"企业端访问码：([0-9A-Z]{5}-[0-9A-Z]{5})（(\d{4}-\d{2}-\d{2})前有效）", text.replace(" ", ""))
    assert found, text
    code, until = found.groups()
    assert until == "2026-05-01"  # 60 days (REGFLOW_PORTAL_CODE_DAYS) from 2 March
    assert code not in json.dumps(fields, ensure_ascii=False)
    with city.tx() as s:
        row = portal.check_access_code(s, uscc=valid, code=code, now=T0 + timedelta(days=1))
        assert row is not None and row.document_id == doc.id
        assert portal.check_access_code(s, uscc=USCC, code=code, now=T0) is None  # another party's USCC
        issued = s.scalars(select(AuditEvent).where(AuditEvent.kind == "portal_code_issued")).all()
        assert [(e.chain, e.detail["document"]) for e in issued] == [
            (audit.instance_chain(iid), "郑市监金水所责改〔2026〕1号")]
        assert code not in json.dumps(issued[0].detail)
        assert audit.verify(s).ok


@needs_pdftotext
def test_pdftotext_reads_a_penalty_decision_rendered_from_fields(tmp_path):
    fields = prepare_fields("penalty_decision", {
        "facts": "当事人经营超过保质期的食品", "evidence": "现场检查笔录；询问笔录；照片 3 张",
        "legal_basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项",
        "penalty": "没收违法所得并处罚款", "fine": 5000, "payment": "十五日内缴至指定银行",
        "address": "郑州市金水区花园路 1 号"},
        number="郑市监罚〔2026〕3号", agency_name="郑州市市场监督管理局", entity_name="郑州市金水区好味道餐饮店",
        uscc=USCC, issued_at=datetime(2026, 12, 31, 17, 0, tzinfo=timezone.utc))  # 1 January 2027 in China
    text = pdftotext(render_pdf("penalty_decision", fields), tmp_path)
    for expected in ("行政处罚决定书", "郑市监罚〔2026〕3号", "郑州市金水区好味道餐饮店", USCC, "第一百二十四条",
                     "人民币5,000.00元", "2027年1月1日", "十五日内", "行政复议"):
        assert expected in text, expected


def test_field_limits(keys):
    common = {"number": "郑市监检〔2026〕1号", "agency_name": "局", "entity_name": "某店", "uscc": USCC,
              "issued_at": T0}
    with pytest.raises(InvalidInput, match="not one of"):
        prepare_fields("memo", {}, **common)
    with pytest.raises(InvalidInput, match="is a object"):
        prepare_fields("inspection_record", {"findings": object()}, **common)
    with pytest.raises(InvalidInput, match="more than 32 kB"):
        prepare_fields("inspection_record", {f"f{i}": "字" * 3000 for i in range(5)}, **common)
    with pytest.raises(InvalidInput, match="fine must be an amount"):
        prepare_fields("penalty_decision", {"fine": "5000"}, **common)
    assert prepare_fields("inspection_record", {"items": ["AR-01", "PRICE-01"]}, **common)["items"] == \
        "AR-01\nPRICE-01"


def test_findings_cite_their_check_items_legal_basis(city):
    with city.tx() as s:
        importer.import_departments(s, DEMO_DATA / "departments.csv")
        importer.import_skills(s, DEMO_DATA / "skills.csv")
        importer.import_items(s, DEMO_DATA / "items.csv", now=T0)
    findings = [{"item_code": "FOOD-01", "clause": "LIC-01", "description": "许可证未公示"},
                {"item_code": "FOOD-01", "clause": "FOOD-02", "description": "健康证过期"}]
    with city.tx() as s:
        got = document_files.findings_fields(s, {"findings": findings, "deadline_days": 5})
        assert got["findings"] == ["[FOOD-01 LIC-01] 许可证未公示", "[FOOD-01 FOOD-02] 健康证过期"]
        assert got["legal_basis"] == ["《食品安全法》第三十五条"] and got["deadline_days"] == 5
        own = document_files.findings_fields(s, {"findings": findings, "legal_basis": "《价格法》"})
        assert own["legal_basis"] == "《价格法》"
        with pytest.raises(InvalidInput, match="at most 200"):
            document_files.findings_fields(s, {"findings": findings * 101})
