"""The enforcement safeguards' decision tables (issue 18), evaluated as the engine evaluates them:
``summary_procedure.dmn`` (Administrative Penalty Law art. 51: facts conclusive with a legal basis, a warning or a
fine up to 200 yuan for a citizen / 3,000 yuan for an organisation — at the boundaries), ``legal_review.dmn``
(heavy kinds, complex cases, fines from 5,000 / 50,000 yuan) and ``collective_deliberation.dmn`` (complex cases,
heavy kinds, fines from 10,000 / 100,000 yuan)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine

from engine.config import PROJECT_ROOT
from engine.runtime.parser import parse_sources
from engine.runtime.scripting import RestrictedScriptEngine

PERSON, COMPANY = "92410102MA0000001X", "91410102MA0000001X"
FILES = ("enforcement.bpmn", "rectification.bpmn", "hazard_grade.dmn", "rectification_route.dmn", "hearing_right.dmn",
         "legal_review.dmn", "collective_deliberation.dmn", "summary_procedure.dmn")


@pytest.fixture(scope="module")
def decide():
    files = {name: (PROJECT_ROOT / "processes" / name).read_text(encoding="utf-8") for name in FILES}
    parser = parse_sources(files).parser
    script_engine = RestrictedScriptEngine()
    workflow = SimpleNamespace(script_engine=script_engine, spec=SimpleNamespace(file=None), data_objects={})
    workflow.top_workflow = workflow

    def run(decision_id: str, **data) -> tuple:
        dmn = parser.dmn_parsers[decision_id]
        dmn.parse()
        engine = DMNEngine(dmn.decision.decisionTables[0])
        task = SimpleNamespace(data=data, workflow=workflow, task_spec=SimpleNamespace(bpmn_name="t", name="t"))
        (rule,) = engine.decide(task)[:1]
        return tuple(script_engine.evaluate(task, e.text) for e in rule.outputEntries)
    return run


def lead(uscc: str, penalties, fine, *, facts_clear=True, legal_basis="《价格法》第四十二条") -> dict:
    return {"uscc": uscc, "facts_clear": facts_clear, "legal_basis": legal_basis, "proposed_penalties": penalties,
            "proposed_fine": fine}


@pytest.mark.parametrize("uscc, penalties, fine, expected", [
    (PERSON, ["fine"], 200, True),
    (PERSON, ["fine"], 200.01, False),
    (COMPANY, ["fine"], 3000, True),
    (COMPANY, ["fine"], 3000.01, False),
    (COMPANY, ["warning", "fine"], 3000, True),
    (PERSON, ["warning"], None, True),
    (COMPANY, ["fine", "confiscate_gains"], 100, False),  # confiscation is not for the summary procedure
    (COMPANY, [], None, False),
])
def test_the_summary_procedure_by_rule_at_its_boundaries(decide, uscc, penalties, fine, expected):
    applies, basis = decide("summary_procedure", **lead(uscc, penalties, fine))
    assert applies is expected and basis


@pytest.mark.parametrize("data", [
    lead(COMPANY, ["fine"], 100, facts_clear=False),
    lead(COMPANY, ["fine"], 100, legal_basis="  "),
    lead(COMPANY, None, None, facts_clear=None, legal_basis=None),  # the fields the form hid
])
def test_no_summary_procedure_without_conclusive_facts_and_a_legal_basis(decide, data):
    applies, basis = decide("summary_procedure", **data)
    assert applies is False and basis == "违法事实不确凿或者缺少法定依据"


def proposal(uscc: str, penalties, fine=None, complex_case=False) -> dict:
    return {"uscc": uscc, "proposed_penalties": penalties, "proposed_fine": fine, "complex_case": complex_case}


@pytest.mark.parametrize("data, expected", [
    (proposal(COMPANY, ["warning", "revoke_licence"]), True),
    (proposal(COMPANY, ["suspend"]), True),
    (proposal(COMPANY, ["warning"], complex_case=True), True),
    (proposal(COMPANY, ["fine"], 49999.99), False),
    (proposal(COMPANY, ["fine"], 50000), True),
    (proposal(PERSON, ["fine"], 4999.99), False),
    (proposal(PERSON, ["fine"], 5000), True),
    (proposal(COMPANY, ["confiscate_gains"], 900000), False),  # an amount without a fine is no fine
    (proposal(COMPANY, ["warning"], complex_case=None), False),
])
def test_legal_review_by_rule(decide, data, expected):
    required, basis = decide("legal_review", **data)
    assert required is expected and basis


@pytest.mark.parametrize("data, expected", [
    (proposal(COMPANY, ["fine", "suspend"], 20000), True),
    (proposal(COMPANY, ["fine"], 20000, complex_case=True), True),
    (proposal(COMPANY, ["fine"], 99999.99), False),
    (proposal(COMPANY, ["fine"], 100000), True),
    (proposal(PERSON, ["fine"], 9999.99), False),
    (proposal(PERSON, ["fine"], 10000), True),
    (proposal(COMPANY, ["warning"]), False),
])
def test_collective_deliberation_by_rule(decide, data, expected):
    required, basis = decide("collective_deliberation", **data)
    assert required is expected and basis
