"""Smoke runs of bench/web.py with tiny sizes: the script seeds, serves, signs in and prints every case's
numbers (never checked against a time), and the seeded data is what the engine itself would write."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from engine.db import dispose_engines, session_factory, transaction
from engine.runtime import audit
from engine.supervision.inbox import TaskQuery, Viewer, list_tasks
from tests.conftest import PG_BASE, ROOT, pg_available

SCRIPT = ROOT / "bench" / "web.py"
TINY = ["--tasks", "2000", "--entities", "300", "--campaigns", "5", "--requests", "4", "--warmup", "1",
        "--threads", "2"]
CASES = {"inbox_default", "inbox_page2", "inbox_overdue", "inbox_entity", "inbox_uscc", "inbox_jurisdiction",
         "history"}


def run_bench(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--json", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def check_backend(res: dict) -> None:
    assert res["rows"]["human_task"] == 2001  # the seeded tasks and the history instance's own task
    assert res["rows"]["open_tasks"] == 2001
    assert res["rows"]["process_instance"] == 5 + 2000 + 1
    assert res["rows"]["human_task_candidate"] == res["seed"]["candidate_rows"] + 1
    assert res["seed"]["history_events"] == 200
    assert set(res["cases"]) == CASES
    for name, case in res["cases"].items():
        if case.get("missing"):
            # a page that does not exist (yet) is reported, never silently timed
            assert case["status"] != 200 and case["note"], name
            continue
        assert case["status"] == 200, name
        assert case["n"] == 4
        assert 0 < case["p50_ms"] <= case["p95_ms"] <= case["max_ms"], name
        assert case["bytes"] > 0
    # the inbox pages exist, so their numbers must be there
    assert not any(res["cases"][c].get("missing") for c in CASES if c.startswith("inbox_"))


def test_sqlite_smoke_and_reuse(tmp_path):
    db_file = tmp_path / "bench.db"
    first = run_bench("--skip-pg", "--reuse", str(db_file))
    assert first["pg_skipped"] == "--skip-pg given"
    check_backend(first["sqlite"])
    assert first["sqlite"]["seed"]["reused"] is False
    assert {g["goal"].split()[1] for g in first["goals"]} == {c for c in CASES if c.startswith("inbox_")}

    again = run_bench("--skip-pg", "--reuse", str(db_file))
    assert again["sqlite"]["seed"]["reused"] is True
    before, after = dict(first["sqlite"]["rows"]), dict(again["sqlite"]["rows"])
    # the only new rows are the sign-ins of the three bench users (system audit chain)
    assert after.pop("audit_event") == before.pop("audit_event") + 3
    assert after == before

    # other sizes on the same file are refused rather than mixed
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tasks", "3000", "--skip-pg", "--reuse", str(db_file)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "was seeded with" in proc.stderr

    # the seeded rows are consistent with what the runtime writes
    eng = create_engine(f"sqlite:///{db_file}")
    with eng.connect() as c:
        bad = c.execute(text(
            "SELECT count(*) FROM human_task t JOIN human_task_candidate k ON k.task_id = t.id "
            "WHERE k.claimed != (t.assignee IS NOT NULL) "
            "OR k.due_key != coalesce(t.due_at, '9999-12-31 00:00:00.000000')")).scalar()
        assert bad == 0
        # each queue row carries its entity's district (NULL without one), as the schema's triggers keep it
        assert c.execute(text(
            "SELECT count(*) FROM human_task_candidate k JOIN human_task t ON t.id = k.task_id "
            "LEFT JOIN entity e ON e.uscc = t.business_key WHERE k.district IS NOT e.district")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM human_task_candidate WHERE district IS NOT NULL")).scalar() > 0
        groups = c.execute(text("SELECT t.candidate_groups, count(k.group_name) FROM human_task t "
                                "JOIN human_task_candidate k ON k.task_id = t.id GROUP BY t.id")).all()
        assert all(len(json.loads(g)) == n for g, n in groups)
    eng.dispose()


    url = f"sqlite:///{db_file}"
    history = first["sqlite"]["seed"]["history_instance"]
    with transaction(session_factory(url)) as s:
        report = audit.verify(s)
        assert report.ok, report.problems[:5]
        assert report.events >= 2 * 2000 + 200
        page = list_tasks(s, Viewer("bench_officer", frozenset({"group_01", "group_02", "group_03"})),
                          TaskQuery(limit=50))
        assert len(page.rows) == 50
        assert [r.due_at is None for r in page.rows] == sorted(r.due_at is None for r in page.rows)
        assert s.execute(text("SELECT audit_seq FROM process_instance WHERE id = :i"), {"i": history}).scalar() == 200
    dispose_engines()


def test_postgresql_smoke():
    ok, why = pg_available()
    if not ok:
        pytest.skip(why)
    res = run_bench("--skip-sqlite")
    check_backend(res["postgresql"])
    assert "dropped afterwards" in res["postgresql"]["url"]
    # the temporary schema is gone
    schema = res["postgresql"]["url"].split(" schema ")[1].split()[0]

    eng = create_engine(PG_BASE)
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
                         {"s": schema}).scalar() == 0
    eng.dispose()
