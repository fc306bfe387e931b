"""Rendering: the expected inputs, labels in both languages, errors next to fields and in a summary."""
from __future__ import annotations

import json
import re

from jinja2 import DictLoader, Environment

from forms.checklist import merge_checklist
from forms.render import html_id, init_jinja, render_form, render_summary
from forms.schema import bind_clauses
from forms.validate import nest, validate

from .conftest import SHA, ref


def inputs(html: str) -> dict[str, list[str]]:
    """name → [tag type ...] of every form control."""
    out: dict[str, list[str]] = {}
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        if name:
            kind = re.search(r'type="([^"]*)"', tag)
            out.setdefault(name.group(1), []).append(kind.group(1) if kind else tag[1:tag.index(" ")])
    return out


def test_expected_inputs(sample):
    html = str(render_form(sample, {}, {}, "zh", "tok"))
    got = inputs(html)
    assert got["csrf_token"] == ["hidden"]
    assert got["uscc"] == ["text"] and got["code"] == ["text"]
    assert got["note"] == ["textarea"]
    assert got["staff"] == ["number"] and got["fine"] == ["number"]
    assert got["visited"] == ["radio", "radio"]
    assert got["visit_date"] == ["date"] and got["served_at"] == ["datetime-local"]
    assert got["decision"] == ["select"]
    assert got["penalties"] == ["checkbox"] * 3
    assert got["findings[0][clause]"] == ["text"] and got["findings[0][grade]"] == ["select"]
    assert got["checks[GEN-01][result]"] == ["radio"] * 3
    assert got["checks[4.2.1][note]"] == ["textarea"]
    assert "photos" not in got  # no reference yet; the file input has no name (uploaded separately)
    assert 'data-evidence-for="photos"' in html
    assert 'data-evidence-for="checks[4.2.1][evidence]"' in html
    assert '<label for="f-uscc">统一社会信用代码' in html
    assert 'step="0.01" min="0" max="30000"' in html
    assert 'min="2020-01-01" max="2030-12-31"' in html
    assert "（元）" in html
    assert "《药品经营质量管理规范》；《药品管理法》" in html
    assert """data-visible-if-field="decision" data-visible-if-values='["reject"]'""" in html
    assert "检查表将在任务运行时生成。" in html  # unbound runtime checklist
    assert 'lang="zh-Hans"' in html and ">提交</button>" in html
    # defaults are shown
    assert 'name="notify" value="true" checked' in html
    assert '<option value="normal" selected>一般</option>' in html


def test_english(sample):
    html = str(render_form(sample, {}, {}, "en"))
    assert '<label for="f-uscc">USCC' in html and "Sample form" in html
    assert "> Compliant</label>" in html and "> Not applicable</label>" in html
    assert 'lang="en"' in html and ">Submit</button>" in html
    assert "csrf_token" not in html
    assert "Licence displayed" in html and "执业药师在岗" in html  # Chinese-only clause text stays Chinese


def test_values_are_shown_and_escaped(sample):
    values = {"uscc": '"><script>alert(1)</script>', "visited": True, "decision": "reject",
              "penalties": ["fine"], "served_at": "2024-05-01T02:30:00+00:00",
              "photos": [ref("现场.jpg", size=2048)],
              "findings": [{"clause": "GEN-01", "grade": "high", "evidence": []}],
              "checks": {"GEN-01": {"result": "non_compliant", "note": "未亮照", "evidence": [ref()]}}}
    html = str(render_form(sample, values, {}, "zh"))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'name="visited" value="true" checked' in html
    assert '<option value="reject" selected>' in html
    assert 'value="fine" checked' in html
    assert 'value="2024-05-01T10:30"' in html  # UTC shown in China time
    assert "现场.jpg" in html and "2.0 kB" in html
    hidden = re.search(r'<input type="hidden" name="photos" value="([^"]*)"', html).group(1)
    assert json.loads(hidden.replace("&#34;", '"')) == ref("现场.jpg", size=2048)
    assert 'name="checks[GEN-01][result]" value="non_compliant" checked' in html
    assert ">未亮照</textarea>" in html
    assert 'name="findings[0][clause]"' in html and 'name="findings[1][clause]"' in html  # one blank row
    assert '<option value="high" selected>高</option>' in html


def test_errors_next_to_fields_and_in_summary(sample, valid_sample_data):
    submitted = {**valid_sample_data, "staff": "x", "checks[4.2.1][result]": "non_compliant",
                 "findings[0][clause]": "GEN-01"}
    del submitted["checks"]
    submitted["checks[GEN-01][result]"] = "compliant"
    _, errors = validate(sample, submitted)
    assert set(errors) == {"staff", "checks[4.2.1][note]", "findings[0][grade]"}
    html = str(render_form(sample, nest(submitted), errors, "zh"))
    assert '<p class="rf-error" id="f-staff-error">请输入整数。</p>' in html
    assert 'id="f-staff" name="staff" aria-describedby="f-staff-error" aria-invalid="true"' in html
    assert '<p class="rf-error" id="f-checks-4.2.1-note-error">不符合的条款必须填写问题说明。</p>' in html
    assert 'id="f-findings-0-grade-error"' in html
    # the summary links to each input, labelled with where it is
    assert 'role="alert"' in html
    assert '<a href="#f-staff">人数：请输入整数。</a>' in html
    assert '<a href="#f-checks-4.2.1-note">检查表 · 4.2.1 · 问题说明：不符合的条款必须填写问题说明。</a>' in html
    assert '<a href="#f-findings-0-grade">发现问题 第 1 行 · 等级：此项为必填项。</a>' in html
    for key in errors:
        assert f'id="{html_id(key)}"' in html
    # the submitted values are kept
    assert 'name="checks[4.2.1][result]" value="non_compliant" checked' in html
    assert 'value="GEN-01"' in html


def test_bound_checklist_rows(sample):
    merged = merge_checklist([
        {"code": "I1", "name": "药品", "department": "药品监管科",
         "clauses": [{"code": "A1", "text": "亮照经营", "basis": "法一"}]},
        {"code": "I2", "name": "价格", "department": "价格监督检查科",
         "clauses": [{"code": "B1", "text": "亮照经营。", "basis": "法二"}]},
    ])
    form = bind_clauses(sample, "runtime_checks", merged.field)
    html = str(render_form(form, {}, {}, "zh"))
    assert inputs(html)["runtime_checks[A1][result]"] == ["radio"] * 3
    assert "runtime_checks[B1]" not in html
    assert "涉及部门：价格监督检查科、药品监管科" in html and "依据：法一；法二" in html
    assert '<th scope="row" id="f-runtime_checks-A1-clause">' in html
    assert 'role="radiogroup" id="f-runtime_checks-A1-result" aria-labelledby="f-runtime_checks-A1-clause"' in html


def test_macros_import_into_another_environment(sample):
    """What the Flask app does: its own environment, its own templates, {% import %} of ours."""
    env = init_jinja(Environment(loader=DictLoader({"page.html": (
        '{% import "forms/macros.html" as forms %}<main>{{ forms.render_form(form, {}, {}, "en", "t") }}</main>')}),
        autoescape=True))
    html = env.get_template("page.html").render(form=sample)
    assert html.startswith("<main>") and 'name="csrf_token" value="t"' in html and "USCC" in html
    assert init_jinja(env) is env  # idempotent


def test_evidence_refs_from_html_round_trip(sample, valid_sample_data):
    """Hidden evidence inputs rendered from clean data validate back to the same references."""
    values = {**valid_sample_data, "photos": [ref("a.jpg", SHA, 5)]}
    html = str(render_form(sample, values, {}, "zh"))
    raw = re.search(r'<input type="hidden" name="photos" value="([^"]*)"', html).group(1).replace("&#34;", '"')
    clean, errors = validate(sample, {**valid_sample_data, "photos": raw})
    assert errors == {} and clean["photos"] == [ref("a.jpg", SHA, 5)]


def test_summary_shows_each_filled_field_read_only(sample):
    values = {"uscc": "91410105341672112H", "note": "", "staff": 12, "fine": 1500.5, "visited": True,
              "notify": False, "decision": "reject", "penalties": ["fine", "warning"], "photos": [ref()],
              "findings": [{"clause": "第十条", "grade": "high"}],
              "checks": {"GEN-01": {"result": "non_compliant", "note": "未亮照"}, "4.2.1": {"result": "compliant"}}}
    html = str(render_summary(sample, values, "zh"))
    assert "<input" not in html and "<select" not in html and "<textarea" not in html
    pairs = dict(re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S))
    labels = {f.name: f.label.get("zh") for f in sample.fields}
    assert pairs[labels["uscc"]] == "91410105341672112H"
    assert labels["note"] not in pairs  # empty: not shown
    assert pairs[labels["staff"]] == "12" and pairs[labels["fine"]] == "1500.5 元"
    assert pairs[labels["visited"]] == "是" and pairs[labels["notify"]] == "否"
    decision = sample.field("decision")
    assert pairs[labels["decision"]] == decision.option("reject").label.get("zh")
    penalties = sample.field("penalties")
    assert pairs[labels["penalties"]] == "、".join(penalties.option(v).label.get("zh") for v in ("fine", "warning"))
    assert "photo.jpg" in pairs[labels["photos"]] and SHA[:12] in pairs[labels["photos"]]
    findings = pairs[labels["findings"]]
    assert findings.count("<tr>") == 2  # the header and the one row: no blank row to fill in
    assert "第十条" in findings and sample.field("findings").column("grade").option("high").label.get("zh") in findings
    checks = pairs[labels["checks"]]
    assert re.search(r"GEN-01.*?亮照经营.*?不符合</td><td>未亮照", checks, re.S)
    assert re.search(r"4\.2\.1.*?符合</td>", checks, re.S)
    en = str(render_summary(sample, values, "en"))
    assert "<dd class=\"rf-type-bool\">Yes</dd>" in en and "Non-compliant" in en
