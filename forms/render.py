"""Render a form definition as accessible HTML with the Jinja2 macros in ``templates/forms/macros.html``.

Standalone: ``render_form(form, values, errors, lang, csrf_token)``. In the Flask app::

    from forms.render import init_jinja
    init_jinja(app.jinja_env)          # adds the template folder and the rf_* helpers
    {% import "forms/macros.html" as forms %}
    {{ forms.render_form(form, values, errors, lang, csrf_token(), action=url_for(...)) }}

``values`` may be clean data or the nested raw submission (``forms.validate.nest(request.form)``) when a
form is shown again with its errors; ``errors`` are the paths returned by ``forms.validate.validate``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .coerce import CST, Invalid, evidence_ref
from .model import FieldDef, FormDefinition

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
MACROS = "forms/macros.html"

UI: dict[str, dict[str, str]] = {
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "compliant": {"zh": "符合", "en": "Compliant"},
    "non_compliant": {"zh": "不符合", "en": "Non-compliant"},
    "not_applicable": {"zh": "不适用", "en": "Not applicable"},
    "clause": {"zh": "检查条款", "en": "Clause"},
    "result": {"zh": "检查结果", "en": "Result"},
    "note": {"zh": "问题说明", "en": "Note"},
    "evidence": {"zh": "证据", "en": "Evidence"},
    "basis": {"zh": "依据", "en": "Basis"},
    "covers": {"zh": "涉及部门", "en": "Departments"},
    "submit": {"zh": "提交", "en": "Submit"},
    "errors_title": {"zh": "请更正以下问题：", "en": "Please correct the following:"},
    "required": {"zh": "必填", "en": "required"},
    "row": {"zh": "第 {n} 行", "en": "row {n}"},
    "upload": {"zh": "上传证据文件", "en": "upload evidence files"},
    "choose": {"zh": "请选择", "en": "Choose…"},
    "pending": {"zh": "检查表将在任务运行时生成。", "en": "The checklist is generated when the task runs."},
    "list_sep": {"zh": "；", "en": "; "},
    "name_sep": {"zh": "、", "en": ", "},
    "colon": {"zh": "：", "en": ": "},
}


def ui(key: str, lang: str = "zh") -> str:
    entry = UI[key]
    return entry.get(lang, entry["zh"])


# -- helpers the macros use (filters/globals prefixed rf_) -----------------------------------------
def html_id(path: str) -> str:
    """``findings[0][description]`` → ``f-findings-0-description`` (the id of that input)."""
    return "f-" + path.replace("][", "-").replace("[", "-").replace("]", "")


def as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        return True if v in ("true", "1", "yes", "on", "是") else False if v in ("false", "0", "no", "off", "否") \
            else None
    return None


def evidence_items(value: Any) -> list[dict]:
    """Evidence references for display: each ``{json, filename, size, sha256, valid}``."""
    out = []
    for raw in as_list(value):
        try:
            ref = evidence_ref(raw)
            out.append({**ref, "json": json.dumps(ref, ensure_ascii=False, sort_keys=True), "valid": True})
        except Invalid:
            text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
            out.append({"json": text, "filename": text, "size": None, "sha256": "", "valid": False})
    return out


def table_rows(value: Any, f: FieldDef) -> list[tuple[str, dict]]:
    """Existing rows (keeping their submitted indexes) plus blank rows: one more than given, at least ``min``,
    at most ``max``."""
    if isinstance(value, dict):
        rows = sorted(((int(k), v) for k, v in value.items() if str(k).isdigit()), key=lambda kv: kv[0])
    else:
        rows = list(enumerate(as_list(value)))
    rows = [(i, r if isinstance(r, dict) else {}) for i, r in rows]
    want = max(len(rows) + 1, f.min or 0)
    if f.max is not None:
        want = min(want, max(f.max, len(rows)))
    nxt = rows[-1][0] + 1 if rows else 0
    while len(rows) < want:
        rows.append((nxt, {}))
        nxt += 1
    return [(str(i), r) for i, r in rows]


def check_entry(value: Any, code: str) -> dict:
    entry = value.get(code) if isinstance(value, dict) else None
    if isinstance(value, list):
        entry = next((e for e in value if isinstance(e, dict) and e.get("clause") == code), None)
    if isinstance(entry, str):
        entry = {"result": entry}
    entry = entry if isinstance(entry, dict) else {}
    return {"result": entry.get("result"), "note": entry.get("note") or "", "evidence": entry.get("evidence")}


def datetime_local(value: Any) -> str:
    """A stored ISO datetime (UTC) as the value of ``<input type=datetime-local>`` in China time."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if d.tzinfo is not None:
        d = d.astimezone(CST)
    return d.strftime("%Y-%m-%dT%H:%M")


def number_step(f: FieldDef) -> str:
    if f.type == "integer":
        return "1"
    return "any" if f.decimals is None else ("1" if f.decimals == 0 else f"0.{'0' * (f.decimals - 1)}1")


def error_label(form: FormDefinition, key: str, lang: str = "zh") -> str:
    """The human name of an error path, for the error summary (``发现问题 第 1 行 · 问题描述``)."""
    parts = [key.split("[", 1)[0], *re.findall(r"\[([^\[\]]+)\]", key)]
    f = form.field(parts[0])
    if f is None:
        return key
    label = f.label.get(lang)
    if f.type == "table" and len(parts) >= 2 and parts[1].isdigit():
        label += " " + ui("row", lang).format(n=int(parts[1]) + 1)
        col = f.column(parts[2]) if len(parts) >= 3 else None
        if col is not None:
            label += " · " + col.label.get(lang)
    elif f.type == "checklist" and len(parts) >= 2:
        label += " · " + parts[1]
        if len(parts) >= 3 and parts[2] in ("result", "note", "evidence"):
            label += " · " + ui(parts[2], lang)
    return label


def plain_number(value) -> str:
    """A stored number as a person writes it: ``3.0`` → ``3``, ``0.1`` → ``0.1`` (other values unchanged)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


FILTERS = {"rf_number": plain_number, "rf_id": html_id, "rf_list": as_list, "rf_bool": as_bool,
           "rf_evidence": evidence_items, "rf_rows": table_rows, "rf_entry": check_entry, "rf_dtlocal": datetime_local,
           "rf_step": number_step}
GLOBALS = {"rf_ui": ui, "rf_error_label": error_label}


def init_jinja(env: Environment) -> Environment:
    """Make ``{% import "forms/macros.html" %}`` work in ``env`` (e.g. Flask's ``app.jinja_env``)."""
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    ours = FileSystemLoader(str(TEMPLATE_DIR))
    if env.loader is None:
        env.loader = ours
    elif not getattr(env, "_regflow_forms", False):
        env.loader = ChoiceLoader([env.loader, ours])
    env._regflow_forms = True  # type: ignore[attr-defined]
    return env


_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), undefined=StrictUndefined,
                          autoescape=select_autoescape(default=True, default_for_string=True),
                          trim_blocks=True, lstrip_blocks=True)
        _ENV = init_jinja(env)
    return _ENV


def render_form(form: FormDefinition, values: dict | None = None, errors: dict | None = None,
                lang: str = "zh", csrf_token: str | None = None, *, action: str = "", method: str = "post") -> Markup:
    """The whole ``<form>`` as HTML (Chinese by default; ``lang="en"`` for English)."""
    macros = environment().get_template(MACROS).module
    return Markup(macros.render_form(form, values or {}, errors or {}, lang, csrf_token, action, method))


def render_summary(form: FormDefinition, values: dict | None = None, lang: str = "zh") -> Markup:
    """A submitted form, read only: each field with a value, labelled (select options by their labels,
    booleans as yes/no, tables and the merged checklist as tables)."""
    macros = environment().get_template(MACROS).module
    return Markup(macros.render_summary(form, values or {}, lang))
