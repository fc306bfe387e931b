"""``processes/hearing_right.dmn`` (issue 18): the right to a hearing follows from the proposed penalty and the
party, not from the officer's tick — suspension or licence revocation always; a fine from 10,000 yuan for an
individual business (USCC category 2), from 100,000 yuan for an organisation; nothing else."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine

from engine.config import PROJECT_ROOT
from engine.runtime.parser import parse_sources
from engine.runtime.scripting import RestrictedScriptEngine

PERSON, COMPANY = "92410102MA0000001X", "91410102MA0000001X"


@pytest.fixture(scope="module")
def decide():
    files = {name: (PROJECT_ROOT / "processes" / name).read_text(encoding="utf-8")
             for name in ("hearing_right.dmn", "enforcement.bpmn", "rectification.bpmn", "hazard_grade.dmn",
                          "rectification_route.dmn", "legal_review.dmn", "collective_deliberation.dmn",
                          "summary_procedure.dmn")}
    dmn = parse_sources(files).parser.dmn_parsers["hearing_right"]
    dmn.parse()
    engine = DMNEngine(dmn.decision.decisionTables[0])
    workflow = SimpleNamespace(script_engine=RestrictedScriptEngine(), spec=SimpleNamespace(file=None),
                               data_objects={})
    workflow.top_workflow = workflow

    def run(uscc: str, penalties: list[str], fine: float | None) -> tuple[bool, str]:
        task = SimpleNamespace(data={"uscc": uscc, "proposed_penalties": penalties, "proposed_fine": fine},
                               workflow=workflow, task_spec=SimpleNamespace(bpmn_name="t", name="t"))
        (rule,) = engine.decide(task)[:1]
        right, basis = (workflow.script_engine.evaluate(task, e.text) for e in rule.outputEntries)
        return right, basis
    return run


@pytest.mark.parametrize("uscc, penalties, fine, expected", [
    (COMPANY, ["fine", "suspend"], 20000, True),
    (COMPANY, ["warning", "revoke_licence"], None, True),
    (COMPANY, ["fine"], 99999.99, False),
    (COMPANY, ["fine"], 100000, True),
    (PERSON, ["fine"], 9999, False),
    (PERSON, ["fine"], 10000, True),
    (COMPANY, ["warning"], None, False),
    (COMPANY, ["confiscate_gains"], 500000, False),  # an amount proposed without a fine does not count as one
])
def test_the_right_to_a_hearing_by_rule(decide, uscc, penalties, fine, expected):
    right, basis = decide(uscc, penalties, fine)
    assert right is expected and basis
