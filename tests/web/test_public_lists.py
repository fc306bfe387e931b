"""The two lists on the public pages over real HTTP, without sign-in: entries with their reason, basis and dates,
personal data in the free text masked, internal fields (who listed, the causing instance) never shown, removed
entries with their removal date; bad filters are a 400, never a 500."""
from __future__ import annotations

from datetime import datetime

import pytest
import requests
from sqlalchemy import select

from engine.supervision import lists
from engine.supervision.calendar import SHANGHAI
from scoring.models import Entity

RAW_NAME, RAW_PHONE = "张三丰", "13812345678"
T0 = datetime(2026, 5, 6, 9, 30, tzinfo=SHANGHAI)
T1 = datetime(2026, 8, 20, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC: still the 20th in China


@pytest.fixture
def listed(web_env):
    with web_env.tx() as s:
        e1, e2 = s.scalars(select(Entity).where(Entity.abnormal_list.is_(False), Entity.serious_list.is_(False))
                           .order_by(Entity.id).limit(2)).all()
        a, _ = lists.enter(s, list_kind="abnormal", entity_id=e1.id, reason_code="unreachable",
                           reason=f"通过登记的住所无法联系，负责人{RAW_NAME}电话{RAW_PHONE}未接",
                           legal_basis=lists.ABNORMAL_BASIS, now=T0, actor="officer7", instance_id=4242)
        # listed a year before T0: removal on application (credit repair) needs a year of publicity
        b, _ = lists.enter(s, list_kind="serious", entity_id=e2.id, reason_code="heavy_penalty",
                           reason="受到较重行政处罚", legal_basis=lists.SERIOUS_BASIS, now=T0.replace(year=T0.year - 1),
                           actor="officer7")
        lists.remove_entry(s, b, removal_kind="application", reason="信用修复，经审核同意", now=T1, actor="supervisor")
        return {"abnormal": a.id, "serious": b.id, "e1": e1.uscc, "e2": e2.uscc}


def test_the_lists_are_public_and_masked(http, live, listed):
    anon = http()
    r = anon.get("/public/lists")
    assert r.status_code == 200
    assert f'id="entry-{listed["abnormal"]}" data-status="listed"' in r.text
    assert f'id="entry-{listed["serious"]}" data-status="removed"' in r.text
    assert RAW_PHONE not in r.text and RAW_NAME not in r.text
    assert "张*丰" in r.text and "138****5678" in r.text  # masked, not dropped
    assert "《企业信息公示暂行条例》" in r.text and "2026-05-06" in r.text
    assert "2026-08-20" in r.text and "信用修复，经审核同意" in r.text  # removal date in China time
    assert "officer7" not in r.text and "4242" not in r.text  # who listed, the causing instance: internal
    assert "经营异常名录" in r.text and "严重违法失信名单" in r.text  # Chinese by default
    r = anon.get("/public/lists?list=serious")
    assert f'entry-{listed["serious"]}"' in r.text and f'entry-{listed["abnormal"]}"' not in r.text
    r = anon.get(f"/public/lists?entity={listed['e1']}")
    assert f'entry-{listed["abnormal"]}"' in r.text and f'entry-{listed["serious"]}"' not in r.text
    assert 'id="lists-link"' in anon.get("/public/").text


def test_the_lists_as_json(live, listed):
    doc = requests.get(live + "/public/lists.json?list=abnormal").json()
    (item,) = [i for i in doc["items"] if i["id"] == listed["abnormal"]]
    assert set(item) == {"id", "list", "uscc", "reason", "legal_basis", "entered_on", "expires_on", "status",
                         "removal_kind", "removed_on", "removal_reason"}
    assert RAW_PHONE not in item["reason"] and item["entered_on"] == "2026-05-06" and item["removed_on"] is None
    doc = requests.get(live + f"/public/lists.json?entity={listed['e2']}").json()
    assert doc["items"][0]["removed_on"] == "2026-08-20" and doc["items"][0]["removal_kind"] == "application"
    assert doc["items"][0]["expires_on"] == "2028-05-06" and item["expires_on"] is None  # serious: a 3-year term


@pytest.mark.parametrize("query", ["list=grey", "entity=123", "entity=" + "9" * 300, "limit=0", "limit=100000",
                                   "offset=-1", "limit=abc", "page=0", "page=99999999999999999999"])
def test_bad_filters_are_a_clear_400(live, listed, query):
    path = "/public/lists.json" if query.startswith(("limit", "offset")) else "/public/lists"
    r = requests.get(f"{live}{path}?{query}")
    assert r.status_code == 400, (query, r.status_code)
