"""``regflow lists``: show, enter, remove, apply, applications, review, escalate, annual-report(-defaults) as a
person would run them, with ``--json`` and the exit-code contract; who may is the policy's (check_list_*)."""
from __future__ import annotations

import json
from types import SimpleNamespace

from click.testing import CliRunner
from sqlalchemy import select

from engine.cli import main
from engine.runtime.models import AppUser
from engine.runtime.users import add_user
from engine.supervision import lists
from tests.conftest import cli_json
from tests.supervision.test_lists import T0, add_entity


def run_cli(env: dict, *args: str):
    """The command in this process (a subprocess per call costs seconds); one subprocess run below proves the
    installed entry point."""
    result = CliRunner().invoke(main, list(args), env={"REGFLOW_DATABASE_URL": env["REGFLOW_DATABASE_URL"]})
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout)


def cli(env: dict, *args: str):
    proc = run_cli(env, *args, "--json")
    assert proc.returncode == 0, proc.stdout
    return json.loads(proc.stdout)


def setup(db) -> tuple[str, str]:
    with db.tx() as s:
        add_user(s, "sam", "sam-password", "supervisor", "supervisors")
        add_user(s, "sue", "sue-password", "supervisor", "supervisors")
        add_user(s, "olga", "olga-password", "officer", "officers")
        add_user(s, "lim", "lim-password", "supervisor", "supervisors")
        s.scalars(select(AppUser).where(AppUser.username == "lim")).one().jurisdiction = ["440104"]
        add_user(s, "aud", "aud-password", "auditor", "auditors")
        e, other = add_entity(s, 301), add_entity(s, 302)
        return e.uscc, other.uscc


def test_enter_show_remove_as_a_supervisor(sqlite_db):
    db = sqlite_db
    uscc, _ = setup(db)
    doc = cli_json(db.env, "lists", "enter", "abnormal", uscc, "--reason", "公示信息弄虚作假",
                   "--legal-basis", "《企业信息公示暂行条例》", "--reason-code", "false_information", "--user", "sam")
    assert doc["created"] is True and doc["status"] == "listed" and doc["entered_by"] == "sam"
    again = cli(db.env, "lists", "enter", "abnormal", uscc, "--reason", "再次", "--legal-basis", "x",
                     "--reason-code", "false_information", "--user", "sam")
    assert again["created"] is False and again["id"] == doc["id"]
    shown = cli(db.env, "lists", "show", "--uscc", uscc, "--user", "aud")
    assert [e["id"] for e in shown["entries"]] == [doc["id"]]
    assert shown["counts"]["abnormal"] == {"entered": 1, "removed": 0, "open": 1}
    removed = cli(db.env, "lists", "remove", str(doc["id"]), "--reason", "已更正", "--user", "sam")
    assert removed["status"] == "removed" and removed["removal_kind"] == "correction"
    # exit codes: 4 conflict (removed twice), 3 not found, 2 invalid, 5 not allowed
    assert run_cli(db.env, "lists", "remove", str(doc["id"]), "--reason", "x", "--user", "sam").returncode == 4
    assert run_cli(db.env, "lists", "remove", "999999", "--reason", "x", "--user", "sam").returncode == 3
    assert run_cli(db.env, "lists", "enter", "abnormal", "BAD", "--reason", "x", "--legal-basis", "y",
                   "--user", "sam").returncode == 2
    assert run_cli(db.env, "lists", "enter", "abnormal", uscc, "--reason", "x" * 600, "--legal-basis", "y",
                   "--user", "sam").returncode == 2
    assert run_cli(db.env, "lists", "enter", "abnormal", uscc, "--reason", "x", "--legal-basis", "y",
                   "--user", "olga").returncode == 5  # officers do not list by hand
    assert run_cli(db.env, "lists", "enter", "abnormal", uscc, "--reason", "x", "--legal-basis", "y",
                   "--user", "lim").returncode == 5  # outside lim's district
    assert run_cli(db.env, "lists", "show", "--user", "nobody").returncode == 5


def test_apply_and_review_by_two_people(sqlite_db):
    db = sqlite_db
    uscc, _ = setup(db)
    with db.tx() as s:
        entity_id = add_entity(s, 303).id
        # listed in 2025: credit repair is open after a year of publicity
        entry, _ = lists.enter(s, list_kind="serious", entity_id=entity_id, reason="受到较重行政处罚",
                               legal_basis=lists.SERIOUS_BASIS, now=T0.replace(year=2025), actor="worker")
        entry_id = entry.id
    app = cli(db.env, "lists", "apply", str(entry_id), "--statement", "已履行处罚决定", "--evidence",
                   '["EV-7"]', "--user", "olga")
    assert app["status"] == "pending" and app["evidence"] == ["EV-7"] and app["list"] == "serious"
    assert run_cli(db.env, "lists", "apply", str(entry_id), "--statement", "x", "--evidence", '{"a": 1}',
                   "--user", "olga").returncode == 2
    pending = cli(db.env, "lists", "applications", "--user", "sam")
    assert [a["application_id"] for a in pending["applications"]] == [app["application_id"]]
    assert run_cli(db.env, "lists", "review", str(app["application_id"]), "--reject", "--user",
                   "sam").returncode == 2  # a rejection needs a note
    done = cli(db.env, "lists", "review", str(app["application_id"]), "--approve", "--note", "已修复",
                    "--user", "sam")
    assert done["status"] == "approved" and done["entry_status"] == "removed" and done["reviewed_by"] == "sam"
    assert cli(db.env, "lists", "applications", "--user", "sam")["applications"] == []


def test_the_jobs_by_hand(sqlite_db):
    db = sqlite_db
    uscc, other = setup(db)
    with db.tx() as s:
        entity_id = add_entity(s, 304).id
        lists.enter(s, list_kind="abnormal", entity_id=entity_id, reason="无法联系", legal_basis=lists.ABNORMAL_BASIS,
                    reason_code="unreachable", now=T0.replace(year=2020), actor="worker")
    out = cli(db.env, "lists", "escalate", "--user", "sam")
    assert out["escalated"] == 1
    assert run_cli(db.env, "lists", "escalate", "--user", "lim").returncode == 5  # city-wide work
    assert run_cli(db.env, "lists", "escalate", "--user", "olga").returncode == 5
    rec = cli(db.env, "lists", "annual-report", other, "2025", "--filed-on", "2026-03-01", "--user", "sam")
    assert rec["year"] == 2025 and rec["removed"] == []
    out = cli(db.env, "lists", "annual-report-defaults", "--year", "2025", "--user", "sam")
    assert out["year"] == 2025 and out["listed"] == 2  # uscc and entity 304; `other` filed
    shown = cli(db.env, "lists", "show", "--list", "abnormal", "--status", "listed", "--user", "sam")
    annual = [e for e in shown["entries"] if e["reason_code"] == "annual_report_missing"]
    assert len(annual) == 2 and uscc in {e["uscc"] for e in annual} and other not in {e["uscc"] for e in annual}
    assert run_cli(db.env, "lists", "annual-report-defaults", "--year", "1999", "--user", "sam").returncode == 2
