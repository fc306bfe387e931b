"""The designer's service: validation of unsaved XML with file/line/element, deploying an edited file
within the library, the library listing and the semantic diff of two versions."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.bootstrap import build_runtime, form_hasher
from engine.config import load_settings
from engine.errors import DefinitionError, InvalidInput
from engine.runtime import modeling
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import Deployment, ProcessDefinition
from tests.conftest import ROOT

PROCESSES = ROOT / "processes"
INSPECTION = "entity_inspection.bpmn"
#: renames the record_result task (another task has the same name)
RENAMED = ('id="record_result" name="Record the result code"', 'id="record_result" name="Record the result"')


@pytest.fixture
def library(db):
    """The real process library deployed once by ``demo``; yields (runtime, db, form_hash)."""
    settings = load_settings(database_url=db.url)
    rt = build_runtime(settings)
    form_hash = form_hasher(settings)
    with db.tx() as s:
        deploy(rt, s, read_paths([PROCESSES]), "demo", form_hash=form_hash)
    return rt, db, form_hash


def _source() -> str:
    return (PROCESSES / INSPECTION).read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _counts(db) -> tuple[int, int]:
    with db.tx() as s:
        return (s.scalar(select(func.count()).select_from(Deployment)),
                s.scalar(select(func.count()).select_from(ProcessDefinition)))


def test_deployed_library_validates_clean(library):
    rt, db, form_hash = library
    with db.tx() as s:
        assert modeling.validate_file(rt, s, INSPECTION, _source(), form_hash) == []


def test_malformed_xml_names_file_and_line(library):
    rt, db, form_hash = library
    score = '<bpmn:serviceTask id="score"'
    broken = _source().replace(score, score.replace("<bpmn:serviceTask ", "<bpmn:serviceTask <"))
    with db.tx() as s:
        issues = modeling.validate_file(rt, s, INSPECTION, broken, form_hash)
    assert len(issues) == 1
    assert issues[0]["file"] == INSPECTION and issues[0]["line"] == _line_of(broken, "<bpmn:serviceTask <")
    assert issues[0]["message"].startswith("malformed XML")


def test_unknown_operator_is_reported_on_its_element(library):
    rt, db, form_hash = library
    text = _source().replace('id="risk.score"', 'id="risk.nonexistent"')
    with db.tx() as s:
        issues = modeling.validate_file(rt, s, INSPECTION, text, form_hash)
    assert [(i["element_id"], i["field"]) for i in issues] == [("score", "serviceTaskOperator")]
    assert "risk.nonexistent" in issues[0]["message"]
    assert issues[0]["line"] == _line_of(text, '<bpmn:serviceTask id="score"')


def test_bad_expression_and_unknown_form_are_reported_per_element(library):
    rt, db, form_hash = library
    text = (_source().replace('value="workdays(5)"', 'value="workdays(5"')
            .replace('value="result_review"', 'value="no_such_form"'))
    with db.tx() as s:
        issues = modeling.validate_file(rt, s, INSPECTION, text, form_hash)
    assert {(i["element_id"], i["field"]) for i in issues} == {("review", "property:dueIn"), ("review", "formId")}


def test_dmn_cells_are_checked_as_python(library):
    rt, db, form_hash = library
    text = (PROCESSES / "route_by_risk.dmn").read_text(encoding="utf-8")
    bad = text.replace("<text>? in (\"C\", \"D\")</text>", "<text>? in [\"C\", </text>")
    with db.tx() as s:
        issues = modeling.validate_file(rt, s, "route_by_risk.dmn", bad, form_hash)
    assert [(i["element_id"], i["field"]) for i in issues] == [("r_heavy", "inputEntry:in_class")]
    assert issues[0]["file"] == "route_by_risk.dmn"


def test_file_name_must_be_bpmn_or_dmn(library):
    rt, db, form_hash = library
    with db.tx() as s, pytest.raises(InvalidInput):
        modeling.validate_file(rt, s, "../etc/passwd", _source(), form_hash)


def test_deploy_file_versions_only_changed_content(library):
    rt, db, form_hash = library
    before = _counts(db)
    with db.tx() as s:
        same = modeling.deploy_file(rt, s, INSPECTION, _source(), "designer", form_hash)
    assert not any(r.created for r in same) and _counts(db) == before

    moved_only = _source().replace('<dc:Bounds x="57" y="52"', '<dc:Bounds x="97" y="52"')
    assert moved_only != _source()
    with db.tx() as s:  # a layout change is kept: a new version with the same spec
        moved = modeling.deploy_file(rt, s, INSPECTION, moved_only, "designer", form_hash)
    assert {(r.process_id, r.version) for r in moved if r.created} == {("entity_inspection", 2)}

    changed = moved_only.replace('value="workdays(5)"', 'value="workdays(6)"')
    with db.tx() as s:
        results = modeling.deploy_file(rt, s, INSPECTION, changed, "designer", form_hash)
    created = {(r.process_id, r.version) for r in results if r.created}
    assert created == {("entity_inspection", 3)}
    with db.tx() as s:
        v2 = modeling.get_definition(s, "entity_inspection")
        assert (v2.version, v2.deployed_by) == (3, "designer") and "workdays(6)" in v2.bpmn_xml
        assert "workdays(6)" in modeling.library_files(s)[INSPECTION]
        entry = next(e for e in modeling.list_definitions(s) if e.process_id == "entity_inspection")
        assert [v.version for v in entry.versions] == [3, 2, 1]


def test_invalid_deploy_writes_nothing(library):
    rt, db, form_hash = library
    before = _counts(db)
    with db.tx() as s, pytest.raises(DefinitionError) as err:
        modeling.deploy_file(rt, s, INSPECTION, _source().replace('id="risk.score"', 'id="nope"'), "designer",
                             form_hash)
    assert err.value.issues[0]["element_id"] == "score"
    assert _counts(db) == before


def test_diff_lists_added_removed_changed_and_moved(library):
    rt, db, form_hash = library
    text = (_source()
            .replace(*RENAMED)
            .replace('value="workdays(5)"', 'value="workdays(6)"')
            .replace('<bpmn:endEvent id="end_case" name="Case closed">', '<bpmn:endEvent id="end_case_new">')
            .replace('bpmnElement="end_case"', 'bpmnElement="end_case_new"')
            .replace('targetRef="end_case"', 'targetRef="end_case_new"')
            .replace('<dc:Bounds x="57" y="52"', '<dc:Bounds x="97" y="52"'))
    with db.tx() as s:
        modeling.deploy_file(rt, s, INSPECTION, text, "designer", form_hash)
    with db.tx() as s:
        changes = {c.element_id: c for c in modeling.diff_versions(s, "entity_inspection", 1, 2)}
    assert changes["end_case_new"].change == "added"
    assert changes["end_case"].change == "removed"
    assert changes["record_result"].change == "changed" and changes["record_result"].fields == ("@name",)
    assert changes["review"].change == "changed" and "property[dueIn]" in changes["review"].fields[0]
    assert changes["f_case_done"].change == "changed" and changes["f_case_done"].fields == ("@targetRef",)
    assert changes["start"].change == "moved"
    assert "score" not in changes
    with db.tx() as s:
        assert modeling.diff_versions(s, "entity_inspection", 1, 1) == []


def test_decision_ids_come_from_the_dmn_files(library):
    _rt, db, _fh = library
    with db.tx() as s:
        ids = modeling.decision_ids(modeling.library_files(s))
    assert {"route_by_risk", "hazard_grade"} <= set(ids)


def test_simulation_entity_bounds_are_checked():
    with pytest.raises(InvalidInput):
        modeling.run_simulation(entities=5)
