"""The templates of the eight official documents: which fields each shows, in which order, under which label.

The field sets follow SAMR's document templates (市场监督管理行政执法文书格式范本); wording and layout are
ours. Every document starts the same way — the agency, the title, the number, the party (当事人) and its
unified social credit code — and ends with the agency and the date of issue; between them come its kind's
:class:`Row` s (a label and the field it shows, ``multiline`` for prose) and closing :attr:`Template.notice`
(the party's rights, fixed text with ``{field}`` placeholders). A field a template names but the issuer did
not give prints as a blank line to fill in by hand, as on the paper form. :data:`VERSION` is stored with each
rendered PDF (``document_file.template``): a changed template bumps it, so an old document says what it was
rendered from.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1


@dataclass(frozen=True)
class Row:
    label: str
    field: str
    multiline: bool = False


@dataclass(frozen=True)
class Template:
    rows: tuple[Row, ...]
    #: closing text (rights, deadlines), formatted with the fields; ``{…}`` of a missing field stays blank
    notice: str = ""


_PARTY = (Row("住所（经营场所）", "address"), Row("法定代表人（负责人）", "representative"))

TEMPLATES: dict[str, Template] = {
    "inspection_record": Template(rows=(
        *_PARTY,
        Row("检查时间", "inspected_at"), Row("检查地点", "place"), Row("检查人员及执法证号", "inspectors"),
        Row("检查事项", "items", True), Row("检查情况", "findings", True), Row("检查结果", "result"),
    ), notice="执法人员已出示执法证件，并告知当事人有申请回避的权利。以上笔录经当事人核对无误。"),
    "rectification_notice": Template(rows=(
        *_PARTY,
        Row("违法（隐患）事实", "findings", True), Row("法律依据", "legal_basis", True),
        Row("整改要求", "requirements", True), Row("整改期限", "deadline_text"),
    ), notice="你（单位）应当在{deadline_text}内改正上述问题，并将整改情况书面报告本局。逾期不改正的，本局将依法"
              "处理。如不服本通知，可在收到本通知书之日起六十日内依法申请行政复议，或者在六个月内依法提起行政诉讼。"),
    "filing_approval": Template(rows=(
        Row("案件来源", "case_source"), Row("案由", "cause"), Row("简要案情", "summary", True),
        Row("法律依据", "legal_basis", True), Row("立案依据核查", "filing_checks", True),
        Row("承办人意见", "handler_opinion", True), Row("承办人", "handlers"), Row("负责人审批意见", "approval"),
    )),
    "penalty_notice": Template(rows=(
        *_PARTY,
        Row("违法事实", "facts", True), Row("证据", "evidence", True), Row("法律依据", "legal_basis", True),
        Row("拟作出的行政处罚", "proposed_penalty", True),
    ), notice="依据《中华人民共和国行政处罚法》第四十四条、第四十五条，你（单位）有权进行陈述和申辩，请于收到本告知书"
              "之日起{statement_days}个工作日内提出；{hearing_text}逾期视为放弃上述权利。"),
    "hearing_notice": Template(rows=(
        *_PARTY,
        Row("案由", "cause"), Row("听证时间", "hearing_at"), Row("听证地点", "hearing_place"),
        Row("听证主持人", "presiding_officer"), Row("听证员、记录员", "hearing_staff"),
    ), notice="请你（单位）按时出席听证。可以委托一至二人代理参加听证，代理人应当提交授权委托书。认为主持人与本案有"
              "直接利害关系的，有权申请回避。无正当理由不出席听证的，视为放弃听证权利。"),
    "penalty_decision": Template(rows=(
        *_PARTY,
        Row("违法事实", "facts", True), Row("证据", "evidence", True), Row("法律依据", "legal_basis", True),
        Row("行政处罚决定", "penalty", True), Row("罚没款金额", "fine_text"), Row("缴纳期限与方式", "payment", True),
    ), notice="当事人应当自收到本决定书之日起十五日内缴纳罚款；到期不缴纳的，每日按罚款数额的百分之三加处罚款，加处"
              "罚款的数额不超出罚款的数额。如不服本决定，可以在收到本决定书之日起六十日内依法申请行政复议，或者在"
              "六个月内依法提起行政诉讼。"),
    "service_receipt": Template(rows=(
        Row("送达文书名称及文号", "served_document"), Row("受送达人", "served_to"), Row("送达时间", "served_at"),
        Row("送达地点", "served_place"), Row("送达方式", "method"), Row("收件人签名或盖章", "signature"),
        Row("备注", "note", True),
    )),
    "transfer_letter": Template(rows=(
        Row("接收单位", "receiving_department"), Row("移送事由", "reason", True), Row("法律依据", "legal_basis", True),
        Row("移送材料", "materials", True),
    ), notice="现将该案移送你单位依法处理，请于收到之日起在回执上签收并将处理结果函告本局。"),
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "____"


def notice_text(kind: str, fields: dict) -> str:
    """The template's closing text with the fields filled in (a missing one as a blank)."""
    return TEMPLATES[kind].notice.format_map(_Blank({k: v for k, v in fields.items() if v not in (None, "")}))
