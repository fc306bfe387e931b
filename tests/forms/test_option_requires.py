"""``option_requires`` on a select and ``must_be_yes`` on a yes/no field (issue 18: the filing checks gate the
recommendation to file; an inspection needs the certificates shown): choosing the option needs each named yes/no
field answered yes, a must-be-yes field refuses no — each refusal names the field, in either language; a bad
declaration is refused when the form is loaded, naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from forms.errors import FormDefinitionError
from forms.loader import FormRegistry, parse_form_text
from forms.validate import validate

FORM = """id: gate
version: 1
title: {zh: 门, en: Gate}
fields:
  - {name: evidence_ok, type: bool, label: {zh: 证据, en: Evidence}, required: true}
  - {name: ours, type: bool, label: {zh: 管辖, en: Ours}, required: true}
  - name: decision
    type: select
    label: {zh: 建议, en: Recommendation}
    required: true
    options:
      - {value: go, label: {zh: 立案, en: File}}
      - {value: stop, label: {zh: 不立案, en: Do not file}}
    option_requires: %s
"""


def test_the_option_needs_every_named_field_answered_yes():
    form = parse_form_text(FORM % "{go: [evidence_ok, ours]}")
    clean, errors = validate(form, {"evidence_ok": True, "ours": False, "decision": "go"})
    assert errors == {"ours": "“建议”选择“立案”时，此项必须为“是”。"}
    _, errors = validate(form, {"evidence_ok": False, "ours": False, "decision": "go"}, lang="en")
    assert errors == {"evidence_ok": "“File” as “Recommendation” needs yes here.",
                      "ours": "“File” as “Recommendation” needs yes here."}
    assert validate(form, {"evidence_ok": True, "ours": True, "decision": "go"})[1] == {}
    assert validate(form, {"evidence_ok": False, "ours": False, "decision": "stop"})[1] == {}


@pytest.mark.parametrize("declaration, problem", [
    ("{maybe: [ours]}", "'maybe' is not an option"),
    ("{go: [decision_date]}", "'decision_date' is not a yes/no field defined before this one"),
    ("{go: []}", "non-empty list"),
    ("[ours]", "mapping of option values"),
])
def test_bad_declarations_are_refused_naming_the_key(declaration, problem):
    with pytest.raises(FormDefinitionError) as exc:
        parse_form_text(FORM % declaration)
    assert any(problem in i.message and i.key.startswith("fields[2].option_requires") for i in exc.value.issues), \
        [str(i) for i in exc.value.issues]


def test_the_lead_verification_form_gates_filing_on_the_three_conditions():
    form = FormRegistry(Path(__file__).resolve().parents[2] / "forms" / "definitions").get("lead_verification")
    data = {"lead_source": "complaint", "verified_facts": "核查属实", "prima_facie_evidence": True,
            "within_jurisdiction": True, "within_limitation": False, "recommendation": "file_case", "reason": "r"}
    assert set(validate(form, data)[1]) == {"within_limitation"}
    assert validate(form, {**data, "recommendation": "no_case"})[1] == {}


def test_must_be_yes_refuses_no_with_the_requirement():
    """Issue 18: "credentials shown: no" is not an inspection the law recognises."""
    form = FormRegistry(Path(__file__).resolve().parents[2] / "forms" / "definitions").get("inspection_result")
    data = {"inspection_date": "2026-03-03", "method": "on_site", "credentials_shown": False,
            "result_code": "result_1", "party_signed": True, "checklist": {}}
    errors = validate(form, data)[1]
    assert errors["credentials_shown"].startswith("执法人员实施检查时必须出示执法证件")
    assert validate(form, data, lang="en")[1]["credentials_shown"].startswith("Officers must show")
    assert "credentials_shown" not in validate(form, {**data, "credentials_shown": True})[1]
    with pytest.raises(FormDefinitionError) as bad:
        parse_form_text(FORM.replace("required: true}\n  - {name: ours", "required: true, must_be_yes: yes}\n"
                                     "  - {name: ours", 1) % "{go: [ours]}")
    assert any(i.key == "fields[0].must_be_yes" for i in bad.value.issues), [str(i) for i in bad.value.issues]
