"""``regflow documents keys|pdf|serve|verify`` on signed documents through real subprocesses: the demo keys made
once, the PDF written out byte for byte, a service recorded once (a second is a conflict, exit 4; a stranger
exit 5), and ``verify`` naming a PDF whose bytes changed (exit 1)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update

from engine.demo import DEMO_DATA
from engine.runtime.models import ReadRecord
from engine.runtime.users import add_user, set_jurisdiction
from engine.supervision import agencies, document_files, documents, signing
from engine.supervision.document_file_models import DocumentFile
from engine.supervision.document_models import Agency
from scoring.models import Entity
from tests.conftest import cli_json, run_cli

USCC = "91410105MA44XXXX1A"
NUMBER = "郑市监金水所责改〔2026〕1号"


def _setup(db, tmp_path) -> dict:
    keys = tmp_path / "keys"
    env = {**db.env, "REGFLOW_KEYS_DIR": str(keys)}
    with db.tx() as s:
        add_user(s, "alice", "alice-pass-1", "officer", "officers")
        add_user(s, "lim", "lim-pass-123", "officer", "officers")
        set_jurisdiction(s, "lim", "410102", actor="test")
        add_user(s, "dan", "dan-pass-1234", "designer", "designers")
        agencies.load_agency_folder(s, DEMO_DATA)
        s.add(Entity(uscc=USCC, name="郑州示例商贸有限公司", industry_section="F", district="410105",
                     entity_type="llc"))
    made = cli_json(env, "documents", "keys", "--demo")
    assert made["root_created"] and sorted(made["created"]) == ["郑市监", "郑市监中原所", "郑市监金水所"]
    again = cli_json(env, "documents", "keys", "--demo")
    assert not again["root_created"] and again["created"] == [] and again["root_fingerprint"] == made[
        "root_fingerprint"]
    with db.tx() as s:
        agency = s.scalar(select(Agency).where(Agency.code == "郑市监金水所"))
        for n in (1, 2):
            document_files.issue_signed(s, agency=agency, kind="rectification_notice",
                                        signer=signing.load_signer(keys, agency.code), instance_id=None,
                                        ref=f"order:{n}", uscc=USCC, entity_name="郑州示例商贸有限公司",
                                        fields={"findings": "价格未明码标示", "deadline_days": 5}, issued_by="alice",
                                        now=datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc))
    return env


def test_pdf_serve_and_verify(sqlite_db, tmp_path):
    """SQLite only: the statements are those of test_document_files.py, which runs on both databases."""
    db = sqlite_db
    env = _setup(db, tmp_path)
    out = tmp_path / "notice.pdf"
    proc = run_cli(env, "documents", "pdf", NUMBER, "-o", str(out), "--user", "alice")
    assert proc.returncode == 0, proc.stderr
    with db.tx() as s:
        assert out.read_bytes() == document_files.pdf_bytes(s, NUMBER)[1]
    assert run_cli(env, "documents", "pdf", NUMBER, "-o", str(out), "--user", "lim").returncode == 5  # 410102
    assert run_cli(env, "documents", "pdf", "郑市监责改〔2026〕9号", "-o", str(out), "--user", "alice").returncode == 3
    with db.tx() as s:  # the download is in the read log, the refused one is not
        assert [(r.actor, r.kind, r.ref, r.via) for r in s.scalars(select(ReadRecord))] == [
            ("alice", "document", NUMBER, "cli")]

    served = cli_json(env, "documents", "serve", NUMBER, "--method", "in_person", "--to", "王经理",
                      "--at", "2026-12-07T10:00", "--user", "alice")
    assert served["service"]["method"] == "in_person" and served["service"]["served_to"] == "王经理"
    assert served["service"]["served_at"].startswith("2026-12-07T02:00")  # 10:00 China time
    twice = run_cli(env, "documents", "serve", NUMBER, "--method", "registered_mail", "--to", "王经理",
                    "--user", "alice")
    assert twice.returncode == 4 and "was served already" in twice.stderr
    assert run_cli(env, "documents", "serve", "郑市监金水所责改〔2026〕2号", "--method", "in_person", "--to", "王",
                   "--user", "dan").returncode == 5  # a designer records no service
    bad = run_cli(env, "documents", "serve", "郑市监金水所责改〔2026〕2号", "--method", "in_person", "--to", "王",
                  "--at", "yesterday", "--user", "alice")
    assert bad.returncode == 2 and "not an ISO date" in bad.stderr
    shown = cli_json(env, "documents", "show", NUMBER)
    assert shown["service"]["recorded_by"] == "alice" and len(shown["sha256"]) == 64

    ok = cli_json(env, "documents", "verify")
    assert ok["ok"] and ok["files_checked"] == 2 and ok["problems"] == []
    with db.tx() as s:
        first = document_files.document_file(s, documents.get_document(s, NUMBER))
        pdf = bytearray(first.pdf)
        pdf[len(pdf) // 3] ^= 0x20
        s.execute(update(DocumentFile).where(DocumentFile.document_id == first.document_id).values(pdf=bytes(pdf)))
    broken = run_cli(env, "documents", "verify", "--json")
    assert broken.returncode == 1
    assert f"{NUMBER}: the PDF's SHA-256 differs from the recorded one" in run_cli(
        env, "documents", "verify").stdout
