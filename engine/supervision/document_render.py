"""Rendering an official document to PDF from its fields (fpdf2, an embedded CJK font, text extractable).

:func:`prepare_fields` turns what the issuer gave into the snapshot stored with the PDF: every value plain text
(a list joined line by line, a dict as ``key: value`` lines), each at most :data:`MAX_FIELD` characters and all
of them at most :data:`MAX_FIELDS_BYTES` as JSON — anything bigger is refused, never truncated, since the PDF
must say exactly what the snapshot says — plus what every document shows (number, agency, party, USCC, the
date in China) and the texts derived from numbers (``deadline_days`` → ``10个工作日（至2026年12月21日）``
counted on the working-day calendar; ``fine`` → ``人民币5000.00元``). :func:`render_pdf` lays the kind's
template (:mod:`engine.supervision.document_templates`) out on A4.

The font is Noto Sans CJK SC (Debian's ``fonts-noto-cjk``, installed by ``bin/pdf-deps``), embedded as a
subset with its Unicode map, so ``pdftotext`` and a reader's search read the text back. Rendering a notice
takes about 0.1 s with the common-character cut of the font (:mod:`engine.supervision.document_font`) and
about 0.4 s when a character outside it needs the full font.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from engine.errors import InvalidInput

from . import calendar
from .document_font import font_for
from .document_models import DOCUMENT_KINDS
from .document_templates import TEMPLATES, VERSION, notice_text

MAX_FIELD = 4000
MAX_FIELDS_BYTES = 32_000
MAX_FIELD_NAME = 60


def template_name(kind: str) -> str:
    return f"{kind}/{VERSION}"


def _text(value, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float, str)):
        text = str(value)
    elif isinstance(value, (list, tuple)):
        text = "\n".join(_text(v, name) for v in value)
    elif isinstance(value, dict):
        text = "；".join(f"{k}：{_text(v, name)}" for k, v in value.items())
    else:
        raise InvalidInput(f"document field {name!r} is a {type(value).__name__}, not text, a number or a list")
    if len(text) > MAX_FIELD:
        raise InvalidInput(f"document field {name!r} is {len(text)} characters; at most {MAX_FIELD}")
    return text.strip()


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _deadline_text(days, issued: datetime) -> str:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise InvalidInput(f"deadline_days must be a number of working days from 1 to 365, not {days!r}")
    try:
        until = calendar.workdays(days, issued).astimezone(calendar.SHANGHAI).date()
    except Exception:  # noqa: BLE001 - no calendar for that year: the count alone, the date filled in by hand
        return f"{days}个工作日"
    return f"{days}个工作日（至{chinese_date(until)}）"


def prepare_fields(kind: str, given: dict | None, *, number: str, agency_name: str, entity_name: str | None,
                   uscc: str | None, issued_at: datetime) -> dict:
    """The JSON snapshot a document is rendered from (see the module). InvalidInput for oversized or odd input."""
    if kind not in TEMPLATES:
        raise InvalidInput(f"document kind {kind!r} is not one of {', '.join(TEMPLATES)}")
    given = dict(given or {})
    if len(given) > 100:
        raise InvalidInput(f"{len(given)} document fields; at most 100")
    fields: dict[str, str] = {}
    for name, value in given.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_FIELD_NAME:
            raise InvalidInput(f"a document field's name must be text of 1–{MAX_FIELD_NAME} characters")
        if name not in ("deadline_days", "fine"):
            fields[name] = _text(value, name)
    local = issued_at.astimezone(calendar.SHANGHAI)
    if "deadline_days" in given:
        fields["deadline_days"] = str(given["deadline_days"])
        fields.setdefault("deadline_text", _deadline_text(given["deadline_days"], issued_at))
    if given.get("fine") is not None:
        fine = given["fine"]
        if isinstance(fine, bool) or not isinstance(fine, (int, float)) or not 0 <= fine <= 1e10:
            raise InvalidInput(f"fine must be an amount in yuan, not {fine!r}")
        fields["fine"] = f"{fine:.2f}"
        fields.setdefault("fine_text", f"人民币{fine:,.2f}元")
    fields.update({"number": number, "agency_name": agency_name, "entity_name": entity_name or fields.get(
        "entity_name", ""), "uscc": uscc or fields.get("uscc", ""), "issued_on": chinese_date(local.date()),
        "title": DOCUMENT_KINDS[kind][0]})
    if len(json.dumps(fields, ensure_ascii=False).encode()) > MAX_FIELDS_BYTES:
        raise InvalidInput(f"the document's fields are more than {MAX_FIELDS_BYTES // 1000} kB")
    return fields


_SIGNED = "本文书由签发机关的电子签名签署；任何改动都会使签名失效。"
#: what every page prints besides the fields (the footer, the signature line, blanks)
_FIXED = f"第 0123456789 页，共 页____：{_SIGNED}"


def _footer(pdf) -> None:
    pdf.set_y(-12)
    pdf.set_font("cjk", size=8)
    pdf.cell(0, 5, f"第 {pdf.page_no()} 页，共 {{nb}} 页", align="C")


def render_pdf(kind: str, fields: dict, *, access_code: str | None = None, access_until: str | None = None) -> bytes:
    """The document as an unsigned PDF (A4, CJK font embedded); with ``access_code``, the party's code for the
    entity portal (valid until ``access_until``) is printed at its end — the code is never in ``fields``, which
    are stored beside the PDF."""
    from fpdf import FPDF  # noqa: PLC0415  (fpdf2: issuing only)

    notice = notice_text(kind, fields)
    access = (f"企业端访问码：{access_code}（{access_until or ''}前有效）。凭统一社会信用代码和本访问码登录"
              "市场监管部门企业端，可查看本文书及期限，在线提交整改报告、陈述申辩、听证申请等材料。"
              if access_code else "")
    rows = [("当事人", "entity_name", False), ("统一社会信用代码", "uscc", False)]
    rows += [(r.label, r.field, r.multiline) for r in TEMPLATES[kind].rows]
    texts = [*(str(v) for v in fields.values()), *(label for label, _, _ in rows), notice, access, _FIXED]
    path, index = font_for("".join(texts))
    pdf = FPDF(format="A4")
    pdf.footer = lambda: _footer(pdf)
    pdf.set_title(f"{fields['title']} {fields['number']}")
    pdf.set_author(fields["agency_name"])
    pdf.set_creator("regflow")
    pdf.set_creation_date(datetime(2000, 1, 1))  # the date that counts is printed; the PDF's own is fixed
    pdf.add_font("cjk", "", path, collection_font_number=index)
    # the subset keeps the full font's bounding boxes: recomputing them for every glyph on saving takes a quarter
    # of the rendering time and changes nothing a reader needs (the font's box still holds every glyph)
    for font in pdf.fonts.values():
        ttfont = getattr(font, "ttfont", None)
        if ttfont is not None:
            ttfont.recalcBBoxes = False
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(width, 9, fields["agency_name"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=20)
    pdf.multi_cell(width, 12, fields["title"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(width, 7, fields["number"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, name, multiline in rows:
        value = fields.get(name) or "____"
        pdf.set_font("cjk", size=11)
        if multiline:
            pdf.multi_cell(width, 7, f"{label}：", new_x="LMARGIN", new_y="NEXT")
            pdf.multi_cell(width, 7, value, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.multi_cell(width, 7, f"{label}：{value}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    if notice:
        pdf.ln(3)
        pdf.multi_cell(width, 7, notice, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.multi_cell(width, 7, fields["agency_name"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(width, 7, fields["issued_on"], align="R", new_x="LMARGIN", new_y="NEXT")
    if access_code:
        pdf.ln(4)
        pdf.set_font("cjk", size=10)
        pdf.multi_cell(width, 6, access, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(width, 5, _SIGNED, align="C")
    return bytes(pdf.output())
