"""The form language's part of issue 18's "decisions the DMN makes have a consumer": ``default_from`` (a task data
key that becomes the default at run time), ``readonly`` (shown, never entered) and ``visible_if.differs_from``
(a reason owed when the chosen value differs from the decided one); and the shipped inspection and
re-inspection forms built with them. Driven by the real processes: tests/supervision/test_decided_method.py."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from forms.errors import FormDefinitionError
from forms.loader import parse_form_text
from forms.render import render_form
from forms.validate import bind_runtime, engine_hook, validate

from .conftest import ROOT, ref

HEAD = "id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n"
OPTIONS = ("options: [{value: on_site, label: {zh: 现场, en: On site}},"
           " {value: documentary, label: {zh: 书面, en: Paper}}]")
FORM = HEAD + f"""\
  - {{name: decided, type: select, label: {{zh: 决定的方式, en: Decided}}, readonly: true, default_from: m, {OPTIONS}}}
  - {{name: method, type: select, label: {{zh: 方式, en: Method}}, required: true, default_from: m, {OPTIONS}}}
  - name: why
    type: textarea
    label: {{zh: 理由, en: Reason}}
    required: true
    visible_if: {{field: method, differs_from: decided}}
"""
DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


@pytest.fixture(scope="module")
def form():
    return parse_form_text(FORM, "inline.yaml")


def test_default_from_binds_the_task_data_value(form):
    assert form.field("method").default is None and form.field("method").default_from == "m"
    bound = bind_runtime(form, {"m": "documentary"})
    assert bound.field("method").default == bound.field("decided").default == "documentary"
    assert validate(bound, {}) == ({"decided": "documentary", "method": "documentary", "why": None}, {})
    # an empty value, or one that is not an option, binds nothing (the field keeps its static default)
    for data in (None, {}, {"m": ""}, {"m": "in_person"}, {"m": 3}):
        assert bind_runtime(form, data).field("method").default is None


def test_another_method_needs_a_reason(form):
    bound = bind_runtime(form, {"m": "on_site"})
    clean, errors = validate(bound, {"method": "documentary"})
    assert errors == {"why": "“方式”选择了“书面”，与决定的“现场”不同，须填写理由。"}
    assert validate(bound, {"method": "documentary"}, lang="en")[1] == \
        {"why": "“Paper” as “Method” differs from the decided “On site”: give a reason."}
    clean, errors = validate(bound, {"method": "documentary", "why": "投诉举报"})
    assert errors == {} and clean == {"decided": "on_site", "method": "documentary", "why": "投诉举报"}
    # following the decision, a reason does not apply (the page hides it; a value sent anyway is refused)
    assert set(validate(bound, {"method": "on_site", "why": "x"})[1]) == {"why"}
    # nothing decided: nothing to deviate from, the officer chooses
    assert validate(form, {"method": "documentary"}) == ({"decided": None, "method": "documentary", "why": None}, {})
    # the missing method is one error, not two
    assert set(validate(bound, {"method": ""})[1]) == {"method"}


def test_a_read_only_value_is_never_entered(form):
    bound = bind_runtime(form, {"m": "on_site"})
    assert validate(bound, {"decided": "on_site", "method": "on_site"})[1] == {}  # echoed back (the hidden input)
    assert validate(bound, {"decided": "documentary", "method": "documentary"}, lang="en")[1] == {
        "decided": "This value is set by the process and cannot be changed.",
        "why": "“Paper” as “Method” differs from the decided “On site”: give a reason."}
    assert validate(form, {"decided": "on_site", "method": "on_site"})[1] == \
        {"decided": "此项由流程确定，不能修改。"}  # nothing decided: nothing to submit either


def test_rendered_with_the_decision_shown_and_proposed(form):
    html = str(render_form(bind_runtime(form, {"m": "documentary"}), {}, {}, "zh", "tok"))
    assert '<output class="rf-readonly" id="f-decided" aria-labelledby="f-decided-label">书面</output>' in html
    assert '<input type="hidden" name="decided" value="documentary">' in html
    assert '<option value="documentary" selected>书面</option>' in html
    assert 'data-visible-if-field="method" data-visible-if-differs-from="decided"' in html
    assert "—" in str(render_form(form, {}, {}, "en", "tok"))  # nothing decided
    assert 'name="decided"' not in str(render_form(form, {}, {}, "en", "tok"))


@pytest.mark.parametrize("fields, key, fragment", [
    ("  - {name: a, type: text, label: {zh: a, en: a}, readonly: true, required: true}\n",
     "fields[0].required", "read-only field cannot be required"),
    ("  - {name: a, type: evidence, label: {zh: a, en: a}, readonly: true}\n",
     "fields[0].readonly", "unknown key 'readonly'"),
    ("  - {name: a, type: text, label: {zh: a, en: a}, default_from: 'not a key'}\n",
     "fields[0].default_from", "not a valid identifier"),
    ("  - name: t\n    type: table\n    label: {zh: a, en: a}\n"
     "    columns: [{name: c, type: text, label: {zh: a, en: a}, default_from: x}]\n",
     "fields[0].columns[0].default_from", "unknown key 'default_from'"),
    ("  - {name: a, type: text, label: {zh: a, en: a}}\n"
     "  - {name: b, type: text, label: {zh: b, en: b}, visible_if: {field: a, differs_from: c}}\n",
     "fields[1].visible_if.differs_from", "not another field defined before"),
    ("  - {name: a, type: text, label: {zh: a, en: a}}\n"
     "  - {name: b, type: text, label: {zh: b, en: b}, visible_if: {field: a, differs_from: a}}\n",
     "fields[1].visible_if.differs_from", "not another field defined before"),
    ("  - {name: a, type: text, label: {zh: a, en: a}}\n  - {name: n, type: integer, label: {zh: n, en: n}}\n"
     "  - {name: b, type: text, label: {zh: b, en: b}, visible_if: {field: a, differs_from: n}}\n",
     "fields[2].visible_if.differs_from", "cannot compare the text field 'a' with the integer field 'n'"),
    ("  - {name: a, type: text, label: {zh: a, en: a}}\n  - {name: c, type: text, label: {zh: c, en: c}}\n"
     "  - {name: b, type: text, label: {zh: b, en: b}, visible_if: {field: a, differs_from: c, equals: x}}\n",
     "fields[2].visible_if", "exactly one of 'equals', 'in' or 'differs_from'"),
])
def test_definition_errors(fields, key, fragment):
    with pytest.raises(FormDefinitionError) as exc:
        parse_form_text(HEAD + fields, "inline.yaml")
    hits = [i for i in exc.value.issues if i.key == key]
    assert hits and fragment in hits[0].message, [str(i) for i in exc.value.issues]


# ---------------------------------------------------------------------------------------------- the shipped forms
def dmn_outputs(file: str, output: str) -> set[str]:
    """Every value a decision table's ``output`` column can give (string literals)."""
    root = ET.parse(ROOT / "processes" / file).getroot()
    table = root.find(f"{DMN}decision/{DMN}decisionTable")
    col = [o.get("name") for o in table.findall(f"{DMN}output")].index(output)
    return {rule.findall(f"{DMN}outputEntry")[col].find(f"{DMN}text").text.strip('"')
            for rule in table.findall(f"{DMN}rule")}


@pytest.mark.parametrize("form_id, dmn, output", [("inspection_result", "route_by_risk.dmn", "method"),
                                                  ("rectification_review", "hazard_grade.dmn", "reinspection_method")])
def test_every_decided_method_is_a_choice_of_its_form(shipped, form_id, dmn, output):
    """A decision the form could not bind would silently leave the officer free: the table's values and the form's
    options must agree, and the form reads the table's output."""
    form = shipped.get(form_id)
    assert form.version >= 2
    values = dmn_outputs(dmn, output)
    assert values == {"on_site", "documentary"}
    for name in ("decided_method", "method"):
        f = form.field(name)
        assert f.default_from == output and values <= {o.value for o in f.options}
    assert form.field("decided_method").readonly
    reason = form.field("method_deviation_reason")
    assert reason.required and reason.visible_if.differs_from == "decided_method"
    assert reason.label.zh and reason.label.en


def test_shipped_inspection_form_through_the_engine_hook(shipped):
    hook = engine_hook(shipped)
    task = {"method": "documentary", "merged_checklist": None}  # class A: documentary
    data = {"inspection_date": "2026-03-03", "credentials_shown": True, "party_signed": True,
            "result_code": "result_7", "evidence": [ref()]}
    clean, errors = hook("inspection_result", data, task)
    assert errors == {} and (clean["decided_method"], clean["method"]) == ("documentary", "documentary")
    clean, errors = hook("inspection_result", {**data, "method": "on_site"}, task)
    assert errors == {"method_deviation_reason": "“检查方式”选择了“现场检查”，与决定的“书面检查”不同，须填写理由。"}
    data |= {"method": "on_site", "method_deviation_reason": "投诉举报"}
    clean, errors = hook("inspection_result", data, task)
    assert errors == {} and (clean["decided_method"], clean["method"], clean["method_deviation_reason"]) == \
        ("documentary", "on_site", "投诉举报")
