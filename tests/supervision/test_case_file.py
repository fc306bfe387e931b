"""The case file (案卷) of an administrative-penalty case as one verifiable bundle (issue 18): a real
``enforcement`` case run through the process (filing, investigation, notice, hearing, deliberation, decision,
service, execution, closure) is bundled — every document's signed PDF as stored, the evidence, the audit history
and a signed index in procedural order — and verified offline; a changed PDF byte, history event or manifest is
named, a stranger's ZIP bomb or oversized file refused before unpacking, and a reader outside the case refused."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.commands import case_files as case_file_commands
from engine.config import load_settings
from engine.errors import InvalidInput, NotAllowed
from engine.policy import load_actor
from engine.runtime import clock
from engine.runtime.models import ReadRecord
from engine.runtime.users import add_user
from engine.supervision import case_file, document_files, evidence
from engine.supervision.case_file_verify import MAX_RATIO, BundleRefused, BundleTooLarge, verify_bundle
from engine.supervision.document_models import Document
from tests.conftest import IN_CI
from tests.supervision.test_enforcement_process import T1, complete_hearing, deliberated, notice, start_case
from tests.supervision.test_rectification_process import SH, closed, decision, filed, investigated, lead_verified

KEYS = load_settings().keys_dir
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None and not IN_CI,
                                     reason="pdftotext missing: poppler-utils (bin/pdf-deps)")


def run_penalty_case(loop, upload_dir) -> int:
    """A penalty case with a hearing, through the real process; the decision served (送达回证) and an evidence
    photo attached, then executed and closed."""
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified() | {"lead_source": "complaint"}, T1)
    loop.complete(iid, "filing", "hank", filed(date(2026, 3, 3), "闽市监立〔2026〕7号"), T1 + timedelta(days=1))
    with clock.frozen(T1 + timedelta(days=2)), loop.db.tx() as s:
        evidence.attach(s, loop.runtime, upload_dir=upload_dir, max_bytes=1_000_000,
                        stream=io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"photo" * 50), filename="现场照片.png",
                        instance_id=iid, task_id=None, uploaded_by="dave")
    loop.complete(iid, "investigate", "dave", investigated("penalty"), T1 + timedelta(days=20))
    loop.complete(iid, "pre_notice", "carol", notice(True), T1 + timedelta(days=30))
    loop.message("hearing_request", {"requested_on": "2026-04-03"}, T1 + timedelta(days=32))
    complete_hearing(loop, iid)
    deliberated(loop, iid, T1 + timedelta(days=46))
    at = datetime(2026, 4, 20, 15, 0, tzinfo=SH)
    loop.complete(iid, "decide", "hank", decision("penalty", at.date(), ["warning", "fine"], 20000), at)
    with loop.db.tx() as s:
        (number,) = s.scalars(select(Document.number).where(Document.instance_id == iid,
                                                            Document.kind == "penalty_decision"))
        document_files.serve(s, number, method="in_person", served_to="张经理", served_at=at + timedelta(hours=1),
                             recorded_by="dave", now=at + timedelta(hours=2))
    loop.complete(iid, "serve_decision", "dave", {"document": "penalty_decision", "document_number": number,
                                                  "method": "in_person", "served_at": at.isoformat(),
                                                  "recipient": "张经理", "signed": True}, at + timedelta(hours=2))
    loop.complete(iid, "execute", "carol", {"status": "paid", "amount_paid": 20000, "paid_on": "2026-04-30"},
                  at + timedelta(days=10))
    loop.complete(iid, "close", "carol", closed("executed", date(2026, 5, 1), True), at + timedelta(days=11))
    return iid


def rezip(data: bytes, **changes) -> bytes:
    """The bundle with entries replaced (``name=bytes``; ``/`` as ``__``), removed (None) or added."""
    changes = {k.replace("__", "/").replace("_json", ".json").replace("_pdf", ".pdf"): v for k, v in changes.items()}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in changes:
                if changes[info.filename] is not None:
                    dst.writestr(info.filename, changes.pop(info.filename))
                else:
                    changes.pop(info.filename)
                continue
            dst.writestr(info, src.read(info))
        for name, value in changes.items():
            dst.writestr(name, value)
    return out.getvalue()


def problems(data: bytes) -> list[str]:
    return [f"{p['file']}: {p['problem']}" for p in verify_bundle(data, KEYS).problems]


def test_a_penalty_case_bundles_in_procedural_order_and_verifies_and_tampering_is_named(loop, tmp_path):
    uploads = tmp_path / "uploads"
    iid = run_penalty_case(loop, uploads)
    with loop.db.tx() as s:
        add_user(s, "olga", "olga-password", "officer", "officers")  # took no part in the case
        with pytest.raises(NotAllowed):
            case_file_commands.export(s, load_actor(s, "olga", via="cli"), iid, keys_dir=KEYS, upload_dir=uploads)
    with loop.db.tx() as s:
        made = case_file_commands.export(s, load_actor(s, "carol", via="cli"), iid, keys_dir=KEYS,
                                         upload_dir=uploads)
        stored = {d.number: document_files.document_file(s, d).pdf
                  for d in s.scalars(select(Document).where(Document.instance_id == iid))}
        (read,) = s.scalars(select(ReadRecord).where(ReadRecord.actor == "carol")).all()
        assert (read.kind, read.ref, read.via) == ("instance", str(iid), "cli")
    m = made.manifest
    assert m["case_number"] == "闽市监立〔2026〕7号" and m["entity"]["uscc"] == "91350100M000100Y43"
    assert m["agency"]["code"] == "榕市监" and m["generated_by"] == "carol" and m["notes"] == []
    assert [c["status"] for c in m["cases"]] == ["closed"]
    # the table of contents in procedural order: 立案审批表, evidence, 告知书, 听证通知书 and the hearing record,
    # 决定书, 送达回证, execution, 结案, the history last
    titles = [i["title"] for i in m["items"]]
    order = ["立案审批表", "证据：现场照片.png", "调查终结报告", "行政处罚告知书", "听证通知书", "听证笔录",
             "集体讨论记录", "行政处罚决定书", "送达回证（直接送达，送达张经理）", "执行记录", "结案报告",
             "审计记录（哈希链）"]
    assert [t for t in titles if t in order] == order
    assert [i["order"] for i in m["items"]] == list(range(1, len(m["items"]) + 1))
    with zipfile.ZipFile(io.BytesIO(made.data)) as zf:
        names = set(zf.namelist())
        # every document's signed PDF, bytes unchanged
        pdfs = {i["number"]: zf.read(i["path"]) for i in m["items"] if i["kind"] == "document"}
        assert pdfs == stored and len(pdfs) == 4
        (photo,) = [i for i in m["items"] if i["kind"] == "evidence"]
        assert zf.read(photo["path"]).startswith(b"\x89PNG")
        history = json.loads(zf.read("history.json"))
    assert {"index.pdf", "manifest.json", "history.json"} <= names
    (chain,) = history["chains"]
    assert chain["head"] == m["head"] and chain["events"][-1]["hash"] == m["head"]["hash"]
    report = verify_bundle(made.data, KEYS)
    assert report.ok, report.problems
    assert report.case_number == m["case_number"] and report.events_checked == m["head"]["seq"]
    assert report.files_checked == len(pdfs) + 2  # the PDFs, the photo, history.json

    # a changed byte of a document
    name = next(i["path"] for i in m["items"] if i.get("document_kind") == "penalty_decision")
    with zipfile.ZipFile(io.BytesIO(made.data)) as zf:
        pdf = bytearray(zf.read(name))
    pdf[len(pdf) // 2] ^= 0x01
    assert problems(rezip(made.data, **{name: bytes(pdf)})) == [
        f"{name}: its SHA-256 differs from the manifest's (the file was changed)"]
    # one event of the history changed: its hash no longer matches (and the file not the manifest)
    event = chain["events"][5]
    event["actor"] = "mallory"
    forged = json.dumps(history, ensure_ascii=False).encode()
    found = problems(rezip(made.data, history_json=forged))
    assert f"history.json: chain instance:{iid} seq 6: content does not match its hash (the event was changed)" in found
    assert "history.json: its SHA-256 differs from the manifest's (the file was changed)" in found
    # the manifest changed to match a swapped file: its digest no longer matches the signed index
    with zipfile.ZipFile(io.BytesIO(made.data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    photo_item = next(i for i in manifest["items"] if i["kind"] == "evidence")
    photo_item["sha256"] = "0" * 64
    assert problems(rezip(made.data, manifest_json=json.dumps(manifest).encode())) == [
        "manifest.json: its SHA-256 differs from the one the signed index records (the manifest was changed)",
        f"{photo_item['path']}: its SHA-256 differs from the manifest's (the file was changed)"]
    # a file removed, a file added, the index re-signed by nobody
    assert problems(rezip(made.data, **{photo["path"]: None})) == [f"{photo['path']}: missing from the bundle"]
    assert problems(rezip(made.data, **{"evidence/99-extra.txt": b"x"})) == [
        "evidence/99-extra.txt: not listed in the manifest"]
    with zipfile.ZipFile(io.BytesIO(made.data)) as zf:
        index = bytearray(zf.read("index.pdf"))
    index[len(index) // 3] ^= 0x01
    assert any(p.startswith("index.pdf: signature:") for p in problems(rezip(made.data, index_pdf=bytes(index))))


def test_a_missing_evidence_file_is_noted_and_the_bundle_still_verifies(loop, tmp_path):
    iid = start_case(loop)
    uploads = tmp_path / "uploads"
    with loop.db.tx() as s:
        row = evidence.attach(s, loop.runtime, upload_dir=uploads, max_bytes=1000, stream=io.BytesIO(b"note"),
                              filename="记录.txt", instance_id=iid, task_id=None, uploaded_by="carol")
    evidence.blob_path(uploads, row.sha256).unlink()
    with loop.db.tx() as s:
        made = case_file.build(s, [iid], keys_dir=KEYS, upload_dir=uploads, generated_by="sam")
    (note,) = made.manifest["notes"]
    assert "记录.txt" in note and "缺失" in note
    (item,) = [i for i in made.manifest["items"] if i["kind"] == "evidence"]
    assert "path" not in item
    assert verify_bundle(made.data, KEYS).ok


@needs_pdftotext
def test_the_signed_index_prints_the_contents_and_the_manifest_digest(loop, tmp_path):
    iid = start_case(loop)
    loop.complete(iid, "verify_lead", "carol", lead_verified() | {"lead_source": "complaint"}, T1)
    loop.complete(iid, "filing", "hank", filed(date(2026, 3, 3), "闽市监立〔2026〕9号"), T1 + timedelta(days=1))
    with loop.db.tx() as s:
        made = case_file.build(s, [iid], keys_dir=KEYS, upload_dir=tmp_path, generated_by="sam")
    with zipfile.ZipFile(io.BytesIO(made.data)) as zf:
        (tmp_path / "index.pdf").write_bytes(zf.read("index.pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "index.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    for expected in ("卷宗封面", "闽市监立〔2026〕9号", "卷内目录", "立案审批表", "备考表", made.manifest_sha256):
        assert expected in text


# ------------------------------------------------------------------------------------- a stranger's ZIP
def test_a_zip_bomb_and_an_oversized_file_are_refused_before_unpacking():
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"\0" * (MAX_RATIO * 2000))
    with pytest.raises(BundleRefused, match="possible ZIP bomb") as refused:
        verify_bundle(bomb.getvalue(), KEYS)
    assert isinstance(refused.value, InvalidInput) and refused.value.http_status == 400
    with pytest.raises(BundleTooLarge) as big:
        verify_bundle(b"PK" + b"\0" * 2000, KEYS, max_bytes=1000)
    assert big.value.http_status == 413 and big.value.exit_code == 2
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a", b"\0" * 600)
        zf.writestr("b", b"\0" * 600)
    with pytest.raises(BundleTooLarge, match="would unpack to 1200 bytes"):
        verify_bundle(many.getvalue(), KEYS, max_bytes=1100)
    with pytest.raises(BundleRefused, match="not a readable ZIP"):
        verify_bundle(b"not a zip at all", KEYS)


def test_a_zip_without_a_manifest_or_index_is_named():
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", b"hello")
    assert problems(empty.getvalue()) == ["index.pdf: missing: the bundle has no signed index",
                                          "manifest.json: missing"]
