"""The supervisor's aggregates (engine.supervision.dashboard) on a small hand-built set of rows, on both
backends: hazards by grade, overdue orders, recurrence leaders, campaign progress, hit rate by class
against the control stratum, the daily series and open incidents; each again restricted to districts
(rows of entities elsewhere and rows without a registered entity left out), and the check before a
supervisor acts on one order, case or incident."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from engine import policy
from engine.errors import InvalidInput, NotAllowed
from engine.runtime import clock
from engine.runtime.models import Incident, ProcessInstance
from engine.supervision import dashboard
from engine.supervision.campaign_models import Campaign, DrawResult
from engine.supervision.loop_models import EnforcementCase, EntityHazardStats, Hazard, Publication, RectificationOrder
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


# ------------------------------------------------------------------------------------------ districts
HOME, OTHER = "410102", "410103"  # the world's entities are in HOME
X1, X2 = "91410103MA0000X01A", "91410103MA0000X02B"
GHOST = "91410199MA0000G01C"  # a USCC without a registered entity: city-wide


@pytest.fixture
def split(runtime, db, world):
    """The world plus rows of two entities in OTHER and of an unregistered USCC: a listed hazard each
    (X1 high, GHOST low), recurrence stats, an overdue order each, stranded rows (an order of X1 and one of
    GHOST, a case of the world's first entity), two drawn entities and their results in C-1, children of
    the campaign's instance (X1, GHOST: open, overdue), an instance of X2 completed yesterday, incidents
    (X1's child, GHOST's child, the campaign's instance) and two plans in preparation (one keyed by X1)."""
    with clock.frozen(NOW - timedelta(days=3)), db.tx() as s:
        x1, x2 = add_entity(s, X1, "二七甲", OTHER), add_entity(s, X2, "二七乙", OTHER)
        _hazard(s, X1, "high", "open", 11)
        _hazard(s, GHOST, "low", "open", 12)
        s.add(EntityHazardStats(uscc=X1, recurrence_count=2, hazards_total=2,
                                first_recorded_at=NOW - timedelta(days=90), last_recorded_at=NOW))
        s.add(EntityHazardStats(uscc=GHOST, recurrence_count=9, hazards_total=9,
                                first_recorded_at=NOW - timedelta(days=90), last_recorded_at=NOW))
        for i, (uscc, status, days) in enumerate([(X1, "issued", -1), (GHOST, "served", -4)]):
            deadline = NOW + timedelta(days=days)
            s.add(RectificationOrder(instance_id=3100 + i, task_guid="t", uscc=uscc, hazard_ids=[], days=10,
                                     deadline=deadline, deadline_day=deadline.date(),
                                     issued_at=NOW - timedelta(days=20), status=status, history=[]))
        s.add(DrawResult(campaign_id=world["c1"], entity_id=x1.id, uscc=X1, stratum="A", risk_class="A",
                         key_hex="0" * 64, rank=20))
        s.add(DrawResult(campaign_id=world["c1"], entity_id=x2.id, uscc=X2, stratum="control", risk_class="D",
                         key_hex="0" * 64, rank=21))
        _result(s, world["c1"], X1, "A", "A", "result_A", 11)
        _result(s, world["c1"], X2, "control", "D", "result_1", 12)
        deploy_task_processes(runtime, s, (dashboard.CAMPAIGN_PROCESS, {}))
        x1_child = start_task(runtime, s, "child", key=X1, parent=world["parent"], due=NOW - timedelta(days=2))
        ghost_child = start_task(runtime, s, "child", key=GHOST, parent=world["parent"], due=NOW - timedelta(days=2))
        x2_task = start_task(runtime, s, "child", key=X2).id
        stopped = start_task(runtime, s, "child", key=X1).instance_id
        plan_city = start_task(runtime, s, dashboard.CAMPAIGN_PROCESS, key="PLAN-1").instance_id
        plan_x1 = start_task(runtime, s, dashboard.CAMPAIGN_PROCESS, key=X1).instance_id
        incidents = {}
        for name, iid in (("x1", x1_child.instance_id), ("ghost", ghost_child.instance_id),
                          ("campaign", world["parent"])):
            inc = Incident(instance_id=iid, bpmn_id="work", error_type="RuntimeError", message=f"boom {name}",
                           stack="", attempts=3, status="open", created_at=NOW - timedelta(days=3))
            s.add(inc)
            s.flush()
            incidents[name] = inc.id
    with clock.frozen(NOW - timedelta(days=2)), db.tx() as s:
        runtime.terminate(s, stopped, "sam", "duplicate")
    with clock.frozen(NOW - timedelta(days=2)), db.tx() as s:
        assert s.get(ProcessInstance, stopped).status == "terminated"
        stranded = {}
        for name, uscc in (("x1", X1), ("ghost", GHOST)):
            o = RectificationOrder(instance_id=stopped, task_guid=f"o-{name}", uscc=uscc, hazard_ids=[], days=10,
                                   deadline=NOW + timedelta(days=10), deadline_day=(NOW + timedelta(days=10)).date(),
                                   issued_at=NOW - timedelta(days=3), status="issued", history=[])
            s.add(o)
            s.flush()
            stranded[name] = o.id
        c = EnforcementCase(instance_id=stopped, task_guid="c-home", uscc=world["ents"][0], lead_source="inspection",
                            lead_at=NOW - timedelta(days=3), status="lead", history=[])
        s.add(c)
        s.flush()
        stranded["case"] = c.id
    with clock.frozen(NOW - timedelta(days=1)), db.tx() as s:
        runtime.complete_task(s, x2_task, "alice", {})
    return {**world, "plans": [plan_city, plan_x1], "incidents": incidents, "stranded": stranded,
            "x1_child": x1_child.instance_id}


def test_hazard_figures_by_district(db, split):
    e0, e1 = split["ents"][:2]
    with db.tx() as s:
        every = dashboard.hazards_by_grade(s)
        assert every["high"] == {"open": 1, "rectification_verified": 1, "total": 2}
        assert every["low"]["open"] == 1 and every["medium"]["total"] == 2
        other = dashboard.hazards_by_grade(s, districts=[OTHER])
        assert other["high"] == {"open": 1, "rectification_verified": 0, "total": 1}
        assert other["medium"]["total"] == 0 and other["low"]["total"] == 0  # GHOST is city-wide
        home = dashboard.hazards_by_grade(s, districts=(HOME,))
        assert (home["medium"]["total"], home["high"]["total"], home["low"]["total"]) == (2, 1, 0)
        both = dashboard.hazards_by_grade(s, districts=[HOME, OTHER])
        assert sum(v["total"] for v in both.values()) == 4

        assert dashboard.list_hazards(s, status=None).total == 6
        page = dashboard.list_hazards(s, status=None, districts=[OTHER])
        assert page.total == 1 and [(h.uscc, n) for h, n in page.rows] == [(X1, "二七甲")]
        assert dashboard.list_hazards(s, status=None, districts=[HOME]).total == 4
        assert dashboard.list_hazards(s, uscc=e0, districts=[OTHER]).total == 0
        assert dashboard.list_hazards(s, uscc=e0, districts=[HOME]).total == 2
        assert dashboard.list_hazards(s, uscc=GHOST).total == 1
        assert dashboard.list_hazards(s, uscc=GHOST, districts=[HOME, OTHER]).total == 0

        assert [x.uscc for x in dashboard.recurrence_leaders(s)] == [GHOST, e0, X1, e1]
        leaders = dashboard.recurrence_leaders(s, districts=[OTHER])
        assert [(x.uscc, x.name, x.open_hazards) for x in leaders] == [(X1, "二七甲", 1)]
        assert [x.uscc for x in dashboard.recurrence_leaders(s, districts=[HOME])] == [e0, e1]


def test_orders_and_stranded_by_district(db, split):
    st = split["stranded"]
    with db.tx() as s:
        n, rows = dashboard.overdue_orders(s, NOW)
        assert n == 4 and {r.uscc for r in rows} == {split["ents"][0], X1, GHOST}
        n, rows = dashboard.overdue_orders(s, NOW, districts=[OTHER])
        assert n == 1 and [(r.uscc, r.status) for r in rows] == [(X1, "issued")]
        n, rows = dashboard.overdue_orders(s, NOW, districts=[HOME])
        assert n == 2 and {r.uscc for r in rows} == {split["ents"][0]}
        assert dashboard.overdue_orders(s, NOW, limit=0, districts=["410105"]) == (0, [])

        n, rows = dashboard.stranded(s)
        assert n == 3 and {(r.kind, r.id) for r in rows} == {("order", st["x1"]), ("order", st["ghost"]),
                                                             ("case", st["case"])}
        n, rows = dashboard.stranded(s, districts=[OTHER])
        assert n == 1 and [(r.kind, r.id, r.uscc) for r in rows] == [("order", st["x1"], X1)]
        n, rows = dashboard.stranded(s, districts=[HOME])
        assert n == 1 and [(r.kind, r.id) for r in rows] == [("case", st["case"])]

        names = dashboard.entity_names(s, [split["ents"][0], X1, GHOST])
        assert set(names) == {split["ents"][0], X1} and names[X1] == ("二七甲", OTHER)
        assert dashboard.entity_names(s, [split["ents"][0], X1, GHOST], districts=[OTHER]) == {X1: ("二七甲", OTHER)}


def test_campaigns_and_hit_rates_by_district(db, split):
    with db.tx() as s:
        every = {p.code: p for p in dashboard.campaign_progress(s)}
        other = {p.code: p for p in dashboard.campaign_progress(s, districts=[OTHER])}
        home = {p.code: p for p in dashboard.campaign_progress(s, districts=[HOME])}
        rates = dashboard.hit_rates(s)
        rates_other = dashboard.hit_rates(s, districts=[OTHER])
        rates_home = dashboard.hit_rates(s, campaign_id=split["c1"], districts=[HOME])
    c1 = every["C-1"]
    assert c1.drawn == 10 and c1.drawn_by_stratum["A"] == 2 and c1.drawn_by_stratum["control"] == 4
    assert (c1.started, c1.completed, c1.open) == (5, 1, 4) and c1.instance_id == split["parent"]
    # every campaign is listed; its numbers are those of the districts; its city-wide instance is not linked
    assert set(other) == set(home) == {"C-1", "C-2"}
    o1 = other["C-1"]
    assert (o1.drawn, o1.drawn_by_stratum) == (2, {"A": 1, "control": 1})
    assert (o1.started, o1.completed, o1.open, o1.instance_id) == (1, 0, 1, None)
    assert other["C-2"].drawn == 0
    h1 = home["C-1"]
    assert h1.drawn == 8 and (h1.started, h1.completed, h1.open) == (3, 1, 2) and home["C-2"].drawn == 1

    assert (rates.by_class["A"]["stratum"].n, rates.by_class["A"]["stratum"].hits) == (2, 1)
    assert (rates.control.n, rates.control.hits) == (4, 1)
    a = rates_other.by_class["A"]["stratum"]
    assert (a.n, a.hits) == (1, 1) and rates_other.by_class["D"]["stratum"].n == 0
    assert (rates_other.control.n, rates_other.control.hits) == (1, 0) and rates_other.risk_drawn.n == 1
    # the world's own figures for C-1 (test_hit_rate_by_class_vs_control), without OTHER's results
    assert (rates_home.by_class["A"]["stratum"].n, rates_home.control.n, rates_home.control.hits) == (1, 3, 1)
    assert rates_home.lift("D") == 3.0


def test_tasks_series_incidents_and_plans_by_district(db, split):
    inc = split["incidents"]
    with db.tx() as s:
        n, rows = dashboard.open_incidents(s)
        assert n == 3
        n, rows = dashboard.open_incidents(s, districts=[OTHER])
        assert n == 1 and [r.id for r in rows] == [inc["x1"]]
        assert dashboard.open_incidents(s, districts=[HOME]) == (0, [])  # the campaign's incident is city-wide

        every = dashboard.daily_series(s, NOW, days=7)
        other = dashboard.daily_series(s, NOW, days=7, districts=[OTHER])
        home = dashboard.daily_series(s, NOW, days=7, districts=[HOME])
        assert every.tasks_completed == [0, 0, 0, 0, 0, 2, 0] and every.instances_completed[5] == 2
        assert other.tasks_completed == [0, 0, 0, 0, 0, 1, 0] and other.instances_completed == [0] * 5 + [1, 0]
        assert home.tasks_completed == [0, 0, 0, 0, 0, 1, 0] and home.instances_completed == [0] * 5 + [1, 0]
        assert every.overdue_open == [0, 0, 0, 0, 5, 4, 4]
        assert other.overdue_open == [0, 0, 0, 0, 1, 1, 1]  # X1's child; GHOST's is city-wide
        assert home.overdue_open == [0, 0, 0, 0, 3, 2, 2]

        assert [p.instance_id for p in dashboard.plans_in_preparation(s)] == split["plans"]
        assert [p.instance_id for p in dashboard.plans_in_preparation(s, districts=[OTHER])] == split["plans"][1:]
        assert dashboard.plans_in_preparation(s, districts=[HOME]) == []

        ov = dashboard.overview(s, NOW)
        ov_other = dashboard.overview(s, NOW, districts=[OTHER])
        ov_home = dashboard.overview(s, NOW, districts=[HOME])
    assert (ov.hazards_listed, ov.overdue_orders, ov.open_incidents, ov.open_tasks, ov.overdue_tasks,
            ov.running_instances) == (5, 4, 3, 7, 4, 7)
    assert (ov_other.hazards_listed, ov_other.overdue_orders, ov_other.open_incidents, ov_other.open_tasks,
            ov_other.overdue_tasks, ov_other.running_instances) == (1, 1, 1, 2, 1, 2)
    assert (ov_home.hazards_listed, ov_home.overdue_orders, ov_home.open_incidents, ov_home.open_tasks,
            ov_home.overdue_tasks, ov_home.running_instances) == (3, 2, 0, 2, 2, 2)
    assert [x.uscc for x in ov_other.leaders] == [X1] and ov_other.hit_rates.control.n == 1
    assert {c.code: c.drawn for c in ov_other.campaigns} == {"C-1": 2, "C-2": 0}
    assert ov_other.series.overdue_open[-1] == 1 and ov.series.overdue_open[-1] == 4


def test_supervisors_act_on_stranded_items_of_their_districts(db, split):
    """The policy's rule for the items these pages list (engine.policy.check_stranded): a district-limited
    supervisor acts only on items of entities in their districts; an item about no registered entity is
    city-wide, for supervisors without a restriction."""
    st = split["stranded"]

    def supervisor(*districts):
        return policy.Actor("sup", frozenset({"supervisor"}), jurisdiction=tuple(districts))

    with db.tx() as s:
        uscc = {k: s.get(RectificationOrder, st[k]).uscc for k in ("x1", "ghost")}
        case_uscc = s.get(EnforcementCase, st["case"]).uscc
        policy.check_stranded(s, supervisor(), "order", st["x1"], uscc["x1"])
        policy.check_stranded(s, supervisor(OTHER), "order", st["x1"], uscc["x1"])
        policy.check_stranded(s, supervisor(HOME, OTHER), "case", st["case"], case_uscc)
        policy.check_stranded(s, supervisor(), "order", st["ghost"], uscc["ghost"])
        with pytest.raises(NotAllowed, match=OTHER):
            policy.check_stranded(s, supervisor(HOME), "order", st["x1"], uscc["x1"])
        with pytest.raises(NotAllowed):
            policy.check_stranded(s, supervisor(OTHER), "case", st["case"], case_uscc)
        with pytest.raises(NotAllowed, match="city-wide"):
            policy.check_stranded(s, supervisor(HOME, OTHER), "order", st["ghost"], uscc["ghost"])
        with pytest.raises(NotAllowed, match="supervisor"):
            policy.check_stranded(s, policy.Actor("off", frozenset({"officer"})), "order", st["x1"], uscc["x1"])


def test_publication_deadlines_are_the_supervisors_figure(db):
    """Issue 18: the 20-working-day publication deadline was computed and never watched: not published though
    due, published after it, a withdrawal not done though due — counted, by district."""
    home, other = _uscc(71), _uscc(72)
    with db.tx() as s:
        add_entity(s, home, "本区主体", "410102")
        add_entity(s, other, "外区主体", "410105")

        def pub(i: int, uscc: str, due_days: int, published_days: int | None, withdraw_due_days: int | None = None):
            s.add(Publication(kind="result", uscc=uscc, ref=f"instance:{i}", title="result", payload={},
                              event_at=NOW - timedelta(days=40), due_by=NOW + timedelta(days=due_days),
                              published_at=None if published_days is None else NOW + timedelta(days=published_days),
                              withdraw_due=(None if withdraw_due_days is None
                                            else NOW + timedelta(days=withdraw_due_days)),
                              source_instance_id=3000 + i, source_task="t", created_at=NOW - timedelta(days=40)))
        pub(1, home, -2, None)        # due two days ago, not published: overdue
        pub(2, home, 5, None)         # not due yet
        pub(3, home, -10, -5)         # published five days after its deadline: late
        pub(4, other, -10, -12)       # published in time
        pub(5, other, -10, -12, -1)   # a revoked penalty's withdrawal due yesterday, not done
        pub(6, other, -3, None)       # overdue in the other district
        s.flush()
        every = dashboard.publication_deadlines(s, NOW)
        home_only = dashboard.publication_deadlines(s, NOW, districts=["410102"])
        ov = dashboard.overview(s, NOW, districts=["410105"])
    assert (every.overdue, every.late, every.withdrawal_overdue, every.total) == (2, 1, 1, 4)
    assert (home_only.overdue, home_only.late, home_only.withdrawal_overdue) == (1, 1, 0)
    assert (ov.publications.overdue, ov.publications.late, ov.publications.withdrawal_overdue) == (1, 0, 1)
