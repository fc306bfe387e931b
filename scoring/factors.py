"""The twelve risk factors, their valid ranges, categories and the words used in reasons.

This module is the single place that says what a factor *is*; the generator, validation, features, reasons,
the indicator score and the entity table all read it.
"""
from __future__ import annotations

from dataclasses import dataclass

#: GB/T 4754-2017 sections present in a market-regulation registry (S public administration and T
#: international organisations are not registered with market regulation and are rejected).
INDUSTRY_SECTIONS: dict[str, tuple[str, str]] = {
    "A": ("农、林、牧、渔业", "agriculture, forestry, animal husbandry and fishery"),
    "B": ("采矿业", "mining"),
    "C": ("制造业", "manufacturing"),
    "D": ("电力、热力、燃气及水生产和供应业", "electricity, heat, gas and water supply"),
    "E": ("建筑业", "construction"),
    "F": ("批发和零售业", "wholesale and retail trade"),
    "G": ("交通运输、仓储和邮政业", "transport, storage and post"),
    "H": ("住宿和餐饮业", "accommodation and food service"),
    "I": ("信息传输、软件和信息技术服务业", "information transmission, software and IT services"),
    "J": ("金融业", "finance"),
    "K": ("房地产业", "real estate"),
    "L": ("租赁和商务服务业", "leasing and business services"),
    "M": ("科学研究和技术服务业", "scientific research and technical services"),
    "N": ("水利、环境和公共设施管理业", "water, environment and public facilities management"),
    "O": ("居民服务、修理和其他服务业", "resident, repair and other services"),
    "P": ("教育", "education"),
    "Q": ("卫生和社会工作", "health and social work"),
    "R": ("文化、体育和娱乐业", "culture, sports and entertainment"),
}

#: Entity types (企业类型) with the USCC category character used in generated codes.
ENTITY_TYPES: dict[str, tuple[str, str, str]] = {
    "llc_sole": ("一人有限责任公司", "single-shareholder LLC", "1"),
    "llc": ("有限责任公司", "limited liability company", "1"),
    "joint_stock": ("股份有限公司", "joint-stock company", "1"),
    "sole_proprietorship": ("个人独资企业", "sole proprietorship", "1"),
    "partnership": ("合伙企业", "partnership", "1"),
    "branch": ("分公司", "branch", "1"),
    "farmer_coop": ("农民专业合作社", "farmers' cooperative", "3"),
}

#: Districts of the synthetic region (Zhengzhou, GB/T 2260 codes). Any 6-digit code is accepted on input;
#: codes not seen in training fall into the model's "other district" bucket (documented imputation).
DISTRICTS: dict[str, str] = {
    "410102": "中原区", "410103": "二七区", "410104": "管城回族区", "410105": "金水区",
    "410106": "上街区", "410108": "惠济区", "410122": "中牟县", "410181": "巩义市",
    "410182": "荥阳市", "410183": "新密市", "410184": "新郑市", "410185": "登封市",
}

STATUSES = ("active", "suspended", "deregistered", "revoked")


@dataclass(frozen=True)
class Factor:
    name: str
    kind: str  # "float", "int", "bool", "category"
    lo: float | None  # inclusive bounds for numeric factors
    hi: float | None
    zh: str  # reason template, Chinese; {v} is the value
    en: str  # reason template, English
    label_zh: str
    label_en: str


FACTORS: tuple[Factor, ...] = (
    Factor("years_in_business", "float", 0.0, 80.0, "成立{v:.1f}年", "{v:.1f} years in business",
           "存续期(年)", "years in business"),
    Factor("subscribed_capital", "float", 0.0, 1e8, "认缴出资{v:,.0f}万元", "subscribed capital {v:,.0f} × ¥10k",
           "认缴出资额(万元)", "subscribed capital (¥10k)"),
    Factor("employee_count", "int", 0, 10**6, "参保人数{v:d}人", "{v:d} insured employees",
           "参保人数", "insured employees"),
    Factor("industry_section", "category", None, None, "行业：{v}", "industry: {v}", "行业门类", "industry section"),
    Factor("entity_type", "category", None, None, "企业类型：{v}", "entity type: {v}", "企业类型", "entity type"),
    Factor("annual_report_late_3y", "int", 0, 3, "近3年年报逾期{v:d}次", "{v:d} late annual reports in 3 years",
           "近3年年报逾期次数", "late annual reports (3y)"),
    Factor("penalties_3y", "int", 0, 1000, "近3年行政处罚{v:d}次", "{v:d} penalties in 3 years",
           "近3年行政处罚次数", "penalties (3y)"),
    Factor("abnormal_list_ever", "bool", 0, 1, "曾列入经营异常名录", "once on the abnormal operations list",
           "曾列入经营异常名录", "ever on abnormal list"),
    Factor("complaints_12m", "int", 0, 100000, "12个月内投诉{v:d}次", "{v:d} complaints in 12 months",
           "12个月投诉次数", "complaints (12m)"),
    Factor("reg_changes_24m", "int", 0, 1000, "24个月内登记事项变更{v:d}次", "{v:d} registration changes in 24 months",
           "24个月登记变更次数", "registration changes (24m)"),
    Factor("shared_address_count", "int", 1, 100000, "同一地址登记{v:d}户",
           "{v:d} entities registered at the same address", "同址登记户数", "entities at same address"),
    Factor("linked_bad_entities", "int", 0, 100000, "关联{v:d}户失信/异常企业", "linked to {v:d} listed entities",
           "关联失信/异常企业数", "linked listed entities"),
)
FACTOR_BY_NAME = {f.name: f for f in FACTORS}
FACTOR_NAMES = tuple(f.name for f in FACTORS)
NUMERIC_FACTORS = tuple(f.name for f in FACTORS if f.kind != "category")
#: Categorical model inputs: the two categorical factors plus the district (a random effect in the generator).
CATEGORICAL_INPUTS = ("industry_section", "entity_type", "district")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "industry_section": tuple(INDUSTRY_SECTIONS),
    "entity_type": tuple(ENTITY_TYPES),
    "district": tuple(DISTRICTS),
}
#: Every column a model reads, in matrix order: numeric factors then categorical codes.
MODEL_INPUTS = NUMERIC_FACTORS + CATEGORICAL_INPUTS


def category_label(field: str, code: str, lang: str = "zh") -> str:
    if field == "industry_section":
        zh, en = INDUSTRY_SECTIONS.get(code, (code, code))
        return zh if lang == "zh" else en
    if field == "entity_type":
        zh, en, _ = ENTITY_TYPES.get(code, (code, code, ""))
        return zh if lang == "zh" else en
    if field == "district":
        return DISTRICTS.get(code, code) if lang == "zh" else code
    return code
