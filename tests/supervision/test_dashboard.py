"""The supervisor's aggregates (engine.supervision.dashboard) on a small hand-built set of rows, on both
backends: hazards by grade, overdue orders, recurrence leaders, campaign progress, hit rate by class
against the control stratum, the daily series and open incidents."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from engine.runtime import clock
from engine.runtime.models import Incident
from engine.supervision import dashboard
from engine.supervision.campaign_models import Campaign, DrawResult
from engine.supervision.loop_models import EntityHazardStats, Hazard, Publication, RectificationOrder
from tests.supervision.test_inbox_service import add_entity, deploy_task_processes, start_task

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai


def _uscc(i: int) -> str:
    return f"9141010{i:02d}MA00000{i:02d}X"[:18]


def _campaign(s, code: str) -> Campaign:
    c = Campaign(code=code, name=f"campaign {code}", departments=["amr"], items=["i1"], window_start=date(2026, 6, 1),
                 window_end=date(2026, 8, 31), ratios={"A": "0.01"}, control_share="0.1", created_by="planner",
                 created_at=NOW - timedelta(days=20), status="published")
    s.add(c)
    s.flush()
    return c


def _result(s, campaign_id: int, uscc: str, stratum: str, klass: str, code: str, i: int) -> None:
    s.add(Publication(kind="result", uscc=uscc, ref=f"campaign:{campaign_id}", title="result",
                      payload={"result_code": code, "stratum": stratum, "risk_class": klass, "path": "standard"},
                      event_at=NOW, due_by=NOW + timedelta(days=28), source_instance_id=1000 + i,
                      source_task=f"t{i}", created_at=NOW))


def _hazard(s, uscc: str, grade: str, status: str, i: int) -> Hazard:
    h = Hazard(uscc=uscc, item_code="i1", clause=f"c{i}", grade=grade, source_instance_id=2000 + i,
               source_task="t", seq=0, found_at=NOW - timedelta(days=i), status=status, history=[])
    s.add(h)
    return h


@pytest.fixture
def world(runtime, db, people):
    with clock.frozen(NOW - timedelta(days=3)), db.tx() as s:
        ents = [add_entity(s, _uscc(i), f"企业{i}", "410102") for i in range(1, 9)]
        c1, c2 = _campaign(s, "C-1"), _campaign(s, "C-2")
        for rank, (e, stratum, klass) in enumerate(zip(ents, ["D", "D", "C", "A", "control", "control", "control",
                                                             "B"], ["D", "D", "C", "A", "D", "A", "B", "B"]), 1):
            s.add(DrawResult(campaign_id=c1.id, entity_id=e.id, uscc=e.uscc, stratum=stratum, risk_class=klass,
                             key_hex="0" * 64, rank=rank))
        s.add(DrawResult(campaign_id=c2.id, entity_id=ents[0].id, uscc=ents[0].uscc, stratum="D", risk_class="D",
                         key_hex="0" * 64, rank=1))
        # results: D 2 of 2 hit, C 0 of 1, A 0 of 1, control 1 of 3 (the D entity), one of another campaign
        _result(s, c1.id, ents[0].uscc, "D", "D", "result_A", 1)
        _result(s, c1.id, ents[1].uscc, "D", "D", "result_C", 2)
        _result(s, c1.id, ents[2].uscc, "C", "C", "result_1", 3)
        _result(s, c1.id, ents[3].uscc, "A", "A", "result_1", 4)
        _result(s, c1.id, ents[4].uscc, "control", "D", "result_3", 5)
        _result(s, c1.id, ents[5].uscc, "control", "A", "result_1", 6)
        _result(s, c1.id, ents[6].uscc, "control", "B", "result_7", 7)
        _result(s, c2.id, ents[0].uscc, "D", "D", "result_1", 8)
        # hazards: two open medium, one verified high, one removed low
        _hazard(s, ents[0].uscc, "medium", "open", 1)
        _hazard(s, ents[0].uscc, "medium", "open", 2)
        _hazard(s, ents[1].uscc, "high", "rectification_verified", 3)
        _hazard(s, ents[2].uscc, "low", "removed", 4)
        s.add(EntityHazardStats(uscc=ents[0].uscc, recurrence_count=3, hazards_total=4,
                                first_recorded_at=NOW - timedelta(days=300), last_recorded_at=NOW))
        s.add(EntityHazardStats(uscc=ents[1].uscc, recurrence_count=1, hazards_total=1,
                                first_recorded_at=NOW, last_recorded_at=NOW))
        orders = [("served", -2), ("issued", -5), ("served", 3), ("verified", -9)]  # status, deadline in days
        for i, (status, days) in enumerate(orders):
            deadline = NOW + timedelta(days=days)
            s.add(RectificationOrder(instance_id=3000 + i, task_guid="t", uscc=ents[0].uscc, hazard_ids=[], days=10,
                                     deadline=deadline, deadline_day=deadline.date(),
                                     issued_at=NOW - timedelta(days=20), status=status, history=[]))
        # the campaign's instance and its children: one completed, two open
        deploy_task_processes(runtime, s, ("camp", {}), ("child", {}))
        parent = start_task(runtime, s, "camp").instance_id
        s.add(Publication(kind="plan", uscc=None, ref=f"campaign:{c1.id}", title="plan", payload={}, event_at=NOW,
                          due_by=NOW, source_instance_id=parent, source_task="publish_plan", created_at=NOW))
        kids = [start_task(runtime, s, "child", key=ents[i].uscc, parent=parent, due=NOW - timedelta(days=2)).id
                for i in range(3)]
    with clock.frozen(NOW - timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, kids[0], "alice", {})
    return {"c1": c1.id, "c2": c2.id, "parent": parent, "kids": kids, "ents": [e.uscc for e in ents]}


def test_hazards_by_grade_and_leaders(db, world):
    with db.tx() as s:
        hz = dashboard.hazards_by_grade(s)
        assert hz["medium"] == {"open": 2, "rectification_verified": 0, "total": 2}
        assert hz["high"]["rectification_verified"] == 1 and hz["low"]["total"] == 0
        leaders = dashboard.recurrence_leaders(s, limit=5)
        assert [(x.uscc, x.recurrence_count, x.open_hazards) for x in leaders] == [
            (world["ents"][0], 3, 2), (world["ents"][1], 1, 1)]
        assert leaders[0].name == "企业1"
        page = dashboard.list_hazards(s, grade="medium")
        assert page.total == 2 and all(h.grade == "medium" for h, _n in page.rows)
        assert dashboard.list_hazards(s, status=None).total == 4
        assert dashboard.list_hazards(s, status="removed").total == 1


def test_overdue_orders(db, world):
    with db.tx() as s:
        n, rows = dashboard.overdue_orders(s, NOW)
    assert n == 2 and [r.status for r in rows] == ["issued", "served"]  # most overdue first
    assert rows[0].deadline < rows[1].deadline


def test_campaign_progress(db, world):
    with db.tx() as s:
        progress = {p.code: p for p in dashboard.campaign_progress(s)}
    c1 = progress["C-1"]
    assert c1.drawn == 8 and c1.drawn_by_stratum == {"D": 2, "C": 1, "A": 1, "control": 3, "B": 1}
    assert c1.instance_id == world["parent"]
    assert (c1.started, c1.completed, c1.open) == (3, 1, 2)
    c2 = progress["C-2"]
    assert c2.drawn == 1 and c2.started == 0 and c2.instance_id is None


def test_hit_rate_by_class_vs_control(db, world):
    with db.tx() as s:
        all_ = dashboard.hit_rates(s)
        one = dashboard.hit_rates(s, campaign_id=world["c1"])
        none = dashboard.hit_rates(s, campaign_id=999)
    d = one.by_class["D"]
    assert (d["stratum"].n, d["stratum"].hits, d["stratum"].rate) == (2, 2, 1.0)
    assert (d["control"].n, d["control"].hits) == (1, 1)
    assert (one.by_class["C"]["stratum"].n, one.by_class["C"]["stratum"].hits) == (1, 0)
    assert (one.control.n, one.control.hits) == (3, 1) and one.control.rate == round(1 / 3, 4)
    assert one.lift("D") == 3.0 and one.lift("B") is None
    assert one.risk_drawn.n == 4 and one.risk_drawn.hits == 2
    lo, hi = one.control.interval
    assert 0 < lo < 1 / 3 < hi < 1
    # the other campaign's D result (no problem) joins the total
    assert all_.by_class["D"]["stratum"].n == 3 and all_.by_class["D"]["stratum"].hits == 2
    assert none.control.n == 0 and none.by_class["D"]["stratum"].rate is None


def test_daily_series(db, world):
    with db.tx() as s:
        series = dashboard.daily_series(s, NOW, days=7)
    assert len(series.days) == 7 and series.days[-1] == "2026-06-15"
    # the child task completed yesterday (Shanghai day)
    assert series.tasks_completed == [0, 0, 0, 0, 0, 1, 0]
    assert sum(series.instances_completed) == 1 and series.instances_completed[5] == 1
    # days 06-09 .. 06-15: three children created 06-12, due 06-13 12:00 (Shanghai), one completed 06-14;
    # the parent's task has no due date
    assert series.overdue_open == [0, 0, 0, 0, 3, 2, 2]


def test_daily_series_rejects_bad_ranges(db):
    from engine.errors import InvalidInput

    with db.tx() as s, pytest.raises(InvalidInput):
        dashboard.daily_series(s, NOW, days=0)


def test_open_incidents_and_overview(db, world):
    with db.tx() as s:
        s.add(Incident(instance_id=world["parent"], bpmn_id="work", error_type="RuntimeError", message="boom",
                       stack="", attempts=3, status="open", created_at=NOW))
        s.add(Incident(instance_id=world["parent"], bpmn_id="work", error_type="RuntimeError", message="old",
                       stack="", attempts=3, status="resolved", created_at=NOW - timedelta(days=1)))
    with db.tx() as s:
        n, rows = dashboard.open_incidents(s)
        assert n == 1 and rows[0].message == "boom"
        ov = dashboard.overview(s, NOW)
    assert ov.open_incidents == 1 and ov.overdue_orders == 2 and ov.hazards_listed == 3
    assert ov.open_tasks == 3 and ov.overdue_tasks == 2  # the parent's task has no due date
    assert ov.running_instances == 3
    assert ov.campaigns[0].code == "C-2" and ov.leaders[0].recurrence_count == 3
