"""Validation of submitted data: coercion (HTML strings and JSON), required, ranges, patterns, options,
visible_if, tables, evidence, checklists, unknown fields; messages in Chinese and English."""
from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from forms.checklist import merge_checklist
from forms.schema import bind_clauses
from forms.validate import engine_hook, nest, validate

from .conftest import SHA, ref


def check(form, data, lang="zh"):
    return validate(form, data, lang=lang)


def test_valid_json(sample, valid_sample_data):
    clean, errors = check(sample, valid_sample_data)
    assert errors == {}
    assert clean["uscc"] == "91440101MA5C000010"
    assert clean["level"] == "normal"  # default of a visible field
    assert clean["notify"] is True
    assert clean["reason"] is None and clean["absent_reason"] is None  # hidden
    assert clean["penalties"] == [] and clean["photos"] == [] and clean["findings"] == []
    assert clean["checks"] == {"GEN-01": {"result": "compliant", "note": None, "evidence": []},
                               "4.2.1": {"result": "not_applicable", "note": None, "evidence": []}}
    assert clean["runtime_checks"] == {}
    assert set(clean) == {f.name for f in sample.fields}
    json.dumps(clean)  # task data must be JSON


def test_html_strings_are_coerced(sample, valid_sample_data):
    form = MultiDict([
        ("csrf_token", "t0k3n"),
        ("uscc", " 91440101MA5C000010 "),
        ("staff", "１２"),  # full-width digits from a Chinese IME
        ("fine", "2500.50"),
        ("visited", "true"),
        ("notify", "false"),
        ("visit_date", "2024/05/01"),
        ("served_at", "2024-05-01T10:30"),
        ("decision", "approve"),
        ("level", "urgent"),
        ("penalties", "warning"), ("penalties", "fine"),
        ("fine_amount", "3000"),
        ("photos", json.dumps(ref("a.jpg", SHA.upper(), 10))),
        ("checks[GEN-01][result]", "compliant"), ("checks[GEN-01][note]", ""),
        ("checks[4.2.1][result]", "non_compliant"), ("checks[4.2.1][note]", " 药师不在岗 "),
        ("checks[4.2.1][evidence]", json.dumps(ref("b.jpg"))),
    ])
    clean, errors = check(sample, form)
    assert errors == {}
    assert clean["uscc"] == "91440101MA5C000010"
    assert clean["staff"] == 12
    assert clean["fine"] == 2500.5
    assert clean["visited"] is True and clean["notify"] is False
    assert clean["visit_date"] == "2024-05-01"
    assert clean["served_at"] == "2024-05-01T02:30:00+00:00"  # China time → UTC
    assert clean["penalties"] == ["warning", "fine"]
    assert clean["fine_amount"] == 3000.0
    assert clean["photos"] == [{"sha256": "ab" * 32, "filename": "a.jpg", "size": 10}]
    assert clean["checks"]["4.2.1"] == {"result": "non_compliant", "note": "药师不在岗",
                                        "evidence": [ref("b.jpg")]}
    assert "csrf_token" not in clean


@pytest.mark.parametrize("field, value, zh, en", [
    ("staff", "1.5", "请输入整数。", "Enter a whole number."),
    ("staff", True, "请输入整数。", "Enter a whole number."),
    ("staff", "-1", "不能小于 0。", "Must be at least 0."),
    ("staff", 501, "不能大于 500。", "Must be at most 500."),
    ("fine", "12.345", "最多保留 2 位小数。", "Use at most 2 decimal places."),
    ("fine", "abc", "请输入数字。", "Enter a number."),
    ("fine", "nan", "请输入数字。", "Enter a number."),
    ("fine", 30000.01, "不能大于 30000。", "Must be at most 30000."),
    ("visited", "maybe", "请选择“是”或“否”。", "Choose yes or no."),
    ("visit_date", "2024-02-30", "请输入有效日期（年-月-日）。", "Enter a valid date (YYYY-MM-DD)."),
    ("visit_date", "2019-12-31", "不能早于 2020-01-01。", "Must not be before 2020-01-01."),
    ("visit_date", "2031-01-01", "不能晚于 2030-12-31。", "Must not be after 2030-12-31."),
    ("served_at", "yesterday", "请输入有效的日期和时间。", "Enter a valid date and time."),
    ("uscc", "123", "统一社会信用代码应为18位。", "A USCC has 18 characters."),  # pattern_message
    ("code", "ab", "格式不正确。", "The format is not valid."),
    ("code", "A", "至少需要 2 个字符。", "Enter at least 2 characters."),
    ("code", "ABCDEFG", "不能超过 6 个字符。", "Enter at most 6 characters."),
    ("code", 12, "请输入文字。", "Enter text."),
    ("decision", "maybe", "“maybe”不是可选项。", "“maybe” is not one of the choices."),
    ("decision", 1, "“1”不是可选项。", "“1” is not one of the choices."),
    ("penalties", ["warning", "nope"], "“nope”不是可选项。", "“nope” is not one of the choices."),
    ("penalties", ["warning", "fine", "confiscate"], "最多选择或填写 2 项。", "Give at most 2."),
    ("penalties", ["warning", "warning"], "“warning”重复选择。", "“warning” is chosen twice."),
    ("photos", [ref("a"), ref("b"), ref("c")], "最多选择或填写 2 项。", "Give at most 2."),
    ("photos", [ref(sha="xyz")], "证据的 sha256 必须是 64 位十六进制数。",
     "An evidence sha256 must be 64 hexadecimal digits."),
    ("photos", [{"sha256": SHA, "filename": "a.jpg"}], "证据引用无效（需要 sha256、文件名和大小）。",
     "Invalid evidence reference (needs sha256, filename and size)."),
    ("photos", [{**ref(), "path": "/etc/passwd"}], "证据引用无效（需要 sha256、文件名和大小）。",
     "Invalid evidence reference (needs sha256, filename and size)."),
    ("photos", [ref("../../x")], "证据引用无效（需要 sha256、文件名和大小）。",
     "Invalid evidence reference (needs sha256, filename and size)."),
    ("photos", "not json", "证据引用无效（需要 sha256、文件名和大小）。",
     "Invalid evidence reference (needs sha256, filename and size)."),
])
def test_bad_values_in_both_languages(sample, valid_sample_data, field, value, zh, en):
    data = {**valid_sample_data, field: value}
    assert check(sample, data)[1] == {field: zh}
    assert check(sample, data, "en")[1] == {field: en}


def test_json_numbers(sample, valid_sample_data):
    clean, errors = check(sample, {**valid_sample_data, "staff": 12.0, "fine": 7})
    assert errors == {} and clean["staff"] == 12 and isinstance(clean["staff"], int) and clean["fine"] == 7.0


def test_required(sample):
    clean, errors = check(sample, {})
    assert errors == {"uscc": "此项为必填项。", "visited": "此项为必填项。", "decision": "此项为必填项。",
                      "checks": "此项为必填项。"}
    assert check(sample, {}, "en")[1]["uscc"] == "This field is required."
    # empty strings and whitespace count as missing
    assert check(sample, {"uscc": "   ", "decision": ""})[1]["uscc"] == "此项为必填项。"


def test_visible_if_required_only_when_visible(sample, valid_sample_data):
    clean, errors = check(sample, {**valid_sample_data, "decision": "reject"})
    assert errors == {"reason": "此项为必填项。"}
    assert clean["level"] is None  # hidden by decision=reject
    clean, errors = check(sample, {**valid_sample_data, "decision": "reject", "reason": "材料不全"})
    assert errors == {} and clean["reason"] == "材料不全"
    # bool equals false
    _, errors = check(sample, {**valid_sample_data, "visited": False}, "en")
    assert errors == {"absent_reason": "This field is required."}
    # multiselect: visible when the list contains the value
    _, errors = check(sample, {**valid_sample_data, "penalties": ["fine"]})
    assert errors == {"fine_amount": "此项为必填项。"}


def test_value_for_hidden_field_is_an_error_not_dropped(sample, valid_sample_data):
    _, errors = check(sample, {**valid_sample_data, "reason": "写了但不适用"})
    assert errors == {"reason": "根据“结论”的填写，此项不适用，请清空。"}
    _, errors = check(sample, {**valid_sample_data, "reason": "x"}, "en")
    assert errors == {"reason": "This field does not apply given “Decision”; clear it."}
    # a hidden field holding its own default (e.g. a pre-filled input) is fine
    clean, errors = check(sample, {**valid_sample_data, "decision": "reject", "reason": "r", "level": "normal"})
    assert errors == {} and clean["level"] is None
    # an empty value for a hidden field is fine
    assert check(sample, {**valid_sample_data, "reason": ""})[1] == {}


def test_unknown_fields_are_errors(sample, valid_sample_data):
    _, errors = check(sample, {**valid_sample_data, "bogus": "1", "findings": [{"clause": "x", "grade": "low",
                                                                                "colour": "red"}]})
    assert errors == {"bogus": "表单中没有此字段。", "findings[0][colour]": "表单中没有此字段。"}
    _, errors = check(sample, {**valid_sample_data, "bogus": "1"}, "en")
    assert errors == {"bogus": "This form has no such field."}


def test_table_rows_from_html(sample, valid_sample_data):
    data = {**valid_sample_data,
            "findings[0][clause]": "GEN-01", "findings[0][grade]": "high",
            "findings[0][evidence]": json.dumps(ref()),
            "findings[1][clause]": "", "findings[1][grade]": "",  # the blank row the form offers
            "findings[2][clause]": "4.2.1", "findings[2][grade]": ""}
    clean, errors = check(sample, data)
    assert errors == {"findings[2][grade]": "此项为必填项。"}
    data["findings[2][grade]"] = "low"
    clean, errors = check(sample, data)
    assert errors == {}
    assert clean["findings"] == [{"clause": "GEN-01", "grade": "high", "evidence": [ref()]},
                                 {"clause": "4.2.1", "grade": "low", "evidence": []}]


def test_table_row_count(sample, valid_sample_data):
    rows = [{"clause": str(i), "grade": "low"} for i in range(4)]
    assert check(sample, {**valid_sample_data, "findings": rows})[1] == {"findings": "最多选择或填写 3 项。"}
    assert check(sample, {**valid_sample_data, "findings": "x"})[1] == {"findings": "数据格式不正确。"}


def test_checklist_every_clause_needs_a_result(sample, valid_sample_data):
    data = {**valid_sample_data, "checks": {"GEN-01": {"result": "compliant"}}}
    assert check(sample, data)[1] == {"checks[4.2.1][result]": "请为该条款选择检查结果。"}
    assert check(sample, data, "en")[1] == {"checks[4.2.1][result]": "Choose a result for this clause."}
    # rendered rows submit an empty note even when unanswered
    html = {k: v for k, v in valid_sample_data.items() if k != "checks"}
    html.update({"checks[GEN-01][result]": "compliant", "checks[GEN-01][note]": "", "checks[4.2.1][note]": ""})
    assert check(sample, html)[1] == {"checks[4.2.1][result]": "请为该条款选择检查结果。"}


def test_checklist_semantics(sample, valid_sample_data):
    def errs(entries, lang="zh"):
        return check(sample, {**valid_sample_data, "checks": entries}, lang)[1]

    ok = {"result": "compliant"}
    assert errs({"GEN-01": ok, "4.2.1": {"result": "non_compliant"}}) == \
        {"checks[4.2.1][note]": "不符合的条款必须填写问题说明。"}
    assert errs({"GEN-01": ok, "4.2.1": {"result": "non_compliant", "note": "  "}}, "en") == \
        {"checks[4.2.1][note]": "A non-compliant clause needs a note."}
    assert errs({"GEN-01": ok, "4.2.1": {"result": "bad"}}) == \
        {"checks[4.2.1][result]": "检查结果只能是符合、不符合或不适用。"}
    assert errs({"GEN-01": ok, "4.2.1": ok, "9.9": ok}) == {"checks[9.9]": "检查表中没有此条款。"}
    assert errs({"GEN-01": ok, "4.2.1": {**ok, "evidence": [ref(sha="12")]}}) == \
        {"checks[4.2.1][evidence]": "证据的 sha256 必须是 64 位十六进制数。"}
    assert errs({"GEN-01": ok, "4.2.1": {**ok, "score": 5}}) == {"checks[4.2.1][score]": "表单中没有此字段。"}
    # JSON list form and the string shortcut
    assert errs([{"clause": "GEN-01", "result": "compliant"}, {"clause": "4.2.1", "result": "not_applicable"}]) == {}
    assert errs({"GEN-01": "compliant", "4.2.1": "not_applicable"}) == {}


def test_runtime_checklist(sample, valid_sample_data):
    items = [{"code": "I1", "name": "事项", "department": "科室", "clauses": [
        {"code": "X1", "text": "条款一"}, {"code": "X2", "text": "条款二"}]}]
    # unbound: every submitted clause is checked, completeness cannot be
    data = {**valid_sample_data, "runtime_checks": {"X1": {"result": "non_compliant"}}}
    assert check(sample, data)[1] == {"runtime_checks[X1][note]": "不符合的条款必须填写问题说明。"}
    # bound to the merged checklist: every clause must be answered
    bound = bind_clauses(sample, "runtime_checks", merge_checklist(items).field)
    data = {**valid_sample_data, "runtime_checks": {"X1": {"result": "compliant"}}}
    assert check(bound, data)[1] == {"runtime_checks[X2][result]": "请为该条款选择检查结果。"}
    # not required and untouched: fine
    assert check(bound, valid_sample_data)[1] == {}


def test_nest_conflicts_and_bad_input(sample, valid_sample_data):
    assert nest({"a[0][b]": "1", "a[1][b]": "2", "c": "3"}) == {"a": {"0": {"b": "1"}, "1": {"b": "2"}}, "c": "3"}
    _, errors = check(sample, {**valid_sample_data, "findings": "x", "findings[0][clause]": "y"})
    assert errors == {"findings": "数据格式不正确。"}
    assert check(sample, ["not", "a", "mapping"])[1] == {"": "数据格式不正确。"}


def test_engine_hook(shipped):
    hook = engine_hook(shipped)
    clean, errors = hook("plan_approval", {"decision": "reject", "reason": " 比例过高 "})
    assert errors == {}
    assert clean["decision"] == "reject" and clean["reason"] == "比例过高"  # the clean values come back
    assert hook("plan_approval", {"decision": "approve"})[1] == {
        "public_random_value": "此项为必填项。", "public_random_source": "此项为必填项。",
        "notice_date": "此项为必填项。"}
    assert engine_hook(shipped, lang="en")("no_such_form", {}) == ({}, {"": "There is no form “no_such_form”."})
    assert hook("no_such_form", {}, lang="en") == ({}, {"": "There is no form “no_such_form”."})


def test_engine_hook_binds_the_merged_checklist_from_task_data(shipped):
    merged = merge_checklist([{"code": "I1", "name": "事项", "department": "科室", "clauses": [
        {"code": "X1", "text": "条款一"}, {"code": "X2", "text": "条款二"}]}]).field
    data = {"inspection_date": "2025-03-01", "method": "on_site", "credentials_shown": True,
            "result_code": "result_1", "party_signed": True, "checklist": {"X1": {"result": "compliant"}}}
    hook = engine_hook(shipped)
    assert hook("inspection_result", data)[1] == {}  # clauses unknown to the hook: each one given is valid
    assert hook("inspection_result", data, {"merged_checklist": merged})[1] == \
        {"checklist[X2][result]": "请为该条款选择检查结果。"}
