"""Personal data sent into what the public sees (issue 17, finding 5), over real HTTP without sign-in: a
campaign name naming a contact (run through the campaign process) is masked in the feed, the JSON feed and
the notice's page; a withdrawal note is masked on the 410 page; notices carry only their public fields (never
the control stratum, an entity's stratum, the path, internal ids; the risk class only with
REGFLOW_PUBLISH_RISK_CLASS=1)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from engine.demo import ITEMS
from engine.runtime import clock
from engine.runtime.models import HumanTask
from engine.supervision import publication
from engine.supervision.calendar import SHANGHAI
from engine.supervision.loop_models import Publication
from scoring.models import Entity
from web import create_app

#: formats the masking of issue 16 missed (the label 法人代表, +86 without a space, an ID number with hyphens)
CAMPAIGN_NAME = ("2026年第四季度食品抽查（法人代表王小明，电话 +8613912345678，身份证 410102-19851212-0021，"
                 "邮箱 wangxm@example.gov.cn）")
RAW = ("王小明", "13912345678", "1234567", "19851212", "wangxm@")
NOTE = "当事人张三（身份证410102199001011234，电话13812345678…）复议撤销"
#: what entity_inspection.bpmn publishes for a result
RESULT_PAYLOAD = {"result_code": "result_1", "outcome": "未发现问题", "path": "heavy", "risk_class": "D",
                  "stratum": "control", "campaign_id": 7, "entity_id": 42, "inspection_date": "2026-10-20",
                  "findings_count": 0, "joint_campaign_ids": [7, 8]}
NEVER_PUBLIC = ("path", "stratum", "campaign_id", "entity_id", "joint_campaign_ids", "control", "ref")


def _task(session, instance_id: int, bpmn_id: str) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id,
                                                   HumanTask.status == "open")).one()


@pytest.fixture
def campaign(web_env):
    """A campaign named with a contact's name, phone, ID number and e-mail, run through its plan and
    approval: the process publishes its plan."""
    rt = web_env.runtime
    today = clock.now().astimezone(SHANGHAI).date()
    plan = {"name": CAMPAIGN_NAME, "year": today.year, "lead_department": "amr", "joint_check": False,
            "items": [{"item_code": c, "item_name": n, "department": d, "method": m} for c, n, d, m in ITEMS[:1]],
            "jurisdiction": "410100", "window_start": (today + timedelta(days=30)).isoformat(),
            "window_end": (today + timedelta(days=90)).isoformat(), "ratio_a": 0.1, "ratio_b": 0.2, "ratio_c": 1,
            "ratio_d": 3, "control_share": 10, "capacity": 8, "lookback_months": 12}
    with web_env.tx() as s:
        iid = rt.start(s, "inspection_campaign", business_key="HOSTILE-1", actor="planner").instance.id
    with web_env.tx() as s:
        rt.complete_task(s, _task(s, iid, "draft_plan").id, "planner", plan)
    with web_env.tx() as s:
        rt.complete_task(s, _task(s, iid, "approve").id, "approver", {
            "decision": "approve", "public_random_value": "05 12 17 23 29 31 + 08",
            "public_random_source": "福利彩票双色球", "notice_date": today.isoformat()})
    with web_env.tx() as s:
        p = s.scalars(select(Publication).where(Publication.kind == "plan")
                      .order_by(Publication.id.desc())).first()
        assert p is not None and p.published_at is not None
        return p.id


def test_campaign_name_is_masked_everywhere_public(live, campaign):
    feed = requests.get(live + "/public/feed.json?kind=plan")
    assert feed.status_code == 200
    for raw in RAW:
        assert raw not in feed.text, raw
    item = next(i for i in feed.json()["items"] if i["id"] == campaign)
    masked = ("2026年第四季度食品抽查（法人代表王*明，电话 +86139****5678，身份证 410102********0021，"
              "邮箱 w***@example.gov.cn）")
    assert item["payload"]["name"] == masked and item["title"].startswith("抽查计划：" + masked)
    assert not set(item["payload"]) & set(NEVER_PUBLIC) and "ref" not in item
    assert "by_stratum" not in item["payload"]  # counts per risk class: only with the setting on
    for path in ("/public/", f"/public/{campaign}", "/public/?kind=plan"):
        page = requests.get(live + path)
        assert page.status_code == 200
        for raw in RAW:
            assert raw not in page.text, (path, raw)


def test_withdrawal_note_is_masked(live, web_env):
    now = clock.now()
    with web_env.tx() as s:
        uscc = s.scalars(select(Entity.uscc).order_by(Entity.id).limit(1)).one()
        p = publication.record(s, kind="penalty", title="行政处罚决定 豫市监罚〔2026〕9号", uscc=uscc, now=now,
                               publish=True, payload={"fine": 800})
        publication.withdraw(s, p.id, NOTE, now)
        pid = p.id
    r = requests.get(live + f"/public/{pid}")
    assert r.status_code == 410
    assert "当事人张*（身份证410102********1234，电话138****5678…）复议撤销" in r.text
    for raw in ("张三", "410102199001011234", "13812345678"):
        assert raw not in r.text, raw


def test_result_carries_only_public_fields(live, web_env, app):
    now = clock.now()
    with web_env.tx() as s:
        uscc = s.scalars(select(Entity.uscc).order_by(Entity.id).limit(1)).one()
        pid = publication.record(s, kind="result", title=f"抽查检查结果：{uscc}", uscc=uscc, now=now, publish=True,
                                 ref="campaign:7", payload=RESULT_PAYLOAD).id
    item = next(i for i in requests.get(live + "/public/feed.json?kind=result").json()["items"] if i["id"] == pid)
    assert item["payload"] == {"result_code": "result_1", "outcome": "未发现问题", "inspection_date": "2026-10-20",
                               "findings_count": 0}
    page = requests.get(live + f"/public/{pid}").text
    for key in NEVER_PUBLIC + ("risk_class",):
        assert f'data-field="{key}"' not in page, key
    assert "campaign:7" not in page


def test_risk_class_only_with_the_setting(web_env):
    now = clock.now()
    with web_env.tx() as s:
        pid = publication.record(s, kind="result", title="抽查检查结果", now=now, publish=True,
                                 payload=RESULT_PAYLOAD).id
        plan = publication.record(s, kind="plan", title="抽查计划", now=now, publish=True, payload={
            "campaign": "Q4", "by_stratum": {"A": 1, "B": 2, "C": 3, "D": 4}, "control": 2, "total": 12}).id
    on = create_app({"TESTING": True}, settings=web_env.settings.with_overrides(publish_risk_class=True))
    client = on.test_client()
    items = {i["id"]: i for i in client.get("/public/feed.json?limit=200").get_json()["items"]}
    assert items[pid]["payload"]["risk_class"] == "D" and "stratum" not in items[pid]["payload"]
    assert items[plan]["payload"] == {"campaign": "Q4", "by_stratum": {"A": 1, "B": 2, "C": 3, "D": 4}, "total": 12}
    page = client.get(f"/public/{pid}").get_data(as_text=True)
    assert 'data-field="risk_class"' in page and 'data-field="stratum"' not in page


def test_every_public_record_of_the_demo_carries_only_public_fields(live, campaign):
    """Whatever the processes published in the demo database: only the kind's public fields."""
    items = requests.get(live + "/public/feed.json?limit=200").json()["items"]
    assert items
    for item in items:
        assert set(item) == {"id", "kind", "uscc", "title", "payload", "published_at", "url"}
        assert set(item["payload"]) <= set(publication.PUBLIC_FIELDS[item["kind"]]), item
