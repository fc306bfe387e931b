"""Public draw verification (engine/supervision/draw/public.py) and the standalone verifier
(engine/supervision/draw/standalone_verifier.py): the verifier, run as a separate program on the published
files, reproduces a draw the engine made and detects a changed population or drawn list; which draws are public
and what they show; who downloads the population file."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import select, update

from engine import policy
from engine.errors import NotAllowed, NotFound
from engine.supervision import draw as d
from engine.supervision import publication
from engine.supervision.campaign_models import Campaign, DrawResult
from engine.supervision.draw import public
from engine.supervision.draw import standalone_verifier as sv
from tests.supervision.test_draw import NOW, add_entities, add_items, make_campaign, population, usccs

VERIFIER = public.VERIFIER_FILE


@pytest.fixture
def drawn(db):
    """A drawn, announced campaign over 400 entities (capacity 30) and its published files."""
    rng = np.random.default_rng(5)
    codes = usccs(400, seed=5)
    classes = rng.choice(["A", "B", "C", "D"], size=400, p=[0.5, 0.3, 0.12, 0.08]).tolist()
    with db.tx() as s:
        add_items(s, ("MKT-01", "market", ["F"]))
        add_entities(s, codes, classes)
        cid = make_campaign(s, "ZZ-2026-07", capacity=30, ratios={"A": "0.02", "B": "0.05", "C": "0.2", "D": "0.5"})
        d.draw_campaign(s, cid, NOW)
        publication.record(s, kind="plan", title="抽查计划", payload={"campaign": "ZZ-2026-07"}, now=NOW,
                           ref=f"campaign:{cid}", publish=True)
    public.forget_verifications()
    return cid


def _files(db, cid, tmp_path):
    with db.tx() as s:
        info = public.public_draw(s, cid)
        _code, pop = public.population_file(s, cid)
        drawn_list = public.drawn_list_file(s, cid)
    (tmp_path / "population.csv").write_bytes(pop)
    (tmp_path / "drawn.txt").write_bytes(drawn_list)
    return info


def _run(tmp_path, info, *extra, population="population.csv", drawn="drawn.txt"):
    ratios = ",".join(f"{k}={v}" for k, v in info["ratios"].items())
    args = [sys.executable, str(VERIFIER), "--population", str(tmp_path / population), "--code", info["code"],
            "--public-value", info["public_value"], "--ratios", ratios, "--control-share", info["control_share"],
            "--drawn", str(tmp_path / drawn), "--population-hash", info["population_hash"], "--seed", info["seed"],
            "--json", *extra]
    if info["capacity"] is not None:
        args += ["--capacity", str(info["capacity"])]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_standalone_verifier_reproduces_the_engines_draw(db, drawn, tmp_path):
    info = _files(db, drawn, tmp_path)
    r = _run(tmp_path, info)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    with db.tx() as s:
        c = s.get(Campaign, drawn)
        stored = {x.uscc for x in d.drawn_rows(s, drawn)}
        summary = c.draw_summary
    assert out["ok"] and out["seed"] == c.seed and out["population_hash"] == c.population_hash
    assert out["total"] == len(stored) == summary["total"] <= 30
    assert out["drawn"] == summary["drawn"]  # per stratum, control included, as the engine counted


def test_standalone_verifier_detects_a_changed_population(db, drawn, tmp_path):
    info = _files(db, drawn, tmp_path)
    lines = (tmp_path / "population.csv").read_bytes().split(b"\n")
    # one entity moved from its class to D: still a well-formed file, but not the published one
    i = next(n for n, line in enumerate(lines) if line.endswith(b",A"))
    lines[i] = lines[i][:-1] + b"D"
    (tmp_path / "changed.csv").write_bytes(b"\n".join(lines))
    r = _run(tmp_path, info, population="changed.csv")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert any(x.startswith("population: the file hashes to") for x in out["differences"])
    assert any(x.startswith("seed: recomputed") for x in out["differences"])


def test_standalone_verifier_detects_a_changed_drawn_list(db, drawn, tmp_path):
    info = _files(db, drawn, tmp_path)
    listed = (tmp_path / "drawn.txt").read_text().split()
    with db.tx() as s:
        pop = d.load_population(s, s.get(Campaign, drawn), with_ids=False)
    outsider = next(u.decode() for u in pop.usccs.tolist() if u.decode() not in listed)
    swapped = [outsider] + listed[1:]
    (tmp_path / "swapped.txt").write_text("\n".join(swapped) + "\n")
    r = _run(tmp_path, info, drawn="swapped.txt")
    assert r.returncode == 1
    diffs = json.loads(r.stdout)["differences"]
    assert f"missing: {listed[0]} is drawn but not in the published list" in diffs
    assert f"unexpected: {outsider} is in the published list but is not drawn" in diffs
    (tmp_path / "short.txt").write_text("\n".join(listed[:-1]) + "\n")
    assert _run(tmp_path, info, drawn="short.txt").returncode == 1


def test_standalone_verifier_refuses_unreadable_input(db, drawn, tmp_path):
    info = _files(db, drawn, tmp_path)
    (tmp_path / "bad.csv").write_bytes(b"91350102MA2Y00001A,E\n")
    r = _run(tmp_path, info, population="bad.csv")
    assert r.returncode == 2 and "expected 'USCC,CLASS'" in r.stderr
    (tmp_path / "unsorted.csv").write_bytes(b"B,A\nA,A\n")
    assert _run(tmp_path, info, population="unsorted.csv").returncode == 2
    r = _run(tmp_path, info, population="missing.csv")
    assert r.returncode == 2 and "error:" in r.stderr


@pytest.mark.parametrize("case", range(6))
def test_standalone_verifier_agrees_with_the_engine(case):
    """A second reading of the specification: the same draw as the engine's numpy implementation, quotas,
    control stratum, carries and capacity cuts included."""
    rng = np.random.default_rng(100 + case)
    counts = {c: int(rng.integers(0, 300)) for c in "ABCD"}
    pop = population(counts, seed=case)
    ratios = {c: str(round(float(rng.uniform(0, 0.6)), 3)) for c in "ABCD"}
    share = ["0", "0.1", "0.25"][case % 3]
    capacity = [None, 40, 7][case % 3]
    eng = d.draw_population(pop, f"T-{case}", "42", ratios, share, capacity)
    seed = sv.compute_seed(f"T-{case}", pop.sha256, "42")
    assert seed.hex() == eng.seed_hex
    mine = sv.draw(sv.parse_population(pop.csv), seed, sv.parse_ratios(",".join(f"{k}={v}" for k, v in ratios.items())),
                   sv.decimal_share(share, "share", upper_inclusive=False), capacity)
    theirs: dict[str, list[str]] = {}
    for r in sorted(eng.rows, key=lambda r: r.rank):
        theirs.setdefault(r.stratum, []).append(r.uscc)
    assert {k: v for k, v in mine.items() if v} == theirs


def test_only_announced_draws_are_public(db, drawn):
    with db.tx() as s:
        rows, more = public.list_public_draws(s)
        assert [r["code"] for r in rows] == ["ZZ-2026-07"] and not more
        # a campaign drawn without a published notice shows nothing
        other = make_campaign(s, "ZZ-2026-08")
        d.draw_campaign(s, other, NOW)
        with pytest.raises(NotFound):
            public.public_draw(s, other)
        with pytest.raises(NotFound):
            public.drawn_list_file(s, other)
        with pytest.raises(NotFound):
            public.population_file(s, 999_999)
        # a withdrawn notice takes the draw off the public pages
        pub = publication.record(s, kind="plan", title="抽查计划", payload={}, now=NOW, ref=f"campaign:{other}",
                                 publish=True)
        assert public.public_draw(s, other)["code"] == "ZZ-2026-08"
        publication.withdraw(s, pub.id, "计划撤销", NOW)
        with pytest.raises(NotFound):
            public.public_draw(s, other)
        assert [r["code"] for r in public.list_public_draws(s)[0]] == ["ZZ-2026-07"]


def test_public_draw_never_shows_the_stratum_and_classes_only_when_public(db, drawn):
    with db.tx() as s:
        hidden = public.public_draw(s, drawn)
        shown = public.public_draw(s, drawn, risk_class=True)
        stored = {r.uscc: r.risk_class for r in d.drawn_rows(s, drawn)}
        page = public.public_draw(s, drawn, limit=5, offset=5)
    assert [e["uscc"] for e in hidden["drawn"]] == sorted(stored)  # by USCC, never in rank order
    assert all(set(e) == {"uscc", "name"} for e in hidden["drawn"]) and "by_stratum" not in hidden
    assert all(e["risk_class"] == stored[e["uscc"]] for e in shown["drawn"])
    assert set(shown["by_stratum"]) == {"A", "B", "C", "D"}
    assert all(set(e) == {"uscc", "name", "risk_class"} for e in shown["drawn"])
    assert "control" not in shown["by_stratum"] and "stratum" not in json.dumps(shown["drawn"])
    assert [e["uscc"] for e in page["drawn"]] == sorted(stored)[5:10] and page["has_more"]


def test_server_verification_reports_a_tampered_draw(db, drawn):
    with db.tx() as s:
        assert public.verification(s, drawn)["ok"]
    with db.tx() as s:
        first = s.scalars(select(DrawResult).where(DrawResult.campaign_id == drawn)).first()
        s.execute(update(DrawResult).where(DrawResult.campaign_id == drawn, DrawResult.uscc == first.uscc)
                  .values(rank=first.rank + 1000))
    with db.tx() as s:
        assert public.verification(s, drawn)["ok"]  # the kept result, until it expires
        public.forget_verifications()
        check = public.verification(s, drawn)
    assert not check["ok"] and any(first.uscc in x for x in check["differences"])


def test_verifier_command_quotes_the_inputs(db, drawn):
    with db.tx() as s:
        info = public.public_draw(s, drawn)
    cmd = public.verifier_command({**info, "public_value": 'a "b" $x'})
    assert '--public-value "a \\"b\\" \\$x"' in cmd and "--capacity 30" in cmd


def test_population_download_follows_the_class_publication_setting():
    auditor = policy.Actor("aud", frozenset({"auditor"}))
    officer = policy.Actor("off", frozenset({"officer", "supervisor"}))
    policy.check_population_download(None, classes_public=True)
    policy.check_population_download(officer, classes_public=True)
    policy.check_population_download(auditor, classes_public=False)
    for who in (None, officer):
        with pytest.raises(NotAllowed, match="only auditors"):
            policy.check_population_download(who, classes_public=False)


def test_the_population_file_is_the_hashed_bytes(db, drawn):
    with db.tx() as s:
        code, body = public.population_file(s, drawn)
        c = s.get(Campaign, drawn)
        assert code == c.code and hashlib.sha256(body).hexdigest() == c.population_hash
        assert body.count(b"\n") == c.population_size
