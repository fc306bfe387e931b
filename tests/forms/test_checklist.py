"""The merged checklist (一表通查): clause-level de-duplication across departments."""
from __future__ import annotations

import random

import pytest
import yaml

from forms.checklist import merge_checklist, normalise
from forms.schema import bind_clauses
from forms.validate import validate

from .conftest import DATA


@pytest.fixture
def items():
    return yaml.safe_load((DATA / "pharmacy_items.yaml").read_text(encoding="utf-8"))


def test_three_departments_merge_13_into_8(items):
    merged = merge_checklist(items)
    assert (merged.clauses_before, merged.clauses_after, merged.saved) == (13, 8, 5)
    by_code = {c["code"]: c for c in merged.field["clauses"]}
    # items are taken in code order: GG-01, JG-01, YP-01, YP-02
    assert list(by_code) == ["GG-01-01", "GG-01-02", "GG-01-03", "GG-01-04", "JG-01-03", "YP-01-02", "YP-01-04",
                             "YL-02-02"]
    licence = by_code["GG-01-01"]  # same text (。) as GEN-01, which three items share by code
    assert [(c["item"], c["clause"]) for c in licence["covers"]] == [
        ("GG-01", "GG-01-01"), ("JG-01", "GEN-01"), ("YP-01", "GEN-01"), ("YP-02", "GEN-01")]
    assert licence["basis"] == ["《市场主体登记管理条例》第三十六条", "《药品经营质量管理规范》第一百五十条"]
    otc = by_code["GG-01-03"]  # （ＯＴＣ） vs (OTC)
    assert {c["department"] for c in otc["covers"]} == {"广告监测科", "药品监管科"}
    assert otc["basis"] == ["《药品经营质量管理规范》第一百六十一条"]
    price = by_code["GG-01-04"]  # "商品明码标价, 标价签内容完整" vs "商品明码标价，标价签内容完整"
    assert [c["clause"] for c in price["covers"]] == ["GG-01-04", "JG-01-02"]
    assert price["basis"] == ["《价格法》第十三条", "《明码标价和禁止价格欺诈规定》第五条"]
    assert [c["clause"] for c in by_code["YP-01-04"]["covers"]] == ["YP-01-04"]


def test_order_of_input_does_not_matter(items):
    expected = merge_checklist(items).field
    for seed in range(5):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert merge_checklist(shuffled).field == expected


def test_sameness_is_transitive():
    items = [
        {"code": "A", "name": "a", "department": "d1", "clauses": [{"code": "X", "text": "甲"}]},
        {"code": "B", "name": "b", "department": "d2", "clauses": [{"code": "Y", "text": "甲。"}]},
        {"code": "C", "name": "c", "department": "d3", "clauses": [{"code": "Y", "text": "乙"}]},
    ]
    merged = merge_checklist(items)
    assert merged.clauses_after == 1
    assert [c["clause"] for c in merged.field["clauses"][0]["covers"]] == ["X", "Y", "Y"]


def test_normalise():
    assert normalise("营业执照，亮照 经营。") == normalise("营业执照,亮照经营") == "营业执照亮照经营"
    assert normalise("（ＯＴＣ）") == normalise("(otc)") == "otc"
    assert normalise("温度≤25℃") != normalise("温度25℃")  # symbols carry meaning


def test_merged_field_binds_into_a_form_and_validates(items, sample):
    merged = merge_checklist(items, name="runtime_checks")
    assert merged.field["type"] == "checklist" and merged.field["label"]["zh"] == "一表通查检查表"
    form = bind_clauses(sample, "runtime_checks", merged.field)
    clauses = form.field("runtime_checks").clauses
    assert len(clauses) == 8
    assert clauses[0].departments == ("价格监督检查科", "广告监测科", "药品监管科")
    answers = {c.code: {"result": "compliant"} for c in clauses}
    data = {"uscc": "91440101MA5C000010", "visited": True, "decision": "approve",
            "checks": {"GEN-01": "compliant", "4.2.1": "compliant"}, "runtime_checks": answers}
    assert validate(form, data)[1] == {}


def test_bad_items_are_rejected():
    with pytest.raises(ValueError, match="needs non-empty string code"):
        merge_checklist([{"code": "A", "clauses": []}])
    with pytest.raises(ValueError, match="no spaces or brackets"):
        merge_checklist([{"code": "A", "name": "a", "department": "d", "clauses": [{"code": "x[1]", "text": "t"}]}])
    with pytest.raises(ValueError, match="non-empty text"):
        merge_checklist([{"code": "A", "name": "a", "department": "d", "clauses": [{"code": "x", "text": "。"}]}])
