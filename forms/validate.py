"""Validate and coerce submitted data against a form definition.

Input is either JSON-like nested data or an HTML form: a flat mapping (or a Werkzeug ``MultiDict``) whose
names use brackets for nesting, as rendered by ``forms/templates/forms/macros.html``::

    findings[0][description]=...        table row 0, column description
    checklist[GSP-4.2][result]=...      checklist clause GSP-4.2

Error keys use the same bracket paths (``findings[0][description]``) so that the renderer can show each
message next to its input. Nothing is silently dropped: an unknown key is an error, and so is a value
given for a field that its ``visible_if`` hides (unless it equals the field's default). The only values
that are skipped are table rows whose cells are all empty (the blank row the renderer offers).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import UnknownForm
from .messages import message
from .model import CHECK_RESULTS, RESERVED_NAMES, FieldDef, FormDefinition

__all__ = ["validate", "engine_hook", "nest", "bind_runtime", "coerce_default"]

#: Naive datetimes (``<input type=datetime-local>``) are read as China Standard Time (no DST since 1991).
CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 5000}
NOTE_MAX_LENGTH = 2000
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
EVIDENCE_KEYS = {"sha256", "filename", "size", "content_type"}
CHECK_ENTRY_KEYS = {"result", "note", "evidence"}
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]+\])+)$")
_TRUE = {"true", "1", "yes", "on", "是"}
_FALSE = {"false", "0", "no", "off", "否"}


class Invalid(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


class _Conflict:
    """Two submitted names that cannot both hold (``a=1`` and ``a[0][b]=2``)."""


# -- nesting HTML names ------------------------------------------------------------------------------
def nest(data: Any) -> dict:
    """HTML form data (``MultiDict`` or flat dict with bracket names) or JSON data → nested dict."""
    if hasattr(data, "getlist"):
        items = []
        for k in data.keys():
            vs = data.getlist(k)
            items.append((k, vs[0] if len(vs) == 1 else list(vs)))
    elif isinstance(data, Mapping):
        items = list(data.items())
    else:
        raise TypeError(f"form data must be a mapping, not {type(data).__name__}")
    out: dict = {}
    for key, value in items:
        m = _NAME_RE.match(key) if isinstance(key, str) else None
        if not m:
            out[key] = _Conflict() if key in out else value
            continue
        parts = [m.group(1), *re.findall(r"\[([^\[\]]+)\]", m.group(2))]
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict) or isinstance(nxt, _Conflict):
                node[p] = nxt = _Conflict()
                break
            node = nxt
        else:
            node[parts[-1]] = _Conflict() if parts[-1] in node else value
    return out


# -- the entry points --------------------------------------------------------------------------------
def validate(form: FormDefinition, data: Any, *, lang: str = "zh") -> tuple[dict, dict[str, str]]:
    """``(clean_data, errors)``; ``errors`` maps a field path to a message in ``lang`` (empty when valid).
    ``clean_data`` holds every field of the form (``None``/``[]``/``{}`` when empty or hidden) with
    JSON-compatible values: dates as ``YYYY-MM-DD``, datetimes as ISO 8601 in UTC."""
    errors: dict[str, str] = {}
    try:
        nested = nest(data)
    except TypeError:
        return {}, {"": message("structure", lang)}
    clean = _fields(form.fields, nested, None, errors, lang, top=True)
    return clean, errors


def bind_runtime(form: FormDefinition, task_data: Mapping | None) -> FormDefinition:
    """Fill every ``clauses_from`` checklist from the task data (e.g. the merged checklist) when present."""
    for f in form.fields:
        if f.type == "checklist" and f.clauses is None and task_data and task_data.get(f.clauses_from):
            form = form.with_clauses(f.name, task_data[f.clauses_from])
    return form


def engine_hook(registry, *, lang: str = "zh") -> Callable[..., dict]:
    """The engine's ``form_validator(form_id, data) -> {field: message}`` (empty means valid).

    An optional third argument, the task's current data, binds runtime checklists (``clauses_from``) so
    that every clause must be answered; without it each submitted clause is still checked.
    A definition that no longer parses raises ``FormDefinitionError`` (a deployment problem, not the user's).
    """

    def form_validator(form_id: str, data: dict, task_data: Mapping | None = None) -> dict:
        try:
            form = registry.get(form_id)
        except UnknownForm:
            return {"": message("unknown_form", lang, form_id=form_id)}
        _, errors = validate(bind_runtime(form, task_data), data, lang=lang)
        return errors

    return form_validator


def coerce_default(f: FieldDef, value: Any) -> tuple[Any, str | None]:
    """Used by the loader: the clean default, or an English description of why it is invalid."""
    errors: dict[str, str] = {}
    try:
        clean = _COERCE[f.type](f, value, f.name, errors, "en")
    except Invalid as exc:
        return None, message(exc.code, "en", **exc.params)
    if errors:
        return None, next(iter(errors.values()))
    return clean, None


# -- fields ------------------------------------------------------------------------------------------
def _path(prefix: str | None, name: Any) -> str:
    return str(name) if prefix is None else f"{prefix}[{name}]"


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, (list, dict)) and not v)


def _empty_value(f: FieldDef) -> Any:
    return [] if f.type in ("multiselect", "evidence", "table") else {} if f.type == "checklist" else None


def _fields(fields: tuple[FieldDef, ...], values: Any, prefix: str | None, errors: dict, lang: str,
            *, top: bool = False) -> dict:
    if not isinstance(values, dict):
        errors[prefix or ""] = message("structure", lang)
        return {}
    known = {f.name for f in fields}
    for key in values:
        if key not in known and not (top and key in RESERVED_NAMES):
            errors[_path(prefix, key)] = message("unknown_field", lang)
    clean: dict = {}
    for f in fields:
        p = _path(prefix, f.name)
        present = f.name in values
        raw = values.get(f.name)
        if f.visible_if is not None and not f.visible_if.holds(clean):
            clean[f.name] = _empty_value(f)
            if present and not _empty(raw) and not _is_default(f, raw):
                other = next(x for x in fields if x.name == f.visible_if.field)
                errors[p] = message("not_applicable", lang, other=other.label.get(lang))
            continue
        if not present and f.default is not None:
            raw = f.default
        if isinstance(raw, _Conflict):
            errors[p] = message("structure", lang)
            continue
        value = _empty_value(f)
        if not _empty(raw):
            try:
                value = _COERCE[f.type](f, raw, p, errors, lang)
            except Invalid as exc:
                errors[p] = message(exc.code, lang, **exc.params)
                continue
        if _empty(value) and f.required and not any(k == p or k.startswith(p + "[") for k in errors):
            errors[p] = message("required", lang)
        clean[f.name] = value
    return clean


def _is_default(f: FieldDef, raw: Any) -> bool:
    if f.default is None:
        return False
    clean, problem = coerce_default(f, raw)
    return problem is None and clean == f.default


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _text(f, raw, p, errors, lang):
    if not isinstance(raw, str):
        raise Invalid("text")
    value = raw.replace("\r\n", "\n").strip()
    max_length = f.max_length if f.max_length is not None else DEFAULT_MAX_LENGTH[f.type]
    if f.min_length is not None and len(value) < f.min_length:
        raise Invalid("min_length", min_length=f.min_length)
    if len(value) > max_length:
        raise Invalid("max_length", max_length=max_length)
    if f.pattern and not re.fullmatch(f.pattern, value):
        if f.pattern_message:
            errors[p] = f.pattern_message.get(lang)
            return value
        raise Invalid("pattern")
    return value


def _range(f, value, low_code="min_value", high_code="max_value", show=str):
    if f.min is not None and value < f.min:
        raise Invalid(low_code, min=show(f.min))
    if f.max is not None and value > f.max:
        raise Invalid(high_code, max=show(f.max))
    return value


def _integer(f, raw, p, errors, lang):
    if isinstance(raw, bool):
        raise Invalid("integer")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _INT_RE.match(_nfkc(raw)):
        value = int(_nfkc(raw))
    else:
        raise Invalid("integer")
    return _range(f, value)


def _number(f, raw, p, errors, lang):
    if isinstance(raw, bool):
        raise Invalid("number")
    if isinstance(raw, (int, float)):
        text = repr(raw)
    elif isinstance(raw, str) and _NUM_RE.match(_nfkc(raw)):
        text = _nfkc(raw)
    else:
        raise Invalid("number")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise Invalid("number") from None
    if not dec.is_finite() or not math.isfinite(float(dec)):
        raise Invalid("number")
    if f.decimals is not None and dec.normalize().as_tuple().exponent < -f.decimals:
        raise Invalid("decimals", decimals=f.decimals)
    return _range(f, float(dec))


def _bool(f, raw, p, errors, lang):
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        v = _nfkc(raw).lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise Invalid("bool")


def _date(f, raw, p, errors, lang):
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = dt.date.fromisoformat(_nfkc(raw).replace("/", "-"))
        except ValueError:
            raise Invalid("date") from None
    else:
        raise Invalid("date")
    return _range(f, value, "min_date", "max_date", show=lambda d: d.isoformat()).isoformat()


def _datetime(f, raw, p, errors, lang):
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = dt.datetime.fromisoformat(_nfkc(raw))
        except ValueError:
            raise Invalid("datetime") from None
    else:
        raise Invalid("datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return value.astimezone(dt.timezone.utc).isoformat()


def _select(f, raw, p, errors, lang):
    if not isinstance(raw, str):
        raise Invalid("option", value=raw)
    value = raw.strip()
    if f.option(value) is None:
        raise Invalid("option", value=value)
    return value


def _as_list(raw) -> list:
    return raw if isinstance(raw, list) else [raw]


def _count(f, n):
    if f.min is not None and n < f.min:
        raise Invalid("min_items", min=f.min)
    if f.max is not None and n > f.max:
        raise Invalid("max_items", max=f.max)


def _multiselect(f, raw, p, errors, lang):
    chosen = []
    for v in _as_list(raw):
        if _empty(v):
            continue
        v = _select(f, v, p, errors, lang)
        if v in chosen:
            raise Invalid("duplicate_option", value=v)
        chosen.append(v)
    _count(f, len(chosen))
    return [o.value for o in f.options if o.value in chosen]


def evidence_ref(raw: Any) -> dict:
    """One evidence reference ``{sha256, filename, size[, content_type]}`` (dict or its JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise Invalid("evidence") from None
    if not isinstance(raw, dict) or not {"sha256", "filename", "size"} <= set(raw) or set(raw) - EVIDENCE_KEYS:
        raise Invalid("evidence")
    sha, name, size = raw["sha256"], raw["filename"], raw["size"]
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise Invalid("evidence_sha256")
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "/" in name or "\\" in name:
        raise Invalid("evidence")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise Invalid("evidence")
    ref = {"sha256": sha.lower(), "filename": name.strip(), "size": size}
    ctype = raw.get("content_type")
    if ctype is not None:
        if not isinstance(ctype, str) or len(ctype) > 255:
            raise Invalid("evidence")
        ref["content_type"] = ctype
    return ref


def _evidence(f, raw, p, errors, lang):
    refs = [evidence_ref(v) for v in _as_list(raw) if not _empty(v)]
    _count(f, len(refs))
    return refs


def _table(f, raw, p, errors, lang):
    if isinstance(raw, list):
        rows = list(enumerate(raw))
    elif isinstance(raw, dict) and all(isinstance(k, str) and k.isdigit() for k in raw):
        rows = sorted(((int(k), v) for k, v in raw.items()), key=lambda kv: kv[0])
    else:
        raise Invalid("structure")
    out = []
    for idx, row in rows:
        if isinstance(row, dict) and all(_empty(v) for v in row.values()):
            continue  # the blank row offered by the renderer
        out.append(_fields(f.columns, row, f"{p}[{idx}]", errors, lang))
    _count(f, len(out))
    return out


def _checklist(f, raw, p, errors, lang):
    if isinstance(raw, list):  # JSON: [{clause, result, note, evidence}, ...]
        entries = {}
        for i, e in enumerate(raw):
            if not isinstance(e, dict) or not isinstance(e.get("clause"), str) or e["clause"] in entries:
                errors[f"{p}[{i}]"] = message("structure", lang)
                continue
            entries[e["clause"]] = {k: v for k, v in e.items() if k != "clause"}
    elif isinstance(raw, dict):
        entries = raw
    else:
        raise Invalid("structure")
    known = {c.code for c in f.clauses} if f.clauses is not None else None
    answered = any(not _empty(e) and not (isinstance(e, dict) and all(_empty(v) for v in e.values()))
                   for e in entries.values())
    out: dict = {}
    for code, entry in entries.items():
        cp = f"{p}[{code}]"
        if known is not None and code not in known:
            errors[cp] = message("unknown_clause", lang)
            continue
        if isinstance(entry, str):
            entry = {"result": entry}
        if not isinstance(entry, dict):
            errors[cp] = message("structure", lang)
            continue
        for k in entry:
            if k not in CHECK_ENTRY_KEYS:
                errors[f"{cp}[{k}]"] = message("unknown_field", lang)
        result = entry.get("result")
        note = entry.get("note")
        if note is not None and not isinstance(note, str):
            errors[f"{cp}[note]"] = message("text", lang)
            note = None
        note = (note or "").replace("\r\n", "\n").strip() or None
        if note and len(note) > NOTE_MAX_LENGTH:
            errors[f"{cp}[note]"] = message("max_length", lang, max_length=NOTE_MAX_LENGTH)
        try:
            evidence = [evidence_ref(v) for v in _as_list(entry.get("evidence") or []) if not _empty(v)]
        except Invalid as exc:
            errors[f"{cp}[evidence]"] = message(exc.code, lang, **exc.params)
            evidence = []
        if _empty(result):
            if answered or f.required:
                errors[f"{cp}[result]"] = message("check_result", lang)
            continue
        if result not in CHECK_RESULTS:
            errors[f"{cp}[result]"] = message("check_result_invalid", lang)
            continue
        if result == "non_compliant" and not note:
            errors[f"{cp}[note]"] = message("check_note", lang)
        out[code] = {"result": result, "note": note, "evidence": evidence}
    if known is not None and (answered or f.required):
        for c in f.clauses:
            if c.code not in entries:
                errors[f"{p}[{c.code}][result]"] = message("check_result", lang)
        out = {c.code: out[c.code] for c in f.clauses if c.code in out}
    return out


_COERCE: dict[str, Callable] = {
    "text": _text, "textarea": _text, "integer": _integer, "number": _number, "bool": _bool, "date": _date,
    "datetime": _datetime, "select": _select, "multiselect": _multiselect, "evidence": _evidence,
    "checklist": _checklist, "table": _table,
}
