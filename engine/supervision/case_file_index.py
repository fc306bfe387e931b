"""The index of a case file (``index.pdf``): the cover (卷宗封面), the table of contents in procedural order
(卷内目录) and the remarks sheet (备考表), rendered from the bundle's manifest with the documents' PDF machinery
(fpdf2, the CJK font of :func:`~engine.supervision.document_font.font_for`, text extractable).

It prints the SHA-256 of ``manifest.json`` on every page and stores it as the PDF's subject
(:data:`~engine.supervision.case_file_verify.SUBJECT_PREFIX`), so the agency's signature over this PDF
(:mod:`engine.supervision.case_file`) binds the manifest and, through the manifest's digests, every file.
"""
from __future__ import annotations

from datetime import datetime

from .calendar import SHANGHAI
from .case_file_verify import SUBJECT_PREFIX
from .document_font import font_for

_SIGNED = "本目录由立卷机关的电子签名签署；清单 manifest.json 的 SHA-256 见各页页脚，清单列明卷内每个文件的 SHA-256。"
_FIXED = ("卷宗封面卷内目录备考表序号材料名称文号日期文件或记录第页共案号当事人统一社会信用代码立卷机关立案日期处理结果"
          "结案日期归档日期本卷共件立卷人审计链头说明无0123456789")
#: the headings of the table of contents and their widths (mm, of 166)
_COLUMNS = (("序号", 11), ("材料名称", 48), ("文号", 36), ("日期", 21), ("文件或记录", 50))


def _day(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(SHANGHAI).date().isoformat()
    except ValueError:
        return value[:10]


def _footer(pdf, digest: str) -> None:
    pdf.set_y(-14)
    pdf.set_font("cjk", size=7)
    pdf.cell(0, 4, f"manifest.json SHA-256: {digest}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 4, f"第 {pdf.page_no()} 页，共 {{nb}} 页", align="C")


def _where(item: dict) -> str:
    if item.get("path"):
        return item["path"]
    if item.get("event"):
        return f"history.json #{item['event']['seq']}"
    return "（缺）"


_DECISIONS = {"penalty": "行政处罚", "minor_no_penalty": "轻微违法不予处罚", "first_offence_excused": "首违不罚",
              "not_established": "违法事实不成立", "transfer_judiciary": "移送司法机关"}
_STATUSES = {"lead": "案源核查中", "filed": "已立案", "decided": "已作出决定", "closed": "已结案",
             "not_filed": "不予立案", "terminated": "已终止"}


def _decision(cases: list[dict]) -> str:
    parts = []
    for c in cases:
        status = c.get("status") or ""
        text = _DECISIONS.get(c.get("decision_type") or "") or _STATUSES.get(status, status)
        if c.get("fine"):
            text += f"，罚款人民币{c['fine']:,.2f}元"
        parts.append(text)
    return "；".join(p for p in parts if p)


def render_index(manifest: dict, digest: str) -> bytes:
    """The unsigned index PDF of ``manifest`` whose ``manifest.json`` has SHA-256 ``digest``."""
    from fpdf import FPDF  # noqa: PLC0415  (fpdf2: rendering only)
    from fpdf.fonts import FontFace  # noqa: PLC0415  (as above)

    entity, agency, cases = manifest.get("entity") or {}, manifest["agency"], manifest.get("cases") or []
    items = manifest["items"]
    first = cases[0] if cases else {}
    cover = [("案号", manifest.get("case_number") or f"流程实例 {manifest['instance_id']}"),
             ("当事人", entity.get("name") or ""), ("统一社会信用代码", entity.get("uscc") or ""),
             ("立卷机关", agency["name"]), ("立案日期", _day(first.get("filed_at"))),
             ("处理结果", _decision(cases)), ("结案日期", _day(first.get("closed_at"))),
             ("归档日期", _day(manifest["generated_at"])), ("本卷共", f"{len(items)} 件")]
    rows = [(str(i["order"]), i["title"], i.get("number") or "", _day(i.get("date")), _where(i)) for i in items]
    remarks = [f"立卷人：{manifest['generated_by']}，立卷时间：{manifest['generated_at']}",
               *(f"审计链 {h['chain']}：第 {h['seq']} 条，头哈希 {h['hash']}" for h in manifest["history"]["chains"]),
               *(f"说明：{n}" for n in manifest.get("notes") or ())]
    texts = [v for _, v in cover] + [c for r in rows for c in r] + remarks + [_SIGNED, _FIXED]
    path, index = font_for("".join(texts))
    pdf = FPDF(format="A4")
    pdf.footer = lambda: _footer(pdf, digest)
    pdf.set_title(f"卷内目录 {manifest.get('case_number') or manifest['instance_id']}")
    pdf.set_subject(SUBJECT_PREFIX + digest)
    pdf.set_author(agency["name"])
    pdf.set_creator("regflow")
    pdf.set_creation_date(datetime(2000, 1, 1))  # the date that counts is printed
    pdf.add_font("cjk", "", path, collection_font_number=index)
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=20)
    width = 166
    # 卷宗封面
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(width, 10, agency["name"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=24)
    pdf.ln(20)
    pdf.multi_cell(width, 14, "卷宗封面", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(20)
    pdf.set_font("cjk", size=12)
    for label, value in cover:
        pdf.multi_cell(width, 9, f"{label}：{value}", new_x="LMARGIN", new_y="NEXT")
    # 卷内目录
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.multi_cell(width, 12, "卷内目录", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=9)
    with pdf.table(col_widths=tuple(w for _, w in _COLUMNS), text_align="LEFT", line_height=5,
                   headings_style=FontFace(emphasis=None)) as table:
        table.row([h for h, _ in _COLUMNS])
        for r in rows:
            table.row(list(r))
    # 备考表
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.multi_cell(width, 12, "备考表", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=10)
    for line in remarks:
        pdf.multi_cell(width, 6, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.ln(4)
    pdf.multi_cell(width, 6, f"manifest.json SHA-256：{digest}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(width, 5, _SIGNED, align="C")
    return bytes(pdf.output())
