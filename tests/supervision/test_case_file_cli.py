"""``regflow cases bundle|verify`` in this process (click's CliRunner: a subprocess per call costs seconds), on
SQLite (the statements are those of test_case_file.py, which runs on both databases): a closed case written as
a ZIP by someone who worked on it, checked (exit 0), a changed byte named (exit 1), a stranger refused (exit 5),
an unknown instance (exit 3) and a ZIP bomb (exit 2)."""
from __future__ import annotations

import io
import json
import zipfile
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.runtime.users import add_user
from engine.supervision.case_file_verify import MAX_RATIO
from tests.supervision.test_enforcement_process import T1, start_case
from tests.supervision.test_rectification_process import run_case_minor


def run(env: dict, *args: str):
    result = CliRunner().invoke(main, list(args), env=env)
    return SimpleNamespace(code=result.exit_code, out=result.stdout, err=result.stderr)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_bundle_and_verify(loop, tmp_path):
    iid = start_case(loop)
    run_case_minor(loop, iid, T1, verified=False)
    with loop.db.tx() as s:
        add_user(s, "olga", "olga-password", "officer", "officers")
    env = {"REGFLOW_DATABASE_URL": loop.db.url, "REGFLOW_UPLOAD_DIR": str(tmp_path / "uploads")}
    out = tmp_path / "case.zip"
    made = run(env, "cases", "bundle", str(iid), "-o", str(out), "--user", "carol", "--json")
    assert made.code == 0, made.err
    doc = json.loads(made.out)
    assert doc["case_number"] and doc["items"] >= 6 and doc["size"] == out.stat().st_size
    ok = run(env, "cases", "verify", str(out))
    assert ok.code == 0 and ok.out.startswith(f"OK: case {doc['case_number']} (instance {iid})"), ok.out + ok.err

    with zipfile.ZipFile(out) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    (approval,) = [n for n in entries if n.startswith("documents/") and "立案审批表" in n]
    pdf = bytearray(entries[approval])
    pdf[100] ^= 0x01
    entries[approval] = bytes(pdf)
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    broken = run(env, "cases", "verify", str(changed))
    assert broken.code == 1
    assert f"{approval}: its SHA-256 differs from the manifest's (the file was changed)" in broken.out
    report = json.loads(run(env, "cases", "verify", str(changed), "--json").out)
    assert not report["ok"] and [p["file"] for p in report["problems"]] == [approval]

    refused = run(env, "cases", "bundle", str(iid), "-o", str(tmp_path / "x.zip"), "--user", "olga")
    assert refused.code == 5 and not (tmp_path / "x.zip").exists()
    assert run(env, "cases", "bundle", "999999", "-o", str(tmp_path / "y.zip"), "--user", "carol").code == 3

    bomb = tmp_path / "bomb.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"\0" * (MAX_RATIO * 4000))
    bomb.write_bytes(buf.getvalue())
    result = run(env, "cases", "verify", str(bomb))
    assert result.code == 2 and "possible ZIP bomb" in result.err
    assert run(env, "cases", "verify", str(out), "--max-mb", "1").code == 0
