"""The shipped forms: every one loads, renders in both languages, and accepts a realistic submission."""
from __future__ import annotations

import pytest

from engine.bootstrap import form_hasher
from engine.config import load_settings
from forms.render import render_form
from forms.validate import validate

from .conftest import SHIPPED, ref

EXPECTED = {"campaign_plan", "plan_approval", "inspection_result", "result_review", "rectification_review",
            "extension_request", "lead_verification", "case_filing", "investigation", "pre_penalty_notice",
            "hearing", "penalty_decision", "document_service", "execution", "case_close", "legal_review",
            "collective_deliberation", "evidence_hold_decision", "summary_decision", "list_removal_review",
            "transfer_prepare", "transfer_chase", "transfer_refused", "recusal_decision"}


def test_all_expected_forms_ship(shipped):
    assert set(shipped.ids()) == EXPECTED
    assert shipped.check_all() == []


@pytest.mark.parametrize("form_id", sorted(EXPECTED))
def test_loads_and_renders(shipped, form_id):
    form = shipped.get(form_id)
    assert form.id == form_id and form.version >= 1
    assert len(shipped.form_hash(form_id)) == 64
    for f in form.fields:
        assert f.label.zh and f.label.en
    for lang in ("zh", "en"):
        html = str(render_form(form, {}, {}, lang, "tok"))
        assert f'data-form-id="{form_id}"' in html


def test_engine_digest_matches(shipped):
    """The engine hashes the same file bytes (engine.bootstrap.form_hasher)."""
    digest = form_hasher(load_settings(forms_dir=str(SHIPPED)))
    for form_id in shipped.ids():
        assert digest(form_id) == shipped.form_hash(form_id)


def test_result_codes_are_prefixed(shipped):
    codes = [o.value for o in shipped.get("inspection_result").field("result_code").options]
    assert all(c.startswith("result_") for c in codes)
    assert {"result_1", "result_A", "result_E", "result_B", "result_C", "result_6", "result_8", "result_12",
            "result_F"} <= set(codes)
    assert len(codes) == 17


SUBMISSIONS = {
    "campaign_plan": {
        "name": "2025年药品零售企业双随机抽查", "year": "2025", "lead_department": "药品监管科",
        "joint_check": "true", "joint_departments": "价格监督检查科\n广告监测科",
        "items[0][item_code]": "YP-01", "items[0][item_name]": "药品经营质量检查", "items[0][department]": "药品监管科",
        "items[0][method]": "on_site", "items[1][item_code]": "", "items[1][item_name]": "",
        "items[1][department]": "", "items[1][method]": "",
        "jurisdiction": "440604", "window_start": "2025-04-01", "window_end": "2025-06-30", "capacity": "120",
    },
    "plan_approval": {"decision": "approve", "public_random_value": "03 11 17 22 28 31 + 09",
                      "public_random_source": "中国福利彩票双色球第2025035期", "notice_date": "2025-03-25"},
    "inspection_result": {
        "inspection_date": "2025-04-10", "method": "on_site", "credentials_shown": True, "result_code": "result_A",
        "checklist": {"GEN-01": {"result": "non_compliant", "note": "未悬挂药品经营许可证", "evidence": [ref()]}},
        "findings": [{"item_code": "YP-01", "clause": "GEN-01", "description": "未悬挂药品经营许可证",
                      "hazard_grade": "low", "evidence": [ref()]}],
        "party_signed": True,
    },
    "result_review": {"decision": "approve", "hazard_grade_confirmed": "low",
                      "public_summary": "发现问题，已责令限期改正。"},
    "rectification_review": {"reinspection_date": "2025-05-10", "method": "on_site", "outcome": "new_problem",
                             "description": "许可证已悬挂，发现冷藏柜温度记录缺失。",
                             "new_findings": [{"item_code": "YP-01", "clause": "YP-01-04",
                                               "description": "温度记录缺失", "hazard_grade": "medium"}],
                             "evidence": [ref("复查.jpg")]},
    "extension_request": {"received_on": "2025-05-05", "reason": "许可证补办中", "requested_until": "2025-05-30",
                          "decision": "approve", "extension_days": 10, "opinion": "同意延期一次。"},
    "lead_verification": {"lead_source": "reinspection", "verified_facts": "逾期未整改", "prima_facie_evidence": True,
                          "within_jurisdiction": True, "within_limitation": True, "recommendation": "file_case",
                          "facts_clear": True, "legal_basis": "《食品安全法》第一百二十六条",
                          "proposed_penalties": ["fine"], "proposed_fine": "5000", "reason": "责令改正后拒不改正"},
    "case_filing": {"decision": "file", "case_number": "佛禅市监立〔2025〕88号", "cause": "未按规定亮照经营",
                    "filing_date": "2025-06-01",
                    "handlers": [{"name": "张三", "cert_no": "44060001"}, {"name": "李四", "cert_no": "44060002"}]},
    "investigation": {"investigators": [{"name": "张三", "cert_no": "44060001"},
                                        {"name": "李四", "cert_no": "44060002"}],
                      "facts": "经查……", "evidence": [ref("询问笔录.pdf")], "evidence_hold": True,
                      "hold_items": "过期药品12盒", "hold_on": "2025-06-10", "conclusion": "penalty",
                      "proposed_penalties": ["warning", "fine"], "proposed_fine": "3000", "complex_case": False},
    "pre_penalty_notice": {"notice_number": "佛禅市监罚告〔2025〕12号", "notice_date": "2025-06-20", "facts": "……",
                           "legal_basis": "《市场主体登记管理条例》第四十九条", "proposed_penalties": ["fine"],
                           "proposed_fine": "3000"},
    "hearing": {"requested": False},
    "penalty_decision": {"decision_type": "penalty", "penalties": ["warning", "fine"], "fine_amount": "3000.00",
                         "legal_basis": "《市场主体登记管理条例》第四十九条",
                         "decision_number": "佛禅市监罚〔2025〕30号", "decision_date": "2025-07-01",
                         "reasoning": "……"},
    "legal_review": {"legal_review_outcome": "supplement", "legal_review_opinion": "违法所得数额证据不足。",
                     "legal_reviewed_on": "2025-06-18"},
    "collective_deliberation": {"deliberated_on": "2025-06-28", "collective_outcome": "agree",
                                "collective_opinion": "同意办案机构拟处罚意见。", "minutes": [ref("集体讨论记录.pdf")],
                                "participants": [{"name": "王局长", "position": "局长"},
                                                 {"name": "李副局长", "position": "副局长"},
                                                 {"name": "张副局长", "position": "副局长"}]},
    "evidence_hold_decision": {"hold_decision": "send_for_testing", "hold_decided_on": "2025-06-16",
                               "hold_decision_note": "送省药品检验所检验", "hold_documents": [ref("送检通知.pdf")]},
    "summary_decision": {"summary_decision_number": "佛禅市监当罚〔2025〕7号", "party_statement": "无异议",
                         "summary_officers": [{"name": "张三", "cert_no": "44060001"},
                                              {"name": "李四", "cert_no": "44060002"}],
                         "served_at": "2025-06-02T10:15", "signed": False, "refusal_note": "拒绝签收，已拍照。",
                         "document": [ref("当场处罚决定书.pdf")]},
    "document_service": {"document": "penalty_decision", "document_number": "佛禅市监罚〔2025〕30号",
                         "method": "in_person", "served_at": "2025-07-02T09:30", "recipient": "某大药房有限公司",
                         "signed": True},
    "execution": {"status": "paid", "amount_paid": 3000, "paid_on": "2025-07-10"},
    "case_close": {"close_reason": "executed", "closed_on": "2025-07-15", "rectification_verified": True,
                   "summary": "罚款已缴纳，整改已核实。"},
    "list_removal_review": {"decision": "reject", "review_note": "证明材料不足，请补充整改照片。"},
    "transfer_prepare": {"receiving": "佛山市禅城区卫生健康局", "facts": "现场检查发现当事人涉嫌非法行医。",
                         "materials": [{"title": "现场检查笔录"}, {"title": "现场照片"}],
                         "evidence": [ref("现场照片.jpg")]},
    "transfer_chase": {"action": "paper_receipt", "received_on": "2025-06-20", "received_by": "陈五",
                       "reference": "禅卫受〔2025〕12号", "accepted": False, "refusal_reason": "不属本机关管辖",
                       "chase_note": ""},
    "transfer_refused": {"outcome": "handled_ourselves", "note": "由本局立案调查。"},
    "recusal_decision": {"recusal_decision": "grant", "recusal_decision_reason": "当事人所述亲属关系属实。",
                         "recusal_decided_on": "2025-04-11", "recusal_prior_acts_valid": True},
}


@pytest.mark.parametrize("form_id", sorted(EXPECTED))
def test_realistic_submission(shipped, form_id):
    clean, errors = validate(shipped.get(form_id), SUBMISSIONS[form_id])
    assert errors == {}
    assert set(clean) == {f.name for f in shipped.get(form_id).fields}


def test_penalty_decision_needs_the_fine_only_when_fining(shipped):
    form = shipped.get("penalty_decision")
    data = {k: v for k, v in SUBMISSIONS["penalty_decision"].items() if k != "fine_amount"}
    assert validate(form, data, lang="en")[1] == {"fine_amount": "This field is required."}
    data["penalties"] = ["warning"]
    assert validate(form, data)[1] == {}


def test_case_filing_needs_two_handlers(shipped):
    data = {**SUBMISSIONS["case_filing"], "handlers": [{"name": "张三", "cert_no": "44060001"}]}
    assert validate(shipped.get("case_filing"), data)[1] == {"handlers": "至少选择或填写 2 项。"}


def test_inspection_result_recusal_request_goes_with_the_result(shipped):
    """A recusal request names the members and the party's reason; the inspection does not stop for it (Administrative
    Penalty Law art. 43): the result is still required."""
    form = shipped.get("inspection_result")
    base = {**SUBMISSIONS["inspection_result"], "recusal_requested": True}
    assert set(validate(form, base, lang="en")[1]) == {"recusal_against", "recusal_reason"}
    clean, errors = validate(form, {**base, "recusal_against": "D001，demo002", "recusal_reason": "系当事人亲属"})
    assert errors == {} and clean["result_code"] == "result_A" and clean["recusal_against"] == "D001，demo002"
    no_result = {k: v for k, v in base.items() if k != "result_code"}
    assert "result_code" in validate(form, {**no_result, "recusal_against": "D001", "recusal_reason": "亲属"})[1]
    named = {**base, "recusal_against": "张三", "recusal_reason": "亲属"}  # codes or user names, not names
    assert validate(form, named)[1].keys() == {"recusal_against"}
