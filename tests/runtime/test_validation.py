"""Deploy-time validation of every expression in parsed BPMN/DMN files."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser

import engine.runtime.validation as validation
from engine.errors import DefinitionError
from engine.runtime.deploy import deploy
from engine.runtime.parser import parse_sources
from engine.runtime.scripting import RestrictedScriptEngine
from engine.runtime.validation import ExpressionIssue, validate_expressions

DATA = Path(__file__).resolve().parent.parent / "data" / "scripting"


def _parser(*names: str) -> SpiffBpmnParser:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_files([str(DATA / n) for n in names if n.endswith(".bpmn")])
    parser.add_dmn_files([str(DATA / n) for n in names if n.endswith(".dmn")])
    return parser


def _keys(issues: list[ExpressionIssue]) -> set[tuple]:
    return {(Path(i.file).name if i.file else None, i.process_id, i.element_id, i.field) for i in issues}


BAD_BPMN = "scripting_bad.bpmn"
BAD_DMN = "risk_bad.dmn"

EXPECTED_BAD = {
    (BAD_BPMN, "scripting_bad", "bad_script", "script"),
    (BAD_BPMN, "scripting_bad", "f_bad_cond", "conditionExpression"),
    (BAD_BPMN, "scripting_bad", "review", "property:dueIn"),
    (BAD_BPMN, "scripting_bad", "review_timeout", "timeDuration"),
    (BAD_BPMN, "scripting_bad", "notify", "parameter:recipient"),
    (BAD_BPMN, "sub", "inner_bad", "script"),
    (BAD_DMN, "risk_bad", "r_bad", "inputEntry:in_amount"),
    (BAD_DMN, "risk_bad", "r_bad", "inputEntry:in_sector"),
    (BAD_DMN, "risk_bad", "r_bad", "outputEntry:out_class"),
}


def test_issue_shape():
    fields = [f.name for f in dataclasses.fields(ExpressionIssue)]
    assert fields == ["file", "process_id", "element_id", "field", "message"]


def test_valid_files_have_no_issues():
    parser = _parser("scripting_ok.bpmn", "scripting_rich.bpmn", "spin.bpmn", "risk_class.dmn")
    assert validate_expressions(parser) == []


def test_every_kind_of_expression_is_checked(monkeypatch):
    checked = []
    original = validation.compile_check

    def spy(source, mode):
        checked.append((source, mode))
        return original(source, mode)

    monkeypatch.setattr(validation, "compile_check", spy)
    validate_expressions(_parser("scripting_rich.bpmn", "scripting_ok.bpmn", "risk_class.dmn"))
    expected = {
        ("opened = True", "exec"),                                   # preScript
        ("reviewed = True", "exec"),                                 # postScript
        ("workdays(5)", "eval"),                                     # property dueIn
        ('team["leader"]', "eval"),                                  # property assignee / parameter
        ('"P3D"', "eval"),                                           # boundary timer
        ('"Inspection " + case_id', "eval"),                         # service parameter
        ("len(signers)", "eval"),                                    # MI cardinality
        ("approved_count >= 2", "eval"),                             # MI completion
        ("(now() + timedelta(days=1)).isoformat()", "eval"),         # intermediate timer
        ('{"case": case_id, "due": due}', "eval"),                   # message payload
        ("case_id", "eval"),                                         # process correlation
        ("attempts >= 3", "eval"),                                   # standard loop
        ("attempts = attempts + 1", "exec"),                         # script task
        ('"food" in sectors', "eval"),                               # inclusive gateway
        ('risk_class == "high" and len(flags) > 0', "eval"),         # exclusive gateway
        ("amount", "eval"),                                          # DMN input expression
        ("amount> 10000", "eval"),                                   # DMN cell "> 10000"
        ('(sector) == ("food")', "eval"),                            # DMN cell '"food"'
        ("1000 <= dmninputexpr <= 10000", "eval"),                   # DMN cell with '?'
        ('"amount " + str(amount)', "eval"),                         # DMN output
        ("sector.upper()", "eval"),                                  # DMN output
    }
    assert expected <= set(checked)


def test_bad_expressions_are_reported_with_element_and_field():
    issues = validate_expressions(_parser(BAD_BPMN, BAD_DMN))
    assert _keys(issues) == EXPECTED_BAD
    assert len(issues) == len(EXPECTED_BAD)
    by_key = {(i.element_id, i.field): i for i in issues}

    assert '"__import__" is an invalid variable name' in by_key[("bad_script", "script")].message
    cond = by_key[("f_bad_cond", "conditionExpression")].message
    assert "'gw'" in cond and "'review'" in cond and "SyntaxError" in cond
    assert "SyntaxError" in by_key[("review_timeout", "timeDuration")].message
    assert "'(' was never closed" in by_key[("review", "property:dueIn")].message
    assert '"__class__"' in by_key[("notify", "parameter:recipient")].message
    assert "open() is not available" in by_key[("inner_bad", "script")].message

    amount_cell = by_key[("r_bad", "inputEntry:in_amount")].message
    assert "decision 'risk_bad'" in amount_cell and "rule 'r_bad'" in amount_cell
    assert "'Amount'" in amount_cell and "__import__" in amount_cell
    sector_cell = by_key[("r_bad", "inputEntry:in_sector")].message
    assert "sectorin" in sector_cell and "'Sector'" in sector_cell
    assert '"__class__"' in by_key[("r_bad", "outputEntry:out_class")].message


def test_specs_without_parser():
    parser = _parser(BAD_BPMN, BAD_DMN)
    spec, subs = parser.get_spec("scripting_bad"), parser.get_subprocess_specs("scripting_bad")
    issues = validate_expressions((spec, subs))
    keys = {(i.process_id, i.element_id, i.field) for i in issues}
    # without the parser the flow id is unknown: the gateway is named instead; DMN file is unknown
    expected = {(p, "gw" if e == "f_bad_cond" else e, f) for (_file, p, e, f) in EXPECTED_BAD}
    assert keys == expected
    assert validate_expressions(spec) == [i for i in issues if i.process_id == "scripting_bad"
                                          or i.process_id == "risk_bad"]


def test_multiple_event_definition_and_ignored_prescript():
    issues = validate_expressions(_parser("odd_cases.bpmn"))
    assert _keys(issues) == {
        ("odd_cases.bpmn", "odd_cases", "wait_both", "timeDate"),
        ("odd_cases.bpmn", "odd_cases", "with_prescript", "preScript"),
    }
    [ignored] = [i for i in issues if i.field == "preScript"]
    assert "ignored" in ignored.message


def test_unparseable_process_is_reported_not_raised():
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="no_start" isExecutable="true">
    <bpmn:task id="lonely"/>
  </bpmn:process>
</bpmn:definitions>""", filename="no_start.bpmn")
    [issue] = validate_expressions(parser)
    assert issue.process_id == "no_start" and issue.field == "definition"
    assert "No start event" in issue.message


def test_validator_matches_how_spiffworkflow_evaluates_dmn_cells():
    """The glued-cell check is not pedantry: SpiffWorkflow really evaluates ``sectorin (...)``."""
    engine = RestrictedScriptEngine()
    workflow = SimpleNamespace(script_engine=engine, spec=SimpleNamespace(file=None), data_objects={})
    workflow.top_workflow = workflow
    task = SimpleNamespace(data={"sector": "toys", "amount": 5}, workflow=workflow,
                           task_spec=SimpleNamespace(bpmn_name="t", name="t"))
    dmn = DMNEngine(None)
    assert dmn.evaluate("amount", "> 3", task) is True
    assert dmn.evaluate("sector", '"toys"', task) is True
    assert dmn.evaluate("sector", '? in ("toys", "textiles")', task) is True
    assert dmn.evaluate("sector", ' in ("toys", "textiles")', task) is True
    with pytest.raises(Exception, match="sectorin"):
        dmn.evaluate("sector", 'in ("toys", "textiles")', task)


def test_rejects_other_input():
    with pytest.raises(TypeError):
        validate_expressions("scripting_ok.bpmn")


_DMN_WITHOUT_ID = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">
  <decision name="no id">
    <decisionTable id="t"><output id="o" name="x" typeRef="string"/></decisionTable>
  </decision>
</definitions>
"""


def test_deploy_refusals_name_the_file_and_line_of_decision_tables():
    """A decision without an id is named by its line; decision tables alone are refused naming each file."""
    with pytest.raises(DefinitionError) as no_id:
        parse_sources({"t.dmn": _DMN_WITHOUT_ID})
    assert no_id.value.issues == [{"file": "t.dmn", "line": 3, "element_id": None, "field": "id",
                                   "message": "a <decision> needs an id"}]
    good = _DMN_WITHOUT_ID.replace('<decision name="no id">', '<decision id="ok" name="ok">')
    with pytest.raises(DefinitionError) as alone:
        deploy(SimpleNamespace(services=None), None, {"t.dmn": good}, "designer")
    (issue,) = alone.value.issues
    assert issue["file"] == "t.dmn" and ".bpmn" in issue["message"]


def _rectification_with(value: str) -> SpiffBpmnParser:
    processes = Path(__file__).resolve().parents[2] / "processes"
    text = (processes / "rectification.bpmn").read_text(encoding="utf-8")
    assert 'name="notCompletedBy" value="reinspect"' in text
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_str(text.replace('name="notCompletedBy" value="reinspect"',
                                     f'name="notCompletedBy" value="{value}"').encode("utf-8"),
                        filename="rectification.bpmn")
    parser.add_dmn_files([str(p) for p in processes.glob("*.dmn")])
    return parser


def test_not_completed_by_must_name_other_user_tasks_of_the_process():
    """Four eyes by ``notCompletedBy``: the shipped countersign names the re-inspection; a misspelt id, the task
    itself or a service task would let one person do both, so deploy refuses it naming the element and field."""
    def issues(value):
        return [(i.element_id, i.field, i.message) for i in validate_expressions(_rectification_with(value))
                if i.field == "property:notCompletedBy"]

    assert issues("reinspect") == []
    assert issues("reinspect, reinspekt") == [
        ("countersign", "property:notCompletedBy",
         "names 'reinspekt', which is not a user task of process 'rectify'")]
    assert issues("countersign") == [("countersign", "property:notCompletedBy", "names the task itself")]
