"""The stratified verifiable draw (engine/supervision/draw/): quotas, control stratum, capacity, replay,
verification, exclusions, joint checks, service operators, CLI and migration."""
from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import zlib
from datetime import date, datetime, timezone
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, update

import engine.service_tasks.draw  # noqa: F401  (registers campaign.*)
from engine.cli.draw import draw as draw_group
from engine.errors import Conflict, InvalidInput
from engine.runtime.models import Deployment, ProcessDefinition, ProcessInstance
from engine.runtime.services import ServiceContext
from engine.runtime.services import registry as ops
from engine.supervision import draw as d
from engine.supervision.campaign_models import Campaign, CampaignExclusion, CampaignPopulation, DrawResult
from engine.supervision.draw import eligibility
from engine.supervision.draw.rawsql import insert_raw
from engine.supervision.loop_models import EnforcementCase
from engine.supervision.registry_models import CheckItem, Department
from scoring.models import Entity
from scoring.uscc import generate_usccs

NOW = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)


def usccs(n: int, seed: int = 0, district: str = "350102") -> list[str]:
    rng = np.random.default_rng(seed)
    return generate_usccs(rng, np.full(n, district), np.full(n, "1")).tolist()


def population(counts: dict[str, int], seed: int = 0) -> d.Population:
    codes = usccs(sum(counts.values()), seed)
    classes = [c for c, n in counts.items() for _ in range(n)]
    return d.Population.build(codes, classes)


# ------------------------------------------------------------------------------------------- pure draw
def test_population_list_and_seed_are_byte_exact():
    pop = d.Population.from_pairs([("91350102MA2Y0000X1", "C"), ("91350102MA2Y00001A", "A")])
    assert pop.csv == b"91350102MA2Y00001A,A\n91350102MA2Y0000X1,C\n"
    assert pop.sha256 == hashlib.sha256(pop.csv).hexdigest()
    seed = d.compute_seed("FZ-2026-01", pop.sha256, "03 11 19 24 27 30 + 07")
    assert seed == hashlib.sha256(f"regflow-draw/1\nFZ-2026-01\n{pop.sha256}\n03 11 19 24 27 30 + 07".encode()).digest()
    out = d.draw_population(pop, "FZ-2026-01", "03 11 19 24 27 30 + 07", control_share="0")
    for r in out.rows:
        assert r.key_hex == hmac.new(seed, r.uscc.encode(), "sha256").hexdigest()
    with pytest.raises(InvalidInput, match="control characters"):
        d.compute_seed("FZ\n2026", pop.sha256, "1")


def test_invalid_population_is_rejected():
    with pytest.raises(InvalidInput, match="duplicate USCC"):
        d.Population.from_pairs([("91350102MA2Y00001A", "A"), ("91350102MA2Y00001A", "B")])
    with pytest.raises(InvalidInput, match="class"):
        d.Population.from_pairs([("91350102MA2Y00001A", "E")])
    with pytest.raises(InvalidInput, match="invalid USCC"):
        d.Population.from_pairs([("9135,0102", "A")])


def test_quotas_use_stochastic_rounding_and_a_minimum_of_one():
    pop = population({"A": 250, "B": 10, "C": 0, "D": 7})
    planned = {c: [] for c in "ABCD"}
    for k in range(400):
        s = d.draw_population(pop, "Q", f"pv-{k}", control_share="0").summary
        for c in "ABCD":
            planned[c].append(s["planned"][c])
        assert s["drawn"] == {**s["planned"], "control": 0}
    assert set(planned["A"]) == {2, 3}  # 2.5
    assert abs(np.mean(planned["A"]) - 2.5) < 0.1  # unbiased: E[n] = ratio * N
    assert set(planned["B"]) == {1}  # 0.4 rounds to 0 or 1, then at least 1
    assert set(planned["C"]) == {0}  # empty stratum
    assert set(planned["D"]) == {2, 3} and abs(np.mean(planned["D"]) - 2.1) < 0.1


def test_tiny_strata_each_get_one_and_a_zero_ratio_gets_none():
    pop = population({"A": 1, "B": 2, "C": 1, "D": 1})
    out = d.draw_population(pop, "T", "x", control_share="0")
    assert out.summary["drawn"] == {"A": 1, "B": 1, "C": 1, "D": 1, "control": 0}
    out = d.draw_population(pop, "T", "x", ratios={"A": 0, "B": "0.04", "C": "0.12", "D": "0.3"}, control_share="0")
    assert out.summary["drawn"]["A"] == 0


def test_short_stratum_is_taken_whole_and_its_remainder_moves_to_the_next_riskier():
    pop = population({"A": 50, "B": 50})
    ratios = {"A": "1", "B": "0.2", "C": "0", "D": "0"}
    s = d.draw_population(pop, "S", "pv", ratios=ratios, control_share="0.25").summary
    in_control_a = s["control"]["by_class"]["A"]
    assert s["planned"] == {"A": 50, "B": 10, "C": 0, "D": 0} and s["control"]["drawn"] == 20
    assert in_control_a > 0
    assert s["drawn"]["A"] == 50 - in_control_a  # all that is left of A
    assert s["carried_in"]["B"] == in_control_a
    assert s["drawn"]["B"] == 10 + in_control_a
    # D has no riskier stratum: what it cannot take is recorded as a shortfall
    pop = population({"D": 10})
    s = d.draw_population(pop, "S", "pv", ratios={"A": 0, "B": 0, "C": 0, "D": 1}, control_share="0.2").summary
    assert s["control"]["drawn"] in (2, 3)
    assert s["drawn"]["D"] == 10 - s["control"]["drawn"] and s["shortfall"]["D"] == s["control"]["drawn"]


def test_capacity_cuts_the_least_risky_strata_first():
    pop = population({"A": 1000, "B": 1000, "C": 1000, "D": 1000})
    free = d.draw_population(pop, "K", "pv").summary
    assert free["planned"] == {"A": 10, "B": 40, "C": 120, "D": 300}
    s = d.draw_population(pop, "K", "pv", capacity=300).summary
    assert s["total"] == 300 and s["control"]["drawn"] == 30
    assert s["drawn"] == {"A": 0, "B": 0, "C": 0, "D": 270, "control": 30}
    assert s["capacity_cut"] == {"A": 10, "B": 40, "C": 120, "D": 30}
    # capacity below the D quota: D keeps everything capacity allows after the control share
    s = d.draw_population(pop, "K", "pv", capacity=100).summary
    assert s["drawn"] == {"A": 0, "B": 0, "C": 0, "D": 90, "control": 10}
    # a capacity that binds only a little cuts A alone
    s = d.draw_population(pop, "K", "pv", capacity=free["total"] - 5).summary
    assert s["total"] == free["total"] - 5 and s["capacity_cut"]["B"] == 0 and s["drawn"]["D"] == 300


def test_control_stratum_is_about_a_tenth_of_draws_and_pure_random():
    pop = population({"A": 5000, "B": 3500, "C": 900, "D": 450}, seed=3)
    out = d.draw_population(pop, "C", "pv")
    s = out.summary
    strata = sum(s["drawn"][c] for c in "ABCD")
    assert abs(Fraction(s["drawn"]["control"], s["total"]) - Fraction(1, 10)) < Fraction(1, 100)
    control = [r for r in out.rows if r.stratum == "control"]
    assert len({r.risk_class for r in control}) >= 3  # drawn across classes, not by class
    assert not {r.uscc for r in control} & {r.uscc for r in out.rows if r.stratum != "control"}
    assert len(out.rows) == len(out.drawn_set()) == strata + len(control)
    # ranks follow the key halves
    for stratum, lo in (("control", 16), ("D", 0)):
        keys = [bytes.fromhex(r.key_hex)[lo:lo + 16] for r in out.rows if r.stratum == stratum]
        assert keys == sorted(keys)


def test_draw_is_deterministic_and_independent_of_input_order():
    counts = {"A": 300, "B": 200, "C": 60, "D": 30}
    pop = population(counts, seed=5)
    shuffled = np.random.default_rng(1).permutation(len(pop.usccs))
    pop2 = d.Population.build(pop.usccs[shuffled].astype("U18"), pop.classes[shuffled].astype("U1"))
    assert pop2.sha256 == pop.sha256
    a = d.draw_population(pop, "D", "pv")
    b = d.draw_population(pop2, "D", "pv")
    assert a.rows == b.rows and a.seed_hex == b.seed_hex
    assert d.Population.from_csv(pop.csv).sha256 == pop.sha256


def test_changing_one_uscc_or_the_public_value_changes_the_result():
    pop = population({"A": 400, "B": 300, "C": 80, "D": 40}, seed=9)
    base = d.draw_population(pop, "FZ-1", "12345")
    codes = pop.usccs.astype("U18").tolist()
    codes[0] = usccs(1, seed=99)[0]  # one entity replaced by another
    other = d.Population.build(codes, pop.classes.astype("U1"))
    changed = d.draw_population(other, "FZ-1", "12345")
    assert other.sha256 != pop.sha256 and changed.seed_hex != base.seed_hex
    assert changed.drawn_set() != base.drawn_set()
    assert d.compare_rows(changed.rows, base.rows)
    pv = d.draw_population(pop, "FZ-1", "12346")
    assert pv.seed_hex != base.seed_hex and pv.drawn_set() != base.drawn_set()


def test_population_order_is_bytewise_for_any_length():
    rng = np.random.default_rng(4)
    chars = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    codes = {"".join(rng.choice(chars, int(n))) for n in rng.integers(1, 19, 3000)}
    codes |= {c[:-1] for c in list(codes)[:300] if len(c) > 1}  # prefixes sort before their extensions
    codes = sorted(codes, key=lambda _: rng.random())
    pop = d.Population.build(codes, ["A"] * len(codes))
    assert pop.usccs.tolist() == sorted(c.encode() for c in codes)
    assert pop.csv == b"".join(c.encode() + b",A\n" for c in sorted(codes))


# ------------------------------------------------------------------------------------------- database
def add_entities(s, codes, classes, *, status=None, industry="F", district="350102", start_id=1):
    rows = [{"id": start_id + i, "uscc": u, "name": f"企业{start_id + i}", "industry_section": industry,
             "district": district, "entity_type": "limited_company", "status": (status or {}).get(i, "active"),
             "risk_class": k} for i, (u, k) in enumerate(zip(codes, classes))]
    s.execute(insert(Entity), rows)
    return [r["id"] for r in rows]


def add_items(s, *specs):
    for dep in sorted({sp[1] for sp in specs}):
        if s.get(Department, dep) is None:
            s.add(Department(code=dep, name=dep))
    s.flush()
    for code, dep, industries in specs:
        s.add(CheckItem(code=code, name=code, legal_basis="basis", department=dep, industries=industries,
                        clauses=[{"code": f"{code}-1", "text": "clause", "basis": "basis"}], ratio=0.05,
                        frequency="annual", method="on_site", updated_at=NOW))
    s.flush()


def make_campaign(s, code="FZ-2026-01", *, items=("MKT-01",), departments=("market",), start=date(2026, 4, 1),
                  end=date(2026, 6, 30), public_value="03 11 19 24 27 30 + 07", approve=True, **kw):
    kw.setdefault("jurisdiction", ["350102"])
    c = d.create_campaign(s, code=code, name=f"抽查 {code}", departments=list(departments), items=list(items),
                          window_start=start, window_end=end, created_by="planner", now=NOW, **kw)
    if approve:
        d.approve_campaign(s, c.id, approver="head", now=NOW, public_value=public_value)
    return c.id


@pytest.fixture
def registry(db):
    """600 entities in industry F, district 350102: classes A–D (some unclassified), a few terminal, plus
    entities outside the scope (another industry, another district)."""
    rng = np.random.default_rng(11)
    codes = usccs(640, seed=11)
    classes = rng.choice(["A", "B", "C", "D", None], size=600, p=[0.45, 0.3, 0.12, 0.08, 0.05]).tolist()
    status = {3: "deregistered", 17: "revoked", 40: "suspended"}
    with db.tx() as s:
        add_items(s, ("MKT-01", "market", ["F"]), ("FOOD-01", "food", ["F", "H"]), ("MKT-02", "market", []))
        add_entities(s, codes[:600], classes, status=status)
        add_entities(s, codes[600:620], ["D"] * 20, industry="C", start_id=601)
        add_entities(s, codes[620:], ["D"] * 20, district="350203", start_id=621)
    return {"codes": codes, "classes": classes, "status": status}


def test_draw_is_written_once_and_verifies(db, registry):
    with db.tx() as s:
        cid = make_campaign(s, jurisdiction=["3501"])
    with db.tx() as s:
        pop = d.freeze_population(s, cid, NOW)
    assert pop.eligible == 600 - 2 and pop.excluded == 2  # the suspended entity stays eligible
    assert pop.unclassified == sum(1 for k in registry["classes"] if k is None)
    with db.tx() as s:
        first = d.draw_campaign(s, cid, NOW)
    assert first.created and first.total == sum(first.by_stratum.values()) + first.control
    with db.tx() as s:
        again = d.draw_campaign(s, cid, NOW)
        n_rows = len(d.drawn_rows(s, cid))
    assert not again.created and again.to_dict() | {"created": True} == first.to_dict()
    assert n_rows == first.total
    with db.tx() as s:
        res = d.verify(s, "FZ-2026-01")
    assert res.ok, res.differences
    # an outsider with the published list, the code and the public value gets the same draw
    with db.tx() as s:
        c = s.get(Campaign, cid)
        published = d.load_population(s, c, with_ids=False).csv
        stored = {(r.uscc, r.stratum, r.rank) for r in d.drawn_rows(s, cid)}
    assert hashlib.sha256(published).hexdigest() == first.population_hash
    replay = d.draw_population(d.Population.from_csv(published), "FZ-2026-01", "03 11 19 24 27 30 + 07")
    assert {(r.uscc, r.stratum, r.rank) for r in replay.rows} == stored
    assert replay.seed_hex == first.seed


def test_verification_fails_when_the_public_value_or_one_uscc_changes(db, registry):
    with db.tx() as s:
        cid = make_campaign(s)
        d.draw_campaign(s, cid, NOW)
    with db.tx() as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(public_value="03 11 19 24 27 30 + 08"))
    with db.tx() as s:
        res = d.verify(s, cid)
    assert not res.ok
    assert any(x.startswith("seed: recomputed") for x in res.differences)
    assert any(x.startswith(("missing:", "unexpected:", "changed:")) for x in res.differences)
    with db.tx() as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(public_value="03 11 19 24 27 30 + 07"))
        assert d.verify(s, cid).ok
    # one USCC of the stored population list replaced
    with db.tx() as s:
        row = s.get(CampaignPopulation, cid)
        text = zlib.decompress(row.data)
        old = text[:18]
        row.data = zlib.compress(text.replace(old, b"91350102MA00000001", 1))
    with db.tx() as s:
        res = d.verify(s, cid)
    assert not res.ok
    assert res.differences[0].startswith("population: the stored list hashes to")
    assert any("missing:" in x or "unexpected:" in x or "changed:" in x for x in res.differences)
    # a swapped draw result is named
    with db.tx() as s:
        row.data = zlib.compress(text)
        s.merge(row)
    with db.tx() as s:
        assert d.verify(s, cid).ok
        victim = s.scalars(select(DrawResult).where(DrawResult.campaign_id == cid, DrawResult.stratum == "D")).first()
        s.execute(update(DrawResult).where(DrawResult.campaign_id == cid, DrawResult.entity_id == victim.entity_id)
                  .values(rank=victim.rank + 10_000))
    with db.tx() as s:
        res = d.verify(s, cid)
    assert not res.ok and any(x.startswith(f"changed: {victim.uscc}: rank") for x in res.differences)


def test_exclusions_are_logged_with_reasons(db, registry):
    codes = registry["codes"]
    with db.tx() as s:
        earlier = make_campaign(s, "FZ-2025-02", items=["MKT-01"], start=date(2025, 9, 1), end=date(2025, 11, 30),
                                ratios={"A": "0.1", "B": "0.1", "C": "0.1", "D": "0.1"})
        d.draw_campaign(s, earlier, NOW)
        earlier_drawn = {r.entity_id for r in d.drawn_rows(s, earlier)}
        dep = Deployment(sha256="0" * 64, files={}, deployed_by="t", deployed_at=NOW)
        s.add(dep)
        s.flush()
        pd = ProcessDefinition(process_id="entity_inspection", version=1, sha256="0" * 64, deployment_id=dep.id,
                               source_file="x.bpmn", bpmn_xml="", spec_json="", flow_index={}, forms={},
                               deployed_by="t", deployed_at=NOW)
        s.add(pd)
        s.flush()
        open_entity = next(i for i in range(1, 600) if i not in earlier_drawn and i not in (4, 18))
        s.add(ProcessInstance(definition_id=pd.id, process_id="entity_inspection", business_key=codes[open_entity - 1],
                              status="running", state="{}", serializer_version="1", library_version="3.2.0",
                              started_by="t", started_at=NOW, updated_at=NOW))
        investigated, closed_case = [i for i in range(open_entity + 1, 600) if i not in earlier_drawn | {4, 18}][:2]
        for n, (entity, status) in enumerate(((investigated, "filed"), (closed_case, "closed"))):
            s.add(EnforcementCase(instance_id=90 + n, task_guid="t", uscc=codes[entity - 1], lead_source="complaint",
                                  lead_at=NOW, status=status, history=[]))
        cid = make_campaign(s, items=["MKT-01", "FOOD-01"], jurisdiction=["350102"])
        summary = d.freeze_population(s, cid, NOW)
        rows = {e.entity_id: e
                for e in s.scalars(select(CampaignExclusion).where(CampaignExclusion.campaign_id == cid))}
    assert rows[4].reason == "terminal_status" and rows[4].detail == "deregistered"
    assert rows[18].reason == "terminal_status" and rows[18].detail == "revoked"
    assert rows[open_entity].reason == "open_task" and rows[open_entity].detail.startswith("open instance")
    assert rows[investigated].reason == "open_case" and rows[investigated].detail.endswith("(filed)")
    assert closed_case not in rows  # a closed case excludes nobody
    lookback = {e for e, r in rows.items() if r.reason == "checked_in_lookback"}
    assert lookback == earlier_drawn - {4, 18}
    assert all(rows[e].detail == "drawn by campaign FZ-2025-02" for e in lookback)
    assert summary.excluded == len(rows)
    assert summary.exclusions_by_reason == {"terminal_status": 2, "open_task": 1, "open_case": 1,
                                            "checked_in_lookback": len(lookback)}
    # industry H targets of FOOD-01 add nobody here; entities of industry C and district 350203 are out of scope
    assert summary.eligible == 600 - len(rows)
    assert not set(rows) & set(range(601, 641))


def test_campaign_of_items_without_industries_covers_every_industry(db, registry):
    with db.tx() as s:
        cid = make_campaign(s, items=["MKT-02"], jurisdiction=["3501"])
        assert s.get(Campaign, cid).target_industries is None
        assert d.freeze_population(s, cid, NOW).eligible == 620 - 2  # industry C included, district 3502 not
        with pytest.raises(InvalidInput, match="unknown check item"):
            make_campaign(s, "X", items=["NOPE"])


def test_draw_needs_approval_and_public_value(db, registry):
    with db.tx() as s:
        cid = make_campaign(s, approve=False)
        with pytest.raises(Conflict, match="only an approved campaign"):
            d.draw_campaign(s, cid, NOW)
        d.approve_campaign(s, cid, approver="head", now=NOW)
        with pytest.raises(Conflict, match="no public randomness value"):
            d.draw_campaign(s, cid, NOW)
        d.record_public_value(s, cid, "88")
        assert d.draw_campaign(s, cid, NOW).created
        with pytest.raises(Conflict, match="already drawn"):
            d.record_public_value(s, cid, "89")


def test_entity_drawn_by_two_departments_gets_one_joint_check(db, registry):
    everyone = {"A": "1", "B": "1", "C": "1", "D": "1"}
    with db.tx() as s:
        market = make_campaign(s, "MKT-2026", items=["MKT-01"], departments=["market"], ratios=everyone,
                               control_share="0", start=date(2026, 4, 1), end=date(2026, 6, 30))
        food = make_campaign(s, "FOOD-2026", items=["FOOD-01"], departments=["food"], ratios=everyone,
                             control_share="0", start=date(2026, 6, 1), end=date(2026, 8, 31))
        later = make_campaign(s, "MKT-2026H2", items=["MKT-02"], departments=["market"], ratios=everyone,
                              control_share="0", start=date(2026, 9, 1), end=date(2026, 10, 31),
                              target_industries=["F"])
        for cid in (market, food, later):
            d.draw_campaign(s, cid, NOW)
        visits = d.joint_checks(s, date(2026, 1, 1), date(2026, 12, 31))
        lead = d.joint_check_for(s, food, 1)
        # a launch reads every entity's visits at once: the same answers, kept until a campaign is written
        d.prefetch_joint_checks(s, list(range(1, 601)))
        assert all(d.joint_check_for(s, food, e) == d.joint_checks(s, entity_ids=[e])[0]
                   for e in (1, 2, 3, 50, 600) if d.joint_checks(s, entity_ids=[e]))
        assert s.info["regflow.txcache"]["draw.joint_checks"][1][1] == sorted(
            d.joint_checks(s, entity_ids=[1]), key=lambda v: v.window_start)
        s.get(Campaign, food).name = "food, renamed"
        s.flush()
        assert "draw.joint_checks" not in s.info["regflow.txcache"]
    by_entity: dict[int, list] = {}
    for v in visits:
        by_entity.setdefault(v.entity_id, []).append(v)
    eligible = 600 - 2
    assert len(by_entity) == eligible
    first, second = sorted(by_entity[1], key=lambda v: v.window_start)
    assert first.campaign_ids == [market, food] and first.joint
    assert first.items == ["FOOD-01", "MKT-01"] and first.departments == ["market", "food"]
    assert (first.window_start, first.window_end) == (date(2026, 6, 1), date(2026, 6, 30))
    assert second.campaign_ids == [later] and not second.joint  # no overlap: a separate, later visit
    assert lead.lead_campaign_id == market and lead.campaign_ids == [market, food]


def test_service_operators_are_idempotent(db, registry):
    with db.tx() as s:
        cid = make_campaign(s)
    ctx_args = dict(instance_id=1, task_guid="t", bpmn_id="draw", business_key=None, actor="system", now=NOW)
    with db.tx() as s:
        pop = ops.get("campaign.eligible_population").fn(ServiceContext(session=s, **ctx_args), campaign_id=cid)
    with db.tx() as s:
        first = ops.get("campaign.draw").fn(ServiceContext(session=s, **ctx_args), campaign_id=cid)
    with db.tx() as s:
        again = ops.get("campaign.draw").fn(ServiceContext(session=s, **ctx_args), campaign_id=cid)
        assert ops.get("campaign.eligible_population").fn(ServiceContext(session=s, **ctx_args),
                                                          campaign_id=cid) == pop
        entity = d.drawn_rows(s, cid)[0].entity_id
        visit = ops.get("campaign.joint_check").fn(ServiceContext(session=s, **ctx_args), campaign_id=cid,
                                                  entity_id=entity)
    assert pop["eligible"] == 598 and pop["excluded"] == 2 and set(pop["by_stratum"]) == set("ABCD")
    assert first["created"] and not again["created"]
    assert {k: v for k, v in first.items() if k != "created"} == {k: v for k, v in again.items() if k != "created"}
    assert first["population_hash"] == pop["population_hash"] and len(first["seed"]) == 64
    assert visit["is_lead"] and visit["items"] == ["MKT-01"]


def test_cli_verify_and_show(db, registry, monkeypatch):
    monkeypatch.setenv("REGFLOW_DATABASE_URL", db.url)
    with db.tx() as s:
        cid = make_campaign(s)
        d.draw_campaign(s, cid, NOW)
    runner = CliRunner()
    ok = runner.invoke(draw_group, ["verify", "FZ-2026-01"])
    assert ok.exit_code == 0 and ok.output.startswith("verified: campaign FZ-2026-01"), ok.output
    shown = runner.invoke(draw_group, ["show", str(cid), "--json", "--limit", "-1"])
    assert shown.exit_code == 0
    doc = json.loads(shown.output)
    assert doc["status"] == "drawn" and len(doc["drawn"]) == doc["draw"]["total"]
    with db.tx() as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(public_value="another"))
    bad = runner.invoke(draw_group, ["verify", "FZ-2026-01", "--json"])
    assert bad.exit_code == 1
    assert not json.loads(bad.output)["ok"]
    assert runner.invoke(draw_group, ["verify", "NOPE"]).exit_code == 3


def _scope_set(scope) -> set:
    usccs = [u.decode() if isinstance(u, bytes) else u for u in scope.usccs.tolist()]
    return set(zip(scope.ids.tolist(), usccs, scope.classes.tolist(), scope.terminal.tolist()))


def test_in_scope_columns_match_the_registry(db, registry):
    """The column-wise read of the registry (SQLite: one aggregate row) is the registry, row by row."""
    with db.tx() as s:
        cid = make_campaign(s, jurisdiction=["3501"])
        c = s.get(Campaign, cid)
        scope = eligibility.in_scope(s, c)
        expected = {(e.id, e.uscc, (e.risk_class or "-").encode(),
                     d.TERMINAL_STATUSES.index(e.status) if e.status in d.TERMINAL_STATUSES else -1)
                    for e in s.scalars(select(Entity).where(Entity.district.startswith("3501"),
                                                            Entity.industry_section == "F"))}
    assert len(scope.ids) == len(expected) == 600
    assert _scope_set(scope) == expected


def test_odd_uscc_and_sqlite_length_limit_fall_back_to_rows(db, registry, monkeypatch):
    """SQLite reads the registry as packed columns; a USCC that is not 18 characters, or a column over SQLite's
    string limit, makes it read row by row instead, with the same population and the same exclusions."""
    with db.tx() as s:
        add_entities(s, ["ABC123"], [None], start_id=1001)
        cid = make_campaign(s)
        first = d.freeze_population(s, cid, NOW)
        assert b"ABC123,B\n" in d.load_population(s, s.get(Campaign, cid)).csv
    assert first.eligible == 600 - 2 + 1 and first.unclassified == 1 + sum(k is None for k in registry["classes"])
    if db.kind != "sqlite":
        return
    with db.tx() as s:
        s.execute(update(Entity).where(Entity.id == 1001).values(uscc="91350102MA2Y0ABC12"))
        packed_id = make_campaign(s, "FZ-2026-02")
        rows_id = make_campaign(s, "FZ-2026-03")
        t = Entity.__table__
        assert eligibility.in_scope_packed(s, t, []) is not None
        raw = s.connection().connection.driver_connection
        old = raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
        try:
            assert eligibility.in_scope_packed(s, t, []) is None
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, old)
        packed = d.freeze_population(s, packed_id, NOW)
        with monkeypatch.context() as m:
            m.setattr(eligibility, "in_scope_packed", lambda *a: None)
            by_rows = d.freeze_population(s, rows_id, NOW)
        logged = {c: s.execute(select(CampaignExclusion.entity_id, CampaignExclusion.uscc, CampaignExclusion.reason,
                                      CampaignExclusion.detail).where(CampaignExclusion.campaign_id == c)
                               .order_by(CampaignExclusion.entity_id)).all() for c in (packed_id, rows_id)}
    assert packed.population_hash == by_rows.population_hash != first.population_hash
    assert {k: v for k, v in packed.to_dict().items() if k != "campaign_id"} == \
        {k: v for k, v in by_rows.to_dict().items() if k != "campaign_id"}
    assert logged[packed_id] == logged[rows_id] and len(logged[packed_id]) == 2


def test_exclusion_rows_are_written_in_batches(db, registry):
    """Multi-row inserts: a full batch of 500 rows and a partial one, on each backend."""
    with db.tx() as s:
        cid = make_campaign(s, approve=False)
        rows = [(cid, i + 1, registry["codes"][i], "open_task", f"open instance {i}" if i % 3 else None)
                for i in range(640)]
        insert_raw(s, CampaignExclusion.__table__, d.EXCLUSION_COLUMNS, rows)
    with db.tx() as s:
        got = sorted(s.execute(select(CampaignExclusion.campaign_id, CampaignExclusion.entity_id,
                                      CampaignExclusion.uscc, CampaignExclusion.reason, CampaignExclusion.detail)
                               .where(CampaignExclusion.campaign_id == cid)).all())
    assert [tuple(r) for r in got] == rows
