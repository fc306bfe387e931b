"""The public notices over real HTTP, without sign-in: the feed and its filters, the detail page, the JSON
feed; personal data of natural persons masked (names, ID-card numbers, mobile numbers) while entity codes
stay; a withdrawn notice disappears from the feed and its page says when and why."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from engine.runtime import clock
from engine.supervision import publication
from engine.supervision.loop_models import Publication
from scoring.models import Entity
from scoring.uscc import org_check_digit, uscc_check_digit
from web.i18n import TIMEZONE

RAW_NAME, RAW_ID, RAW_PHONE = "张三丰", "350102199001011234", "13812345678"


def _valid_uscc_shaped_like_an_id() -> str:
    """A valid USCC of 17 digits + a digit (the shape of an ID-card number)."""
    for n in range(10_000_000, 10_001_000):
        body = str(n)
        first17 = "91410102" + body + org_check_digit(body)
        code = first17 + uscc_check_digit(first17)
        if code.isdigit():
            return code
    raise AssertionError("no all-digit USCC found")


@pytest.fixture
def notices(web_env):
    """A published penalty with personal data, a published plan, an unpublished result, and a penalty
    that is withdrawn — on demo entities."""
    now = clock.now()
    with web_env.tx() as s:
        e1, e2 = s.scalars(select(Entity).order_by(Entity.id).limit(2)).all()
        penalty = publication.record(
            s, kind="penalty", title="行政处罚决定 豫市监罚〔2026〕1号", uscc=e1.uscc, now=now, publish=True,
            payload={"decision_number": "豫市监罚〔2026〕1号", "legal_representative": RAW_NAME, "phone": RAW_PHONE,
                     "note": f"法定代表人：李四，电话 139-8765-4321，身份证 {RAW_ID}", "fine": 5000, "uscc": e1.uscc})
        plan = publication.record(s, kind="plan", title="抽查计划 2026-Q4", now=now - timedelta(days=1),
                                  publish=True, payload={"campaign": "2026-Q4", "total": 40})
        draft = publication.record(s, kind="result", title="未公示的结果", uscc=e2.uscc, now=now,
                                   payload={"result_code": "result_1"})
        revoked = publication.record(s, kind="penalty", title="已撤销的处罚", uscc=e2.uscc, now=now, publish=True,
                                     payload={"fine": 800, "legal_representative": "王五"})
        publication.withdraw(s, revoked.id, "行政复议撤销原处罚决定", now)
        ids = {"penalty": penalty.id, "plan": plan.id, "draft": draft.id, "revoked": revoked.id,
               "e1": e1.uscc, "e2": e2.uscc}
    return ids


def test_feed_is_public_and_filters(http, notices):
    anon = http()
    r = anon.get("/public/")
    assert r.status_code == 200 and 'id="sign-in"' in r.text
    assert f'id="publication-{notices["penalty"]}"' in r.text and f'id="publication-{notices["plan"]}"' in r.text
    assert f'id="publication-{notices["draft"]}"' not in r.text  # not published yet
    assert f'id="publication-{notices["revoked"]}"' not in r.text  # withdrawn
    assert r.text.index(f'publication-{notices["penalty"]}') < r.text.index(f'publication-{notices["plan"]}')
    r = anon.get("/public/?kind=plan")
    assert f'publication-{notices["plan"]}"' in r.text and f'publication-{notices["penalty"]}"' not in r.text
    r = anon.get(f"/public/?entity={notices['e1']}")
    assert f'publication-{notices["penalty"]}"' in r.text and f'publication-{notices["plan"]}"' not in r.text
    assert anon.get("/public/?kind=secret").status_code == 400
    assert anon.get("/public/?entity=123").status_code == 400
    assert anon.get(f"/public/{notices['draft']}").status_code == 404
    assert anon.get("/public/999999").status_code == 404


def test_personal_data_is_masked(http, live, notices):
    r = http().get(f"/public/{notices['penalty']}")
    assert r.status_code == 200
    for raw in (RAW_NAME, RAW_ID, RAW_PHONE, "李四", "8765"):
        assert raw not in r.text, raw
    assert "张*丰" in r.text and "350102********1234" in r.text  # the ID number in the note
    assert "李*" in r.text and "139-****-4321" in r.text
    assert 'data-field="phone"' not in r.text  # not a public field (PUBLIC_FIELDS), not even masked
    assert notices["e1"] in r.text and "5000" in r.text  # the entity and the fine are public
    feed = requests.get(live + "/public/feed.json").json()
    item = next(i for i in feed["items"] if i["id"] == notices["penalty"])
    assert item["payload"]["legal_representative"] == "张*丰" and "phone" not in item["payload"]
    assert "ref" not in item  # internal reference (case id)
    assert item["payload"]["uscc"] == notices["e1"] and item["url"].endswith(f"/public/{notices['penalty']}")
    assert {i["id"] for i in feed["items"]} == {notices["penalty"], notices["plan"]}
    assert requests.get(live + "/public/feed.json?kind=plan&limit=1").json()["items"][0]["id"] == notices["plan"]
    r = requests.get(live + "/public/feed.json?limit=0")
    assert r.status_code == 400 and r.json()["error"]["status"] == 400


def test_rows_written_around_the_service_are_masked_on_the_way_out(http, web_env):
    """A row stored without publication.record (e.g. an import) still shows no personal data."""
    now = clock.now()
    with web_env.tx() as s:
        p = Publication(kind="result", title=f"联系人 {RAW_PHONE}", payload={"contact": "赵六", "id_number": RAW_ID},
                        event_at=now, due_by=now, created_at=now, published_at=now)
        s.add(p)
        s.flush()
        pid = p.id
    r = http().get(f"/public/{pid}")
    assert r.status_code == 200
    assert RAW_PHONE not in r.text and RAW_ID not in r.text and "赵六" not in r.text
    assert "联系人 138****5678" in r.text  # the title is masked
    assert 'data-field="contact"' not in r.text and 'data-field="id_number"' not in r.text  # not public fields


def test_withdrawn_notice_shows_a_note(http, notices):
    r = http().get(f"/public/{notices['revoked']}")
    assert r.status_code == 410
    assert 'id="withdrawn"' in r.text and "撤回：行政复议撤销原处罚决定" in r.text
    assert f"已于 {clock.now().astimezone(TIMEZONE):%Y-%m-%d} 撤回" in r.text
    assert "800" not in r.text and "王" not in r.text.split('id="withdrawn"')[1]
    assert 'id="payload"' not in r.text


def test_mask_cases():
    uscc = _valid_uscc_shaped_like_an_id()
    out = publication.mask({
        "legal_representative": "张三丰", "contact": "王五", "mobile_phone": "13912345678",
        "note": "当事人某某餐饮有限公司，法定代表人：李四，负责人为欧阳娜娜，"
                "电话 +86 138 1234 5678，身份证 11010519491231002X",
        "uscc": uscc, "text": f"统一社会信用代码 {uscc}", "fine": 3000, "flag": True})
    assert out["legal_representative"] == "张*丰" and out["contact"] == "王*" and out["mobile_phone"] == "139****5678"
    assert "当事人某某餐饮有限公司" in out["note"]  # an entity name after a label stays
    assert "法定代表人：李*" in out["note"] and "负责人为欧**娜" in out["note"]
    assert "+86 138-****-5678" in out["note"] and "110105********002X" in out["note"]
    assert out["uscc"] == uscc and uscc in out["text"]  # entity codes are public, even when all digits
    assert out["fine"] == 3000 and out["flag"] is True
    assert publication.mask(out) == out  # masking twice changes nothing
