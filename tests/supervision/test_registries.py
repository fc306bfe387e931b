"""CSV imports: the demo files load; every kind of bad row is reported with row and column and nothing is
written; re-importing is an upsert by code; expired certificates are flagged."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import engine.supervision.registry_models  # noqa: F401  (until engine.schema imports it)
from engine.cli.registries import import_group, inspectors_group, items_group
from engine.errors import NotFound
from engine.supervision import importer as im
from engine.supervision import registries
from engine.supervision.registry_models import (
    CheckItem,
    Department,
    Inspector,
    InspectorConflict,
    InspectorLeave,
    Skill,
)
from forms.checklist import merge_checklist
from scoring.models import Entity

DATA = Path(__file__).resolve().parents[1] / "data" / "supervision"
NOW = datetime(2026, 3, 5, 2, 0, tzinfo=timezone.utc)
TODAY = date(2026, 3, 5)
TABLES = (Department, Skill, Inspector, InspectorLeave, InspectorConflict, CheckItem, Entity)


def load_demo(s) -> dict:
    out = {"departments": im.import_departments(s, DATA / "departments.csv"),
           "skills": im.import_skills(s, DATA / "skills.csv"),
           "inspectors": im.import_inspectors(s, DATA / "inspectors.csv", today=TODAY, now=NOW),
           "leaves": im.import_leaves(s, DATA / "leaves.csv"),
           "conflicts": im.import_conflicts(s, DATA / "conflicts.csv", now=NOW),
           "items": im.import_items(s, DATA / "items.csv", now=NOW),
           "entities": im.import_entities(s, DATA / "entities.csv")}
    return {k: v.to_dict() for k, v in out.items()}


def counts(s) -> dict:
    return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


@pytest.fixture
def demo(db):
    with db.tx() as s:
        load_demo(s)
    return db


def test_demo_files_import(db):
    with db.tx() as s:
        reports = load_demo(s)
    assert {k: r["created"] for k, r in reports.items()} == {
        "departments": 3, "skills": 6, "inspectors": 12, "leaves": 2, "conflicts": 1, "items": 4, "entities": 6}
    with db.tx() as s:
        item = s.scalar(select(CheckItem).where(CheckItem.code == "FOOD-01"))
        assert item.industries == ["H", "F"] and item.required_skill == "food_safety" and item.method == "on_site"
        assert [c["code"] for c in item.clauses] == ["LIC-01", "FOOD-02", "LIC-02"]
        price = s.scalar(select(CheckItem).where(CheckItem.code == "PRICE-01"))
        assert price.clauses[0]["basis"] == ["《价格法》第十三条", "《明码标价和禁止价格欺诈规定》第四条"]
        assert s.scalar(select(CheckItem).where(CheckItem.code == "AR-01")).industries == []  # every section
        i5 = registries.get_inspector(s, "I005")
        assert i5.skills == ["drug_gsp", "general"] and i5.leader_eligible and i5.cert_expires == date(2028, 9, 30)
        expert = registries.get_inspector(s, "E001")
        assert expert.is_expert and expert.cert_no is None and expert.region == "410100"
        coop = s.scalar(select(Entity).where(Entity.uscc == "93410105184049481G"))
        assert coop.annual_report_late_3y is None and coop.factors_as_of is None  # blank = unknown
        shop = s.scalar(select(Entity).where(Entity.uscc == "91410103542143049P"))
        assert shop.abnormal_list_ever is True and shop.penalties_3y == 1 and shop.status == "active"
        # the items feed the merged checklist as they are

        docs = [registries.check_item_doc(i) for i in registries.items_for(s, ["FOOD-01", "DRUG-01"])]
        merged = merge_checklist(docs)
        assert (merged.clauses_before, merged.clauses_after) == (5, 4)  # LIC-02 is shared
        assert registries.required_skills(registries.items_for(s, ["FOOD-01", "DRUG-01", "AR-01"])) == \
            ["drug_gsp", "food_safety", "general"]
        with pytest.raises(NotFound, match="NOPE"):
            registries.items_for(s, ["FOOD-01", "NOPE"])


def test_reimport_is_an_upsert_by_code(demo, tmp_path):
    with demo.tx() as s:
        again = load_demo(s)
    assert all(r["created"] == 0 and r["updated"] == 0 and r["unchanged"] == r["rows"] - (3 if k == "items" else 0)
               for k, r in again.items()), again
    changed = (DATA / "inspectors.csv").read_text(encoding="utf-8").replace("I002,王芳", "I002,王芳芳")
    changed += "I012,新人,,amr,ZF41010012,2031-01-01,general,410105,false,false,0,true\n"
    (tmp_path / "inspectors.csv").write_text(changed, encoding="utf-8")
    with demo.tx() as s:
        r = im.import_inspectors(s, tmp_path / "inspectors.csv", today=TODAY, now=NOW)
        assert (r.created, r.updated, r.unchanged) == (1, 1, 11)
        assert registries.get_inspector(s, "I002").name == "王芳芳"


def test_expired_certificate_is_a_warning_and_flagged(demo):
    with demo.tx() as s:
        r = im.import_inspectors(s, DATA / "inspectors.csv", today=TODAY, now=NOW)
        assert [(w.row, w.column) for w in r.warnings] == [(11, "cert_expires")]
        assert "expired on 2024-12-31" in r.warnings[0].reason
        by_code = {d["code"]: d for d in registries.list_inspectors(s, on=TODAY, include_inactive=True)}
        assert by_code["I010"]["cert_status"] == "expired" and by_code["I001"]["cert_status"] == "valid"
        assert by_code["E001"]["cert_status"] == "none"
        assert "I011" not in {d["code"] for d in registries.list_inspectors(s, on=TODAY)}  # inactive
        later = {d["code"]: d["cert_status"]
                 for d in registries.list_inspectors(s, on=date(2028, 9, 15), skill="drug_gsp", region="410105")}
        assert later == {"E001": "none", "I004": "valid", "I005": "expiring"}  # E001's city-level region covers it


HEAD_E = "uscc,name,industry_section,district,entity_type,employee_count,annual_report_late_3y,factors_as_of\n"
OK_E = "91410105341672112H,药房,F,410105,llc,3,0,2026-01-01\n"
HEAD_I = "code,name,department,cert_no,cert_expires,skills,region,is_expert,leader_eligible\n"
OK_I = "X01,甲,amr,C1,2030-01-01,general,410105,false,true\n"
HEAD_T = ("code,name,legal_basis,department,industries,required_skill,ratio,frequency,method,clause_code,"
          "clause_text,clause_basis\n")
OK_T = "T-1,检查,某法,amr,F,general,0.05,annual,on_site,C1,条款一,某法第一条\n"

BAD = [
    # (kind, text, row, column, reason fragment)
    ("entities", "uscc,name,industry_section,district\n" + OK_E[:40] + "\n", 1, "entity_type", "required column"),
    ("entities", HEAD_E.replace("\n", ",colour\n") + OK_E.replace("\n", ",red\n"), 1, "colour", "unknown column"),
    ("entities", HEAD_E + OK_E + "91410105341672112X,坏码,F,410105,llc,1,0,2026-01-01\n", 3, "uscc", "check digit"),
    ("entities", HEAD_E + OK_E + "410105000012345,旧号,F,410105,llc,1,0,2026-01-01\n", 3, "uscc", "15-digit"),
    ("entities", HEAD_E + OK_E + OK_E.replace("药房", "重复"), 3, "uscc", "duplicate of row 2"),
    ("entities", HEAD_E + OK_E.replace(",3,0,", ",many,0,"), 2, "employee_count", "not a number"),
    ("entities", HEAD_E + OK_E.replace(",3,0,", ",3,7,"), 2, "annual_report_late_3y", "valid range"),
    ("entities", HEAD_E + OK_E.replace("2026-01-01", "2026-13-01"), 2, "factors_as_of", "not a date"),
    ("entities", HEAD_E + OK_E.replace(",F,", ",S,"), 2, "industry_section", "unknown industry_section"),
    ("entities", HEAD_E + OK_E.replace("410105,llc", "410105,ltd"), 2, "entity_type", "unknown entity_type"),
    ("entities", HEAD_E + OK_E.replace(",药房,", ",,"), 2, "name", "required"),
    ("inspectors", HEAD_I + OK_I + OK_I.replace("C1", "C2"), 3, "code", "duplicate of row 2"),
    ("inspectors", HEAD_I + OK_I.replace(",amr,", ",police,"), 2, "department", "unknown department 'police'"),
    ("inspectors", HEAD_I + OK_I.replace(",general,", ",general;karate,"), 2, "skills", "unknown skill 'karate'"),
    ("inspectors", HEAD_I + OK_I.replace("2030-01-01", "31/12/2030"), 2, "cert_expires", "not a date"),
    ("inspectors", HEAD_I + OK_I.replace(",C1,2030-01-01,", ",,,"), 2, "cert_no", "needs an enforcement certificate"),
    ("inspectors", HEAD_I + OK_I.replace(",410105,", ",4101,"), 2, "region", "6-digit"),
    ("inspectors", HEAD_I + OK_I.replace("false,true", "maybe,true"), 2, "is_expert", "not true/false"),
    ("inspectors", HEAD_I + OK_I.replace("false,true", "true,true"), 2, "leader_eligible", "expert cannot lead"),
    ("inspectors", HEAD_I + OK_I + OK_I.replace("X01", "X02"), 3, "cert_no", "duplicate of row 2"),
    ("inspectors", HEAD_I + OK_I.replace("C1", "ZF41010001"), 2, "cert_no", "already belongs to inspector I001"),
    ("items", HEAD_T + OK_T.replace(",amr,", ",mof,"), 2, "department", "unknown department 'mof'"),
    ("items", HEAD_T + OK_T.replace(",general,", ",alchemy,"), 2, "required_skill", "unknown skill 'alchemy'"),
    ("items", HEAD_T + OK_T.replace(",F,", ",F;Z,"), 2, "industries", "unknown GB/T 4754 section 'Z'"),
    ("items", HEAD_T + OK_T.replace("0.05", "1.5"), 2, "ratio", "not a share"),
    ("items", HEAD_T + OK_T.replace("on_site", "by_phone"), 2, "method", "unknown method"),
    ("items", HEAD_T + OK_T.replace("annual", "hourly"), 2, "frequency", "unknown frequency"),
    ("items", HEAD_T + OK_T + "T-1,,,pricey,,,,,,C2,条款二,\n", 3, "department", "differs from row 2"),
    ("items", HEAD_T + OK_T + "T-1,,,,,,,,,C1,又一条,\n", 3, "clause_code", "duplicate of row 2"),
    ("items", HEAD_T + OK_T.replace(",条款一,", ",,"), 2, "clause_text", "required"),
    ("leaves", "inspector,start_date,end_date\nNOBODY,2026-01-01,2026-01-02\n", 2, "inspector", "unknown inspector"),
    ("leaves", "inspector,start_date,end_date\nI001,2026-01-05,2026-01-02\n", 2, "end_date", "before start_date"),
    ("conflicts", "inspector,uscc,reason\nI001,91410105341672112X,亲属\n", 2, "uscc", "check digit"),
    ("conflicts", "inspector,uscc,reason\nI001,91410105341672112H,\n", 2, "reason", "required"),
]


def _run_import(s, kind: str, path: Path):
    fn = {"entities": im.import_entities, "leaves": im.import_leaves, "departments": im.import_departments,
          "skills": im.import_skills}.get(kind)
    if fn is not None:
        return fn(s, path)
    if kind == "inspectors":
        return im.import_inspectors(s, path, today=TODAY, now=NOW)
    if kind == "conflicts":
        return im.import_conflicts(s, path, now=NOW)
    return im.import_items(s, path, now=NOW)


@pytest.mark.parametrize("kind,text,row,column,reason", BAD, ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_rows_are_reported_and_nothing_is_written(demo, tmp_path, kind, text, row, column, reason):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    with demo.tx() as s:
        before = counts(s)
        with pytest.raises(im.ImportRejected) as err:
            _run_import(s, kind, path)
        assert counts(s) == before  # nothing written, not even the good rows
    found = [(e.row, e.column) for e in err.value.errors]
    assert (row, column) in found, err.value.errors
    assert any(reason in e.reason for e in err.value.errors if (e.row, e.column) == (row, column)), str(err.value)
    assert err.value.exit_code == 2 and f"row {row}, column {column}" in str(err.value)


def test_every_problem_is_listed_at_once(db, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEAD_E + OK_E.replace(",F,", ",S,") + OK_E.replace("2H,", "2X,").replace(",3,0,", ",x,0,"),
                    encoding="utf-8")
    with db.tx() as s:
        with pytest.raises(im.ImportRejected) as err:
            im.import_entities(s, path)
    assert [(e.row, e.column) for e in err.value.errors] == [
        (2, "industry_section"), (3, "employee_count"), (3, "uscc")]
    assert err.value.details["errors"][0] == {"row": 2, "column": "industry_section",
                                              "reason": "unknown industry_section 'S' (known: A, B, C, D, E, F, G, H, "
                                                        "I, J, K, L, M, N, O, P, Q, R)"}


def test_unknown_references_before_reference_data(db, tmp_path):
    with db.tx() as s:
        with pytest.raises(im.ImportRejected, match="run `regflow import departments` first"):
            im.import_inspectors(s, DATA / "inspectors.csv", today=TODAY, now=NOW)


def test_encoding_and_empty_file(db, tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("code,name\namr,市场监管\n".encode("gbk"))
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with db.tx() as s:
        with pytest.raises(im.ImportRejected, match="--encoding gb18030"):
            im.import_departments(s, gbk)
        assert im.import_departments(s, gbk, encoding="gb18030").created == 1
        assert s.get(Department, "amr").name == "市场监管"
        with pytest.raises(im.ImportRejected, match="empty"):
            im.import_skills(s, empty)
        with pytest.raises(NotFound):
            im.import_skills(s, tmp_path / "missing.csv")


def test_existing_entity_is_updated_not_duplicated(demo, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("uscc,name,industry_section,district,entity_type,status,complaints_12m\n"
                    "91410105341672112H,郑州金水大药房有限公司(更名),F,410105,llc,active,5\n", encoding="utf-8")
    with demo.tx() as s:
        r = im.import_entities(s, path)
        assert (r.created, r.updated) == (0, 1)
        e = s.scalar(select(Entity).where(Entity.uscc == "91410105341672112H"))
        assert e.complaints_12m == 5 and e.name.endswith("(更名)") and e.years_in_business == 6.5  # untouched column


def test_cli_import_and_errors(demo, tmp_path, monkeypatch):

    monkeypatch.setenv("REGFLOW_DATABASE_URL", demo.url)
    runner = CliRunner()
    ok = runner.invoke(import_group, ["items", str(DATA / "items.csv"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["unchanged"] == 4
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD_E + OK_E.replace("2H,", "2X,"), encoding="utf-8")
    res = runner.invoke(import_group, ["entities", str(bad)])
    assert res.exit_code == 2
    assert "row 2, column uscc" in res.stderr and "nothing was imported" in res.stderr
    res = runner.invoke(import_group, ["entities", str(bad), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["errors"][0]["column"] == "uscc"
    listing = runner.invoke(inspectors_group, ["list", "--json", "--on", "2026-03-05", "--skill", "drug_gsp"])
    assert [d["code"] for d in json.loads(listing.stdout)] == ["E001", "I004", "I005"]
    text = runner.invoke(items_group, ["list", "--industry", "H"])
    assert text.exit_code == 0 and "FOOD-01" in text.stdout and "DRUG-01" not in text.stdout
    leave = runner.invoke(inspectors_group, ["leave", "I001", "--from", "2026-04-01", "--to", "2026-04-03"])
    assert leave.exit_code == 0, leave.output
    missing = runner.invoke(inspectors_group, ["leave", "I999", "--from", "2026-04-01", "--to", "2026-04-03"])
    assert missing.exit_code == 3
