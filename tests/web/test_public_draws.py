"""The public draw pages over real HTTP (web/public/draws.py): the list, a draw's page with its inputs and the
server's verification, the downloads (drawn list, verifier for everyone; the population file by the
class-publication setting, else auditors only), and what strangers' requests get (4xx, never a 500)."""
from __future__ import annotations

import subprocess
import sys
from datetime import date

from sqlalchemy import select

from engine.runtime import clock
from engine.supervision import draw as d
from engine.supervision import publication
from engine.supervision.draw import public
from engine.supervision.registry_models import CheckItem
from scoring.models import Entity
from web import create_app


def publish_sample_draw(s, code: str = "PUB-DRAW-1") -> int:
    """A campaign over the demo registry, drawn, with its plan notice published: a public draw."""
    item = s.scalars(select(CheckItem.code).order_by(CheckItem.code)).first()
    sections = sorted(set(s.scalars(select(Entity.industry_section).distinct())))
    c = d.create_campaign(s, code=code, name="公开核验样例", departments=["market"], items=[item],
                          window_start=date(2030, 3, 1), window_end=date(2030, 6, 30), created_by="planner",
                          now=clock.now(), ratios={"A": "0.05", "B": "0.1", "C": "0.3", "D": "0.5"},
                          target_industries=sections, lookback_months=0)
    d.approve_campaign(s, c.id, approver="head", now=clock.now(), public_value="2030-03-01 双色球 05 11 18")
    d.draw_campaign(s, c.id, clock.now())
    publication.record(s, kind="plan", title=f"抽查计划（{code}）", payload={"campaign": code}, now=clock.now(),
                       ref=f"campaign:{c.id}", publish=True)
    public.forget_verifications()
    return c.id


def test_draw_pages_show_inputs_and_verification(web_env, http):
    with web_env.tx() as s:
        cid = publish_sample_draw(s)
    anon = http(None)
    r = anon.get("/public/draws/")
    assert r.status_code == 200 and "PUB-DRAW-1" in r.text and "随机抽取结果核验" in r.text
    r = anon.get(f"/public/draws/{cid}")
    assert r.status_code == 200
    assert 'id="verified"' in r.text and "核验通过" in r.text
    with web_env.tx() as s:
        info = public.public_draw(s, cid)
    for value in (info["seed"], info["population_hash"], "regflow-draw/1", info["public_value"]):
        assert value in r.text
    # classes are not public by default: no class column, no count per class
    assert "<th>风险等级</th>" not in r.text and 'data-field="by_stratum"' not in r.text
    j = anon.get(f"/public/draws/{cid}.json").json()
    assert j["verification"]["ok"] and j["seed"] == info["seed"] and "by_stratum" not in j


def test_anyone_verifies_offline_with_the_downloads_when_classes_are_public(web_env, http, live, tmp_path):
    with web_env.tx() as s:
        cid = publish_sample_draw(s)
        info = public.public_draw(s, cid)
    anon = http(None)
    # the default setting: the population file is for auditors; an anonymous visitor is asked to sign in
    r = anon.get(f"/public/draws/{cid}/population.csv")
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"]
    assert http("officer").get(f"/public/draws/{cid}/population.csv").status_code == 403
    assert http("auditor").get(f"/public/draws/{cid}/population.csv").status_code == 200
    # with classes public the file is public too (another app on the same database)
    app = create_app({"TESTING": True}, settings=web_env.settings.with_overrides(publish_risk_class=True))
    client = app.test_client()
    pop = client.get(f"/public/draws/{cid}/population.csv")
    assert pop.status_code == 200 and pop.headers["Content-Disposition"] == 'attachment; filename="population.csv"'
    page = client.get(f"/public/draws/{cid}").get_data(as_text=True)
    assert "<th>风险等级</th>" in page and 'data-field="by_stratum"' in page
    (tmp_path / "population.csv").write_bytes(pop.data)
    (tmp_path / "drawn.txt").write_bytes(anon.get(f"/public/draws/{cid}/drawn.txt").content)
    (tmp_path / "verifier.py").write_bytes(anon.get("/public/draws/verifier.py").content)
    ratios = ",".join(f"{k}={v}" for k, v in info["ratios"].items())
    run = subprocess.run([sys.executable, "verifier.py", "--population", "population.csv", "--code", info["code"],
                          "--public-value", info["public_value"], "--ratios", ratios, "--control-share",
                          info["control_share"], "--drawn", "drawn.txt", "--population-hash",
                          info["population_hash"], "--seed", info["seed"]],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED" in run.stdout


def test_strangers_get_4xx_never_500(web_env, http):
    with web_env.tx() as s:
        cid = publish_sample_draw(s)
        hidden = d.create_campaign(s, code="PUB-DRAW-HIDDEN", name="未公示", departments=["market"],
                                   items=[s.scalars(select(CheckItem.code)).first()], window_start=date(2030, 3, 1),
                                   window_end=date(2030, 6, 30), created_by="planner", now=clock.now()).id
    anon = http(None)
    for path in ("/public/draws/999999", "/public/draws/999999.json", "/public/draws/999999/drawn.txt",
                 f"/public/draws/{hidden}", "/public/draws/99999999999999999999999", "/public/draws/-1",
                 "/public/draws/abc", f"/public/draws/{cid}/population.txt", "/public/draws/0/drawn.txt"):
        r = anon.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    for query in ("page=0", "page=abc", "page=99999999999999999999", "page=" + "9" * 5000):
        r = anon.get(f"/public/draws/{cid}?{query}")
        assert 400 <= r.status_code < 500 or r.status_code == 200, (query, r.status_code)
        assert r.status_code != 500
    r = anon.get(f"/public/draws/{cid}?page=3")
    assert r.status_code == 200 and 'id="next-page"' not in r.text
    assert "没有编号为 999999 的已公示抽取结果" in anon.get("/public/draws/999999").text
