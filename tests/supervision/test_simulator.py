"""The full-loop simulator on a small registry: the must-show invariants of issue 4 on 1,500 entities.

N = 1500 with seed 3 is chosen (not 400) because at 400 entities the draw is too small to guarantee a
high-grade finding or a failed rectification, i.e. an enforcement case; with this seed 2 cases open."""
from __future__ import annotations

import random
from collections import Counter
from datetime import date

from click.testing import CliRunner

from engine.bootstrap import form_registry
from engine.cli.simulate import SUMMARY_KEYS
from engine.cli.simulate import simulate as command
from engine.config import PROJECT_ROOT, load_settings
from engine.simulation import Officers, Options, simulate
from engine.supervision.inspection import RESULT_OUTCOMES, VIOLATION_CODES
from forms.checklist import merge_checklist
from forms.validate import engine_hook


def test_simulate_full_loop_invariants():
    summary = simulate(Options(entities=1500, seed=3, training_entities=5000))
    doc = {k: summary[k] for k in SUMMARY_KEYS}
    assert list(doc) == list(SUMMARY_KEYS)
    inst = doc["instances"]
    assert inst["started"] == inst["completed"] and inst["open"] == 0
    assert inst["started"] == sum(doc["drawn"].values()) + 1  # one child per drawn entity + the campaign
    assert doc["incidents"] == 0 and doc["audit_chain_ok"] is True
    # routing by the score risk.score computed at run time: C/D heavy, A/B standard (route_by_risk.dmn)
    for klass, paths in summary["path_by_class"].items():
        assert set(paths) == ({"heavy"} if klass in ("C", "D") else {"standard"}), (klass, paths)
    assert doc["paths"]["standard"] + doc["paths"]["heavy"] == sum(doc["inspections"].values())
    assert doc["hazards"]["open"] == 0
    assert doc["hazards"]["opened"] == doc["hazards"]["removed"] + doc["hazards"]["closed_other"] > 0
    assert doc["enforcement_cases"]["opened"] > 0
    assert doc["enforcement_cases"]["closed"] == doc["enforcement_cases"]["opened"]
    hr = doc["hit_rate"]
    assert max(hr["C"], hr["D"]) > hr["control"] and (hr["C"] + hr["D"]) / 2 > hr["control"]
    assert doc["published"] >= sum(doc["inspections"].values()) + 2  # every result, the plan, the summary


def test_simulated_officers_draw_every_result_code_with_valid_forms():
    """Every code the process supports occurs, each with form data the
    inspection_result form accepts; violations follow the ground truth, unreachable/uncooperative lean on it."""

    merged = merge_checklist([
        {"code": "AR-01", "name": "年报", "department": "amr",
         "clauses": [{"code": "AR-1", "text": "年报按时公示", "basis": []}]},
        {"code": "PRICE-01", "name": "明码标价", "department": "price",
         "clauses": [{"code": "PR-1", "text": "明码标价", "basis": []}]}]).field
    truth = {"LOW": 0.02, "HIGH": 0.6}
    officers = Officers(None, None, truth, random.Random(11))
    validate = engine_hook(form_registry(load_settings()))
    counts: dict[str, Counter] = {"LOW": Counter(), "HIGH": Counter()}
    for uscc in ("LOW", "HIGH"):
        for _ in range(12_000):
            wfdata = {"uscc": uscc, "merged_checklist": merged, "method": "on_site"}
            form = officers.inspection(wfdata, date(2026, 3, 3))
            counts[uscc][form["result_code"]] += 1
            if counts[uscc][form["result_code"]] <= 3:  # validate a few of each code
                assert validate("inspection_result", form, wfdata)[1] == {}, form
    assert set(counts["LOW"] + counts["HIGH"]) == set(RESULT_OUTCOMES)
    share = {u: sum(c[k] for k in VIOLATION_CODES) / sum(c.values()) for u, c in counts.items()}
    assert share["LOW"] < 0.05 < 0.4 < share["HIGH"] < 0.65
    for code in ("result_6", "result_8"):  # the riskier entity is more often unreachable or obstructive
        assert counts["HIGH"][code] > counts["LOW"][code]


def _what_if_route(tmp_path, heavy_classes: str):
    text = (PROJECT_ROOT / "processes" / "route_by_risk.dmn").read_text(encoding="utf-8")
    assert '<text>? in ("C", "D")</text>' in text
    path = tmp_path / "route_what_if.dmn"
    path.write_text(text.replace('<text>? in ("C", "D")</text>', f"<text>? in {heavy_classes}</text>"),
                    encoding="utf-8")
    return path


def test_what_if_decision_table_routes_the_run(tmp_path):
    """A designer's what-if DMN (B joins the heavy path) replaces the library's route_by_risk for the run."""
    path = _what_if_route(tmp_path, '("B", "C", "D")')
    summary = simulate(Options(entities=700, seed=3, training_entities=5000, decision_files=(path,)))
    assert summary["instances"]["open"] == 0 and summary["incidents"] == 0 and summary["audit_chain_ok"]
    by_class = summary["path_by_class"]
    assert set(by_class.get("B", ["heavy"])) == {"heavy"} and "B" in by_class
    assert set(by_class.get("A", ["standard"])) == {"standard"}
    assert all(set(by_class[k]) == {"heavy"} for k in ("C", "D") if k in by_class)


def test_what_if_decision_files_are_checked_before_the_run(tmp_path):

    stray = tmp_path / "other.dmn"
    stray.write_text(_what_if_route(tmp_path, '("D",)').read_text(encoding="utf-8")
                     .replace('decision id="route_by_risk"', 'decision id="route_by_mood"'), encoding="utf-8")
    broken = tmp_path / "broken.dmn"
    broken.write_text("<definitions><decision id='x'>", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(command, ["--decisions", str(stray)])
    assert out.exit_code == 2 and "route_by_mood" in out.output and "not in the process library" in out.output
    assert "route_by_risk" in out.output  # the library's decisions are listed
    out = runner.invoke(command, ["--decisions", str(broken)])
    assert out.exit_code == 2 and "broken.dmn" in out.output and "not well-formed" in out.output
    out = runner.invoke(command, ["--decisions", str(tmp_path / "missing.dmn")])
    assert out.exit_code == 2 and "missing.dmn" in out.output
