"""The supervisors' area over real HTTP: the dashboard shows the registry, task and incident numbers and
the chart data; the hazard registry with its filters and overdue orders; campaigns with progress and
hit rates; open incidents with retry (supervisor only, audited; 403 for an auditor with nothing changed).
A supervisor with a jurisdiction sees only its districts' rows on every page, and gets 403 (nothing
written) closing another district's stranded order or case or retrying its incident."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

import tests.support.services  # noqa: F401  (registers test.record for the failing service task)
from engine.bootstrap import build_runtime
from engine.config import load_settings
from engine.demo import start_demo_campaigns
from engine.runtime import clock
from engine.runtime.deploy import deploy
from engine.runtime.models import AuditEvent, HumanTask, Incident
from engine.runtime.users import set_jurisdiction
from engine.supervision import dashboard, enforcement
from engine.supervision import hazards as hazard_registry
from engine.supervision.campaign_models import Campaign, DrawResult
from engine.supervision.loop_models import EnforcementCase, EntityHazardStats, Hazard, Publication, RectificationOrder
from scoring.models import Entity
from tests.conftest import DATA
from tests.web.conftest import sign_in


def _hazards(web_env) -> list[str]:
    """Three listed hazards (two medium, one high) on two demo entities, one removed; an overdue order."""
    now = clock.now()
    with web_env.tx() as s:
        a, b = s.scalars(select(Entity).order_by(Entity.id).limit(2)).all()
        for i, (e, grade, status) in enumerate([(a, "medium", "open"), (a, "medium", "open"), (b, "high", "open"),
                                                (b, "low", "removed")]):
            s.add(Hazard(uscc=e.uscc, entity_id=e.id, item_code="item-1", clause=f"clause-{i}", grade=grade,
                         source_instance_id=900 + i, source_task="t", seq=0, found_at=now - timedelta(days=i),
                         status=status, history=[]))
        s.add(EntityHazardStats(uscc=a.uscc, entity_id=a.id, recurrence_count=4, hazards_total=6,
                                first_recorded_at=now - timedelta(days=400), last_recorded_at=now))
        s.add(RectificationOrder(instance_id=901, task_guid="t", uscc=a.uscc, hazard_ids=[], days=10,
                                 deadline=now - timedelta(days=3), deadline_day=(now - timedelta(days=3)).date(),
                                 issued_at=now - timedelta(days=20), status="served", history=[]))
        return [a.uscc, b.uscc, a.name]


def _incident(web_env, key: str | None = None) -> tuple[int, int]:
    """An instance whose service task failed once (no automatic retries): an open incident."""
    return _incidents(web_env, [key])[0]


def _incidents(web_env, keys: list[str | None]) -> list[tuple[int, int]]:
    """One failed instance (its id, its open incident's id) per business key."""
    rt = build_runtime(load_settings(database_url=web_env.url, service_retries=0))
    files = {"service.bpmn": (DATA / "engine" / "service.bpmn").read_text(encoding="utf-8")}
    with web_env.tx() as s:
        deploy(rt, s, files, "designer")
    out = []
    for key in keys:
        with web_env.tx() as s:
            iid = rt.start(s, "service_flow", business_key=key,
                           data={"label": "web-retry", "mode": "flaky:1"}).instance.id
        with web_env.tx() as s:
            ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")).one()
            failed = rt.complete_task(s, ht.id, "officer", {})
            assert failed.failure and failed.failure.get("incident_id")
            out.append((iid, failed.failure["incident_id"]))
    return out


def test_dashboard_renders_the_numbers(http, web_env):
    _hazards(web_env)
    _incident(web_env)
    r = http("supervisor").get("/supervise/")
    assert r.status_code == 200
    html = r.text
    assert re.search(r'id="kpi-hazards"><div class="value">3<', html)
    assert re.search(r'id="kpi-overdue-orders"><div class="value">1<', html)
    assert re.search(r'id="kpi-incidents"><div class="value"><a [^>]*>1</a>', html)
    medium = re.search(r'<tr id="grade-medium">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', medium) == ["2", "0", "2"]
    assert "监督总览" in html and "各风险等级问题发现率与对照组对比" in html
    throughput = json.loads(re.search(r'<script type="application/json" id="chart-throughput">(.*?)</script>',
                                      html, re.S).group(1))
    assert len(throughput["labels"]) == 30 and sum(throughput["datasets"][0]["data"]) >= 1  # the officer's task
    assert "dist/charts.js" in html


def test_hazard_registry_page(http, web_env):
    a, b, name = _hazards(web_env)
    sup = http("supervisor")
    r = sup.get("/supervise/hazards")
    assert r.status_code == 200 and "共 3 条隐患" in r.text and 'id="overdue-orders"' in r.text
    assert re.search(r'<tr id="order-\d+">', r.text) and name in r.text
    r = sup.get("/supervise/hazards?grade=high")
    assert "共 1 条隐患" in r.text and b in r.text
    assert "共 4 条隐患" in sup.get("/supervise/hazards?status=all").text
    assert "共 1 条隐患" in sup.get("/supervise/hazards?status=removed").text
    assert sup.get("/supervise/hazards?grade=huge").status_code == 400
    assert sup.get("/supervise/hazards?page=x").status_code == 400


def test_hazard_registry_lists_what_a_terminated_process_left(http, web_env):
    """An order and a case whose process an administrator terminated: counted, listed with the reason and
    their hazards, in Chinese by default and in English on request."""
    rt = build_runtime(load_settings(database_url=web_env.url))
    files = {"timers.bpmn": (DATA / "engine" / "timers.bpmn").read_text(encoding="utf-8")}
    now = clock.now()
    with web_env.tx() as s:
        deploy(rt, s, files, "designer")
        iid = rt.start(s, "timers", data={"deadline": "P30D"}).instance.id
        e = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        (h,) = hazard_registry.record_hazards(
            s, uscc=e.uscc, entity_id=e.id, grade="medium", instance_id=iid, task_key="record", now=now,
            findings=[{"item_code": "AR-01", "clause": "AR-01", "description": "未公示"}])
        order = hazard_registry.issue_order(s, uscc=e.uscc, hazard_ids=[h.id], days=10, instance_id=iid,
                                            task_key="order", now=now)
        case = enforcement.open_case(s, uscc=e.uscc, lead_source="inspection", instance_id=iid, task_key="case",
                                     now=now, hazard_ids=[h.id])
        order_id, case_id, hazard_id = order.id, case.id, h.id
    with web_env.tx() as s:
        rt.terminate(s, iid, "admin", "重复立项")
    sup = http("supervisor")
    html = sup.get("/supervise/hazards").text
    assert re.search(r'id="kpi-stranded"><div class="value">2<', html)
    assert "流程已终止的责令改正和案件" in html and "admin: 重复立项" in html
    order_row = re.search(rf'<tr id="stranded-order-{order_id}">(.*?)</tr>', html, re.S).group(1)
    case_row = re.search(rf'<tr id="stranded-case-{case_id}">(.*?)</tr>', html, re.S).group(1)
    assert f"#{hazard_id}" in order_row and "案件线索" in case_row and "责令改正" in order_row
    assert f'<a href="/audit/instances/{iid}">' in order_row and f'<a href="/audit/instances/{iid}">' in case_row
    english = sup.get("/supervise/hazards?lang=en").text
    assert "Orders and cases without a running process" in english and "Case lead" in english

    # an auditor may not close; a supervisor without a reason is refused; then the case, then the order
    assert http("auditor").post(f"/supervise/stranded/order/{order_id}/close", data={"reason": "x"}).status_code == 403
    r = sup.post(f"/supervise/stranded/order/{order_id}/close", data={"reason": ""})
    assert r.status_code == 303 and r.headers["Location"].endswith("/supervise/hazards#stranded")
    assert "未关闭" in sup.get("/supervise/hazards").text
    with web_env.tx() as s:
        assert s.get(RectificationOrder, order_id).status == "issued"
    r = sup.post(f"/supervise/stranded/case/{case_id}/close", data={"reason": "重复立项，线索已并入其他案件"})
    assert r.status_code == 303
    r = sup.post(f"/supervise/stranded/order/{order_id}/close", data={"reason": "已线下整改并经复查"})
    html = sup.get("/supervise/hazards").text
    assert f"整改通知 {order_id} 已关闭" in html and f"#{hazard_id}" in html
    assert f'id="stranded-order-{order_id}"' not in html and 'id="kpi-stranded"><div class="value">0<' in html
    with web_env.tx() as s:
        assert s.get(Hazard, hazard_id).status == "closed_other"
        assert s.get(Hazard, hazard_id).closed_reason == "已线下整改并经复查"
        assert s.get(RectificationOrder, order_id).status == "closed_other"
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind.in_(("stranded_order_closed", "stranded_case_terminated")))) == 2


def test_campaigns_page(http, web_env):
    now = clock.now()
    with web_env.tx() as s:
        c = Campaign(code="WEB-C1", name="网页测试抽查", departments=["amr"], items=["i1"],
                     window_start=date(2026, 1, 1), window_end=date(2026, 12, 31), ratios={"A": "0.01"},
                     control_share="0.1", created_by="planner", created_at=now, status="published")
        s.add(c)
        s.flush()
        ents = s.scalars(select(Entity).order_by(Entity.id).limit(3)).all()
        for rank, (e, stratum) in enumerate(zip(ents, ["D", "D", "control"]), 1):
            s.add(DrawResult(campaign_id=c.id, entity_id=e.id, uscc=e.uscc, stratum=stratum, risk_class="D",
                             key_hex="0" * 64, rank=rank))
            s.add(Publication(kind="result", uscc=e.uscc, ref=f"campaign:{c.id}", title="r", event_at=now, due_by=now,
                              payload={"stratum": stratum, "risk_class": "D",
                                       "result_code": "result_A" if rank == 1 else "result_1"},
                              source_instance_id=800 + rank, source_task="t", created_at=now))
        cid = c.id
    sup = http("supervisor")
    r = sup.get("/supervise/campaigns")
    assert r.status_code == 200
    row = re.search(rf'<tr id="campaign-{cid}">(.*?)</tr>', r.text, re.S).group(1)
    assert "网页测试抽查" in row and '<td class="num" title="control 1 D 2 ">3</td>' in row  # drawn, by stratum
    d = re.search(r'<tr id="hit-D">(.*?)</tr>', sup.get(f"/supervise/campaigns?campaign={cid}").text, re.S).group(1)
    assert "50.0%" in d and "0.0%" in d
    assert sup.get("/supervise/campaigns?campaign=abc").status_code == 400


def test_campaigns_page_lists_plans_in_preparation(http, web_env):
    """The demo's second campaign waits at its approval: listed with its plan name, the approval task and
    its group until the approver approves; the first campaign (plan published) is not."""
    out = start_demo_campaigns(web_env.runtime, web_env.factory, web_env.settings)
    waiting, launched = out["awaiting_approval"], out["campaign_instances"][0]
    sup = http("supervisor")
    page = sup.get("/supervise/campaigns").text
    row = re.search(rf'<tr id="plan-{waiting}">(.*?)</tr>', page, re.S).group(1)
    assert "演示抽查：待审批计划 (demo)" in row and "DEMO-CAMPAIGN-2" in row
    assert "审批抽查计划（公开随机数）" in row and "approvers" in row
    assert f'href="/audit/instances/{waiting}"' in row and re.search(r'href="/inbox/tasks/\d+"', row)
    assert f'id="plan-{launched}"' not in page
    assert "Plan approval" not in row and "Approve the plan" in sup.get("/supervise/campaigns?lang=en").text
    assert re.search(r'id="plans-link">1 个待定抽查计划<', sup.get("/supervise/").text)

    with web_env.tx() as s:
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == waiting, HumanTask.status == "open")).one()
        web_env.runtime.complete_task(s, ht.id, "approver", {
            "decision": "approve", "public_random_value": "01 02 03", "public_random_source": "test",
            "notice_date": clock.now().date().isoformat()})
    with web_env.tx() as s:
        assert dashboard.plans_in_preparation(s) == []
    assert f'id="plan-{waiting}"' not in sup.get("/supervise/campaigns").text
    assert "没有待定的抽查计划。" in sup.get("/supervise/campaigns").text


def test_supervisor_retries_an_incident(http, web_env):
    iid, incident_id = _incident(web_env)
    sup = http("supervisor")
    r = sup.get("/supervise/incidents")
    assert r.status_code == 200 and f'id="incident-{incident_id}"' in r.text and "flaky backend" in r.text
    r = sup.post(f"/supervise/incidents/{incident_id}/retry", {})
    assert r.status_code == 303 and r.headers["Location"].endswith("/supervise/incidents")
    with web_env.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc.status == "resolved" and inc.resolved_by == "supervisor"
        open_tasks = s.scalars(select(HumanTask.bpmn_id).where(HumanTask.instance_id == iid,
                                                               HumanTask.status == "open")).all()
        assert open_tasks == ["done"]
        retried = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                     AuditEvent.kind == "incident_retried")).one()
        assert retried.actor == "supervisor"
    page = sup.get("/supervise/incidents").text
    assert "故障 %d 已重试" % incident_id in page and f'id="incident-{incident_id}"' not in page
    # a second retry: a clear message, nothing changed
    r = sup.post(f"/supervise/incidents/{incident_id}/retry", {})
    assert r.status_code == 303 and "未能重试" in sup.get("/supervise/incidents").text


def test_auditor_may_not_retry(http, web_env):
    iid, incident_id = _incident(web_env)
    with web_env.tx() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == iid))
    auditor = http("auditor")
    assert auditor.post(f"/supervise/incidents/{incident_id}/retry", {}).status_code == 403
    assert auditor.get("/supervise/incidents").status_code == 403
    with web_env.tx() as s:
        assert s.get(Incident, incident_id).status == "open"
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == iid)) == before


@pytest.mark.parametrize("path", ["/supervise/", "/supervise/hazards", "/supervise/campaigns", "/supervise/incidents"])
def test_supervisor_only(http, path):
    assert http("supervisor").get(path).status_code == 200
    for role in ("auditor", "officer", "designer"):
        assert http(role).get(path).status_code == 403, role
    assert http().get(path).status_code == 302


def test_retry_needs_the_csrf_token(http, web_env):
    _iid, incident_id = _incident(web_env)
    sup = http("supervisor")
    r = sup.post(f"/supervise/incidents/{incident_id}/retry", {"csrf_token": "forged"})
    assert r.status_code == 400
    with web_env.tx() as s:
        assert s.get(Incident, incident_id).status == "open"


def test_browser_dashboard_draws_charts(page, web_env):
    _hazards(web_env)
    sign_in(page, "supervisor")
    page.goto("/supervise/")
    page.wait_for_selector('canvas[data-chart="chart-throughput"][data-ready="1"]')
    page.wait_for_selector('canvas[data-chart="chart-overdue"][data-ready="1"]')
    assert page.locator("#kpi-hazards .value").inner_text() == "3"


# ------------------------------------------------------------------------------------------ jurisdiction
SUPERVISED = "410103"


@pytest.fixture
def two_districts(web_env) -> dict:
    """One demo entity in SUPERVISED ("in") and one elsewhere ("out"), each with: a listed hazard (in: high,
    out: medium) and an order for it from one instance an administrator then terminated (stranded), an
    overdue order, an incident, a drawn entity and a recorded result in one campaign; the out entity also
    has a stranded case. Plus an incident of an instance without an entity (city-wide)."""
    rt = build_runtime(load_settings(database_url=web_env.url))
    now = clock.now()
    out: dict = {}
    with web_env.tx() as s:
        first = select(Entity).order_by(Entity.id).limit(1)
        ents = {"in": s.scalars(first.where(Entity.district == SUPERVISED)).one(),
                "out": s.scalars(first.where(Entity.district != SUPERVISED)).one()}
        deploy(rt, s, {"timers.bpmn": (DATA / "engine" / "timers.bpmn").read_text(encoding="utf-8")}, "designer")
        iid = rt.start(s, "timers", data={"deadline": "P30D"}).instance.id
        c = Campaign(code="WEB-J1", name="辖区测试抽查", departments=["amr"], items=["i1"],
                     window_start=date(2026, 1, 1), window_end=date(2026, 12, 31), ratios={"A": "0.01"},
                     control_share="0.1", created_by="planner", created_at=now, status="published")
        s.add(c)
        s.flush()
        out["campaign"] = c.id
        for rank, (tag, grade, stratum, code) in enumerate([("in", "high", "D", "result_A"),
                                                            ("out", "medium", "control", "result_1")], 1):
            e = ents[tag]
            (h,) = hazard_registry.record_hazards(
                s, uscc=e.uscc, entity_id=e.id, grade=grade, instance_id=iid, task_key=f"record-{tag}", now=now,
                findings=[{"item_code": "AR-01", "clause": f"AR-{tag}", "description": "未公示"}])
            order = hazard_registry.issue_order(s, uscc=e.uscc, hazard_ids=[h.id], days=10, instance_id=iid,
                                                task_key=f"order-{tag}", now=now)
            late = RectificationOrder(instance_id=950 + rank, task_guid="t", uscc=e.uscc, hazard_ids=[], days=10,
                                      deadline=now - timedelta(days=3), deadline_day=(now - timedelta(days=3)).date(),
                                      issued_at=now - timedelta(days=20), status="served", history=[])
            s.add(late)
            s.add(DrawResult(campaign_id=c.id, entity_id=e.id, uscc=e.uscc, stratum=stratum, risk_class="D",
                             key_hex="0" * 64, rank=rank))
            s.add(Publication(kind="result", uscc=e.uscc, ref=f"campaign:{c.id}", title="r", event_at=now, due_by=now,
                              payload={"stratum": stratum, "risk_class": "D", "result_code": code},
                              source_instance_id=960 + rank, source_task="t", created_at=now))
            s.flush()
            out[tag] = {"uscc": e.uscc, "name": e.name, "district": e.district, "hazard": h.id, "stranded": order.id,
                        "overdue": late.id}
        case = enforcement.open_case(s, uscc=ents["out"].uscc, lead_source="inspection", instance_id=iid,
                                     task_key="case", now=now, hazard_ids=[out["out"]["hazard"]])
        out["out"]["case"] = case.id
    with web_env.tx() as s:
        rt.terminate(s, iid, "admin", "重复立项")
    (_i, out["in"]["incident"]), (_o, out["out"]["incident"]), (_c, out["city_incident"]) = _incidents(
        web_env, [out["in"]["uscc"], out["out"]["uscc"], None])
    return out


def _limit_supervisor(web_env, districts) -> None:
    with web_env.tx() as s:
        set_jurisdiction(s, "supervisor", districts, actor="admin")


def _row(html: str, row_id: str) -> str:
    return re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S).group(1)


def _cells(html: str, row_id: str) -> list[str]:
    """The whole numbers in the row's numeric cells."""
    return re.findall(r'<td class="num">(\d+)</td>', _row(html, row_id))


def _kpi(html: str, name: str) -> str:
    return re.search(rf'id="kpi-{name}"><div class="value">(?:<a [^>]*>)?(\d+)<', html).group(1)


def test_a_supervisor_with_a_jurisdiction_sees_only_its_districts(http, web_env, two_districts):
    inside, outside = two_districts["in"], two_districts["out"]
    sup = http("supervisor")
    # without a jurisdiction: both entities, and the city-wide incident
    html = sup.get("/supervise/").text
    assert (_kpi(html, "hazards"), _kpi(html, "overdue-orders"), _kpi(html, "incidents")) == ("2", "2", "3")
    html = sup.get("/supervise/hazards").text
    assert outside["uscc"] in html and _kpi(html, "stranded") == "3" and 'id="jurisdiction-note"' not in html

    _limit_supervisor(web_env, [SUPERVISED])
    html = sup.get("/supervise/").text
    assert (_kpi(html, "hazards"), _kpi(html, "overdue-orders"), _kpi(html, "incidents")) == ("1", "1", "1")
    assert _cells(html, "grade-high") == ["1", "0", "1"] and _cells(html, "grade-medium") == ["0", "0", "0"]
    assert inside["uscc"] in html and outside["uscc"] not in html  # recurrence leaders
    assert re.search(r'id="jurisdiction-note">管辖范围: 410103<', html)

    html = sup.get("/supervise/hazards").text
    assert "共 1 条隐患" in html and f'id="hazard-{inside["hazard"]}"' in html
    assert f'id="order-{inside["overdue"]}"' in html and f'id="stranded-order-{inside["stranded"]}"' in html
    assert _kpi(html, "overdue-orders") == "1" and _kpi(html, "stranded") == "1"
    assert f'id="hazard-{outside["hazard"]}"' not in html and f'id="order-{outside["overdue"]}"' not in html
    assert f'id="stranded-order-{outside["stranded"]}"' not in html
    assert f'id="stranded-case-{outside["case"]}"' not in html
    assert outside["uscc"] not in html and outside["name"] not in html
    html = sup.get("/supervise/hazards", params={"status": "all", "uscc": outside["uscc"]}).text
    assert "共 0 条隐患" in html and f'id="hazard-{outside["hazard"]}"' not in html

    html = sup.get("/supervise/campaigns", params={"campaign": two_districts["campaign"]}).text
    row = _row(html, f"campaign-{two_districts['campaign']}")
    assert '<td class="num" title="D 1 ">1</td>' in row  # the control draw is in another district
    assert _cells(html, "hit-D") == ["1", "0"] and "100.0%" in _row(html, "hit-D")
    assert _cells(html, "hit-control") == ["0"]

    html = sup.get("/supervise/incidents").text
    assert "共 1 个未处理的故障" in html and f'id="incident-{inside["incident"]}"' in html
    assert f'id="incident-{outside["incident"]}"' not in html
    assert f'id="incident-{two_districts["city_incident"]}"' not in html

    # the other entity's district: its rows, not these
    _limit_supervisor(web_env, [outside["district"]])
    html = sup.get("/supervise/hazards").text
    assert f'id="hazard-{outside["hazard"]}"' in html and f'id="stranded-case-{outside["case"]}"' in html
    assert f'id="stranded-order-{outside["stranded"]}"' in html
    assert inside["uscc"] not in html and f'管辖范围: {outside["district"]}<' in html


def _state(web_env, two_districts) -> tuple:
    o = two_districts["out"]
    with web_env.tx() as s:
        return (s.get(RectificationOrder, o["stranded"]).status, s.get(Hazard, o["hazard"]).status,
                s.get(EnforcementCase, o["case"]).status, s.get(Incident, o["incident"]).status,
                s.get(Incident, two_districts["city_incident"]).status,
                s.scalar(select(func.count()).select_from(AuditEvent)))


def test_a_supervisor_may_not_act_outside_the_jurisdiction(http, web_env, two_districts):
    inside, outside = two_districts["in"], two_districts["out"]
    _limit_supervisor(web_env, [SUPERVISED])
    sup = http("supervisor")  # signing in writes an audit event: count after it
    before = _state(web_env, two_districts)
    assert before[:5] == ("issued", "open", "lead", "open", "open")
    r = sup.post(f"/supervise/stranded/order/{outside['stranded']}/close", data={"reason": "越权关闭"})
    assert r.status_code == 403 and f"整改通知 {outside['stranded']} 涉及辖区" in r.text
    assert "不在 supervisor 的管辖范围内" in r.text
    r = sup.post(f"/supervise/stranded/case/{outside['case']}/close", data={"reason": "越权终止"})
    assert r.status_code == 403 and f"案件 {outside['case']} 涉及辖区" in r.text
    r = sup.post(f"/supervise/incidents/{outside['incident']}/retry", {})
    assert r.status_code == 403 and "不在 supervisor 的管辖范围内" in r.text  # the command's policy decides
    assert sup.post(f"/supervise/incidents/{two_districts['city_incident']}/retry", {}).status_code == 403
    assert _state(web_env, two_districts) == before  # nothing written, not even an audit event
    assert "未关闭" not in sup.get("/supervise/hazards").text

    # within the jurisdiction the same action goes through
    r = sup.post(f"/supervise/stranded/order/{inside['stranded']}/close", data={"reason": "已线下整改并经复查"})
    assert r.status_code == 303
    with web_env.tx() as s:
        assert s.get(RectificationOrder, inside["stranded"]).status == "closed_other"
        assert s.get(Hazard, inside["hazard"]).status == "closed_other"
    assert _state(web_env, two_districts)[:5] == before[:5]
    # without a jurisdiction the other district's order can be closed
    _limit_supervisor(web_env, [])
    r = sup.post(f"/supervise/stranded/order/{outside['stranded']}/close", data={"reason": "已线下整改并经复查"})
    assert r.status_code == 303
    with web_env.tx() as s:
        assert s.get(RectificationOrder, outside["stranded"]).status == "closed_other"
