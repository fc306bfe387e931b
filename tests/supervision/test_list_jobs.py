"""The lists' periodic work and effects: the 1 July annual-report default job once a year (as the worker registers
it), a filed report ends its listing, and the class override — and so the draw's stratum — lasts exactly as long
as the listing."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from engine.errors import InvalidInput
from engine.runtime import periodic
from engine.runtime.worker import run_due
from engine.supervision import list_jobs, lists
from engine.supervision.calendar import SHANGHAI
from engine.supervision.draw.eligibility import in_scope
from engine.supervision.list_models import AnnualReport, ListEntry
from scoring import registry, service
from scoring.generator import generate
from scoring.models import Entity
from scoring.train import train_synthetic
from tests.supervision.test_lists import add_entity

AS_OF = datetime(2026, 6, 1, tzinfo=SHANGHAI)


def open_reasons(s, entity_id: int) -> list[str]:
    return [x.reason_code for x in lists.open_entries(s, entity_id, "abnormal")]


def test_the_annual_report_job_runs_once_a_year_from_1_july(db, runtime):
    job = periodic.get_job("lists.annual_report_defaults")  # as engine.bootstrap registered it
    with db.tx() as s:
        filed = add_entity(s, 101)
        missing = add_entity(s, 102)
        gone = add_entity(s, 103, status="deregistered")
        new_2026 = add_entity(s, 104, years_in_business=0.2, factors_as_of=AS_OF)  # registered in 2026
        from_2025 = add_entity(s, 105, years_in_business=1.2, factors_as_of=AS_OF)  # registered in 2025
        s.add(AnnualReport(entity_id=filed.id, year=2025, filed_on=date(2026, 4, 1)))
        ids = SimpleNamespace(filed=filed.id, missing=missing.id, gone=gone.id, new=new_2026.id, y25=from_2025.id)
    with db.tx() as s:
        assert periodic.run_job(s, job, datetime(2026, 6, 30, 23, 59, tzinfo=SHANGHAI)) is None
    with db.tx() as s:
        out = periodic.run_job(s, job, datetime(2026, 7, 1, 0, 0, tzinfo=SHANGHAI))
        assert out == {"job": "lists.annual_report_defaults", "period": "2026", "year": 2025, "listed": 2,
                       "already_listed": 0}
        assert open_reasons(s, ids.missing) == open_reasons(s, ids.y25) == ["annual_report_missing"]
        assert open_reasons(s, ids.filed) == open_reasons(s, ids.gone) == open_reasons(s, ids.new) == []
        entry = lists.open_entries(s, ids.missing, "abnormal")[0]
        assert entry.legal_basis == "《企业信息公示暂行条例》" and "2025" in entry.reason
        assert entry.entered_by == "system" and entry.escalates_on == date(2029, 7, 1)
        late = add_entity(s, 106)  # appears later in the year: no second run in 2026
    with db.tx() as s:
        assert periodic.run_job(s, job, datetime(2026, 8, 1, tzinfo=SHANGHAI)) is None
        assert open_reasons(s, late.id) == []
        s.add(AnnualReport(entity_id=ids.filed, year=2026, filed_on=date(2027, 3, 1)))
    with db.tx() as s:
        out = periodic.run_job(s, job, datetime(2027, 7, 1, 9, 0, tzinfo=SHANGHAI))
        assert (out["year"], out["listed"], out["already_listed"]) == (2026, 2, 2)  # new_2026 and late; 2 kept
        assert open_reasons(s, ids.new) == open_reasons(s, late.id) == ["annual_report_missing"]
        assert len(open_reasons(s, ids.missing)) == 1  # not listed twice


def test_no_report_on_record_lists_nobody(db):
    with db.tx() as s:
        e = add_entity(s, 111)
        out = list_jobs.annual_report_defaults(s, datetime(2026, 7, 2, tzinfo=SHANGHAI))
        assert out["listed"] == 0 and "no annual report for 2025" in out["skipped"]
        assert open_reasons(s, e.id) == []
        with pytest.raises(InvalidInput):  # before 1 July the reports are not overdue
            list_jobs.annual_report_defaults(s, datetime(2026, 6, 30, 12, 0, tzinfo=SHANGHAI))


def test_a_filed_report_removes_its_listing(db):
    with db.tx() as s:
        e, other = add_entity(s, 121), add_entity(s, 122)
        s.add(AnnualReport(entity_id=other.id, year=2025, filed_on=date(2026, 5, 1)))
        out = list_jobs.annual_report_defaults(s, datetime(2026, 7, 1, 8, 0, tzinfo=SHANGHAI))
        assert out["listed"] == 1, out
        assert s.get(Entity, e.id).abnormal_list is True
        out = list_jobs.record_annual_report(s, entity_id=e.id, year=2025, filed_on=date(2026, 7, 20),
                                             now=datetime(2026, 7, 20, 9, 0, tzinfo=SHANGHAI), actor="registry")
        (entry,) = s.scalars(select(ListEntry).where(ListEntry.entity_id == e.id)).all()
        assert out["removed"] == [entry.id] and entry.removal_kind == "correction"
        assert s.get(Entity, e.id).abnormal_list is False


@pytest.fixture(scope="module")
def small_model():
    result, _ = train_synthetic(3000, seed=5)
    return result


def classes_in_the_draw(s) -> dict[int, str]:
    scope = in_scope(s, SimpleNamespace(target_industries=None, jurisdiction=None))
    return {int(i): k.decode() for i, k in zip(scope.ids, scope.classes)}


def test_the_class_override_ends_with_the_listing(db, small_model):
    region = generate(80, seed=3, history=False)
    with db.tx() as s:
        registry.store_version(s, small_model.model, small_model.metrics, small_model.metadata, activate=True)
        service.load_entities(s, region.entities)
    with db.tx() as s:
        service.score_all(s, progress=False, reasons=True)
    with db.tx() as s:
        low = s.scalars(select(Entity).where(Entity.risk_class == "A", Entity.abnormal_list.is_(False),
                                             Entity.serious_list.is_(False)).order_by(Entity.id)).first()
        assert low is not None
        entity_id = low.id
        assert classes_in_the_draw(s)[entity_id] == "A"
    t0 = datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
    with db.tx() as s:
        lists.enter(s, list_kind="abnormal", entity_id=entity_id, reason="公示信息弄虚作假",
                    legal_basis=lists.ABNORMAL_BASIS, reason_code="false_information", now=t0, actor="officer1")
    with db.tx() as s:
        assert classes_in_the_draw(s)[entity_id] in ("C", "D")
        assert any(r["factor"] == "override:abnormal_list" for r in s.get(Entity, entity_id).risk_reasons)
    with db.tx() as s:
        lists.remove(s, list_kind="abnormal", entity_id=entity_id, reason="已更正", now=t0 + timedelta(days=20),
                     actor="officer1")
    with db.tx() as s:
        assert classes_in_the_draw(s)[entity_id] in ("A", "B")  # the model's own class (history factor set)
        assert not any(r["factor"].startswith("override:") for r in s.get(Entity, entity_id).risk_reasons)


def test_the_worker_runs_the_daily_escalation_once_a_day(db, runtime):
    with db.tx() as s:
        e = add_entity(s, 131)
        lists.enter(s, list_kind="abnormal", entity_id=e.id, reason="无法联系", legal_basis=lists.ABNORMAL_BASIS,
                    reason_code="unreachable", now=datetime(2023, 5, 4, 10, 0, tzinfo=SHANGHAI), actor="officer1")
    day = datetime(2026, 5, 4, 0, 5, tzinfo=SHANGHAI)
    report = run_due(runtime, db.factory, now=day)
    (esc,) = [r for r in report.periodic if r["job"] == "lists.escalation"]
    assert (esc["period"], esc["escalated"]) == ("2026-05-04", 1) and report.periodic_failures == []
    again = run_due(runtime, db.factory, now=day + timedelta(hours=12))
    assert [r for r in again.periodic if r["job"] == "lists.escalation"] == []  # once a day
    with db.tx() as s:
        assert s.get(Entity, e.id).serious_list is True
