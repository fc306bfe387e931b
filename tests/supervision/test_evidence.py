"""Evidence uploads: allowed types by extension AND first bytes, size limit, content-addressed storage
with SHA-256, an Evidence row each; every refusal leaves nothing behind."""
from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from engine.cli.evidence import evidence as evidence_group
from engine.runtime import audit, history
from engine.runtime.models import AuditEvent, Evidence, HumanTask
from engine.supervision import evidence
from forms.coerce import evidence_ref
from tests.supervision.test_inbox_service import deploy_task_processes, start_task

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 30
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40
TEXT = "现场记录：门店未公示营业执照。\n".encode()
CSV = "clause,result\nGSP-4.2,non_compliant\n".encode()
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 60
LIMIT = 1000


@pytest.fixture
def task(runtime, db, people):
    with db.tx() as s:
        deploy_task_processes(runtime, s, ("evidence_task", {}))
        ht = start_task(runtime, s, "evidence_task")
        return ht.id, ht.instance_id


def _store(db, tmp_path, task, name: str, data: bytes):
    task_id, instance_id = task
    with db.tx() as s:
        ev = evidence.store_upload(s, upload_dir=tmp_path / "up", max_bytes=LIMIT, stream=io.BytesIO(data),
                                   filename=name, instance_id=instance_id, task_id=task_id, uploaded_by="alice")
        return evidence.reference(ev) | {"id": ev.id}


def _stored_files(tmp_path) -> list:
    root = tmp_path / "up"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _rows(db) -> int:
    with db.tx() as s:
        return s.scalar(select(func.count()).select_from(Evidence))


@pytest.mark.parametrize("name, data, ctype", [
    ("notice.pdf", PDF, "application/pdf"), ("photo.PNG", PNG, "image/png"), ("site.jpeg", JPEG, "image/jpeg"),
    ("site.jpg", JPEG, "image/jpeg"), ("record.txt", TEXT, "text/plain"), ("answers.csv", CSV, "text/csv"),
])
def test_accepted_types_are_stored_by_sha256(db, tmp_path, task, name, data, ctype):
    ref = _store(db, tmp_path, task, name, data)
    sha = hashlib.sha256(data).hexdigest()
    assert ref["sha256"] == sha and ref["size"] == len(data) and ref["content_type"] == ctype
    path = tmp_path / "up" / sha[:2] / sha
    assert path.read_bytes() == data
    assert evidence_ref({k: ref[k] for k in ("sha256", "filename", "size", "content_type")})["sha256"] == sha
    with db.tx() as s:
        row = s.get(Evidence, ref["id"])
        assert (row.task_id, row.uploaded_by, row.filename) == (task[0], "alice", name)
        assert [e.id for e in evidence.for_task(s, task[0])] == [ref["id"]]


def test_same_content_is_stored_once(db, tmp_path, task):
    a = _store(db, tmp_path, task, "a.pdf", PDF)
    b = _store(db, tmp_path, task, "b.pdf", PDF)
    assert a["sha256"] == b["sha256"] and a["id"] != b["id"]
    assert [p.name for p in _stored_files(tmp_path)] == [a["sha256"]]


def test_path_parts_are_removed_from_the_name(db, tmp_path, task):
    assert _store(db, tmp_path, task, "../../etc/现场.pdf", PDF)["filename"] == "现场.pdf"
    assert _store(db, tmp_path, task, "C:\\Users\\x\\photo.png", PNG)["filename"] == "photo.png"


@pytest.mark.parametrize("name, data, error, reason", [
    ("empty.pdf", b"", evidence.EvidenceRejected, "empty"),
    ("big.pdf", PDF + b"0" * LIMIT, evidence.EvidenceTooLarge, "too_large"),
    ("tool.exe", EXE, evidence.EvidenceTypeRejected, "type"),
    ("noext", PDF, evidence.EvidenceTypeRejected, "type"),
    ("invoice.pdf", EXE, evidence.EvidenceTypeRejected, "type"),       # an executable named .pdf
    ("photo.png", JPEG, evidence.EvidenceTypeRejected, "type"),        # a JPEG named .png
    ("notes.txt", EXE, evidence.EvidenceTypeRejected, "type"),         # binary named .txt
    ("notes.txt", PDF, evidence.EvidenceTypeRejected, "type"),         # a PDF named .txt
    ("data.csv", b"a,b\n\x00\x01\x02", evidence.EvidenceTypeRejected, "type"),
    ("", PDF, evidence.EvidenceRejected, "name"),
])
def test_refused_uploads_leave_nothing(db, tmp_path, task, name, data, error, reason):
    with pytest.raises(error) as exc:
        _store(db, tmp_path, task, name, data)
    assert exc.value.reason == reason
    assert exc.value.http_status == {"too_large": 413, "type": 415}.get(reason, 400)
    if name:
        assert name in exc.value.message
    assert _stored_files(tmp_path) == []
    assert _rows(db) == 0


def test_check_type_names_what_was_found():
    with pytest.raises(evidence.EvidenceTypeRejected) as exc:
        evidence.check_type("scan.pdf", PNG)
    assert "PNG" in exc.value.message and exc.value.details["detected"] == "png"
    assert evidence.check_type("gbk.txt", "检查记录".encode("gb18030")).name == "text"


def test_attached_evidence_is_recorded_in_the_instance_hash_chain(runtime, db, tmp_path, task):
    """The audit log vouches for the file: its name and SHA-256 are an event of the instance's chain; editing
    that event (to cover a swapped file) breaks the chain."""
    task_id, instance_id = task
    with db.tx() as s:
        ht = s.get(HumanTask, task_id)
        ev = evidence.attach(s, runtime, upload_dir=tmp_path / "up", max_bytes=LIMIT, stream=io.BytesIO(PDF),
                             filename="通知书.pdf", instance_id=instance_id, task_id=task_id, uploaded_by="alice",
                             bpmn_id=ht.bpmn_id, task_guid=ht.task_guid)
        ev_id = ev.id
    with db.tx() as s:
        events = history.events_of(s, instance_id)
        last = events[-1]
        assert (last.kind, last.actor, last.bpmn_id) == ("evidence_attached", "alice", ht.bpmn_id)
        assert last.detail == {"evidence_id": ev_id, "task_id": task_id, "filename": "通知书.pdf",
                               "sha256": hashlib.sha256(PDF).hexdigest(), "size": len(PDF),
                               "content_type": "application/pdf"}
        assert audit.verify(s).ok
        s.execute(update(AuditEvent).where(AuditEvent.id == last.id)
                  .values(detail={**last.detail, "sha256": "0" * 64}))
    with db.tx() as s:
        assert not audit.verify(s).ok


def test_refused_attachment_records_nothing(runtime, db, tmp_path, task):
    task_id, instance_id = task
    with db.tx() as s:
        before = len(history.events_of(s, instance_id))
    with pytest.raises(evidence.EvidenceTypeRejected):
        with db.tx() as s:
            evidence.attach(s, runtime, upload_dir=tmp_path / "up", max_bytes=LIMIT, stream=io.BytesIO(EXE),
                            filename="x.pdf", instance_id=instance_id, task_id=task_id, uploaded_by="alice")
    with db.tx() as s:
        assert len(history.events_of(s, instance_id)) == before
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0


def test_verify_files_finds_missing_and_altered_files(db, tmp_path, task):
    up = tmp_path / "up"
    pdf = _store(db, tmp_path, task, "a.pdf", PDF)
    txt = _store(db, tmp_path, task, "b.txt", TEXT)
    with db.tx() as s:
        assert evidence.verify_files(s, up) == {"ok": True, "checked": 2, "missing": [], "mismatched": []}
    evidence.blob_path(up, pdf["sha256"]).unlink()
    evidence.blob_path(up, txt["sha256"]).write_bytes(TEXT + b"tampered")
    with db.tx() as s:
        report = evidence.verify_files(s, up)
    assert not report["ok"]
    assert [p["filename"] for p in report["missing"]] == ["a.pdf"]
    assert [p["filename"] for p in report["mismatched"]] == ["b.txt"]
    assert report["mismatched"][0]["found"] == hashlib.sha256(TEXT + b"tampered").hexdigest()


def test_sweep_removes_only_old_unreferenced_files(db, tmp_path, task):
    up = tmp_path / "up"
    kept = _store(db, tmp_path, task, "a.pdf", PDF)
    # a file whose transaction rolled back: stored on disk, no row
    with pytest.raises(RuntimeError):
        with db.tx() as s:
            task_id, instance_id = task
            evidence.store_upload(s, upload_dir=up, max_bytes=LIMIT, stream=io.BytesIO(PNG), filename="p.png",
                                  instance_id=instance_id, task_id=task_id, uploaded_by="alice")
            raise RuntimeError("the request failed after the upload")
    orphan = evidence.blob_path(up, hashlib.sha256(PNG).hexdigest())
    assert orphan.is_file()
    interrupted = up / "tmp" / "upload-x"
    interrupted.write_bytes(b"partial")
    stranger = up / "notes.txt"  # not ours: never touched
    stranger.write_text("x")
    now = datetime.now(timezone.utc)
    with db.tx() as s:
        young = evidence.sweep(s, up, older_than=timedelta(hours=1), now=now)
    assert young["removed"] == [] and young["kept_recent"] == 2  # still within a running upload's time
    old = (now - timedelta(hours=2)).timestamp()
    for p in (orphan, interrupted, evidence.blob_path(up, kept["sha256"])):
        os.utime(p, (old, old))
    with db.tx() as s:
        dry = evidence.sweep(s, up, older_than=timedelta(hours=1), now=now, dry_run=True)
        assert sorted(dry["removed"]) == sorted([str(orphan.relative_to(up)), "tmp/upload-x"]) and orphan.is_file()
        done = evidence.sweep(s, up, older_than=timedelta(hours=1), now=now)
    assert done["bytes_freed"] == len(PNG) + len(b"partial")
    assert not orphan.exists() and not interrupted.exists()
    assert evidence.blob_path(up, kept["sha256"]).is_file() and stranger.is_file()


def test_evidence_cli(db, tmp_path, task, monkeypatch):

    monkeypatch.setenv("REGFLOW_DATABASE_URL", db.url)
    up = tmp_path / "up"
    stored = _store(db, tmp_path, task, "a.pdf", PDF)
    run = CliRunner().invoke
    r = run(evidence_group, ["verify", "--upload-dir", str(up), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["checked"] == 1
    evidence.blob_path(up, stored["sha256"]).write_bytes(PDF + b"x")
    r = run(evidence_group, ["verify", "--upload-dir", str(up)])
    assert r.exit_code == 1 and "altered: evidence" in r.output and "a.pdf" in r.output
    r = run(evidence_group, ["sweep", "--upload-dir", str(up), "--older-than-hours", "-1"])
    assert r.exit_code == 2 and "--older-than-hours" in r.output
    r = run(evidence_group, ["sweep", "--upload-dir", str(up), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["removed"] == []
