"""Coercion of submitted values, field by field: the one place where a form's raw input (JSON-like, or HTML form
data nested by :func:`forms.validate.nest`) becomes the clean values the engine stores, and where a definition's
defaults are checked (:func:`coerce_default`, used by the loader). :func:`forms.validate.validate` is the entry
point; error keys are bracket paths (``findings[0][description]``)."""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .messages import message
from .model import CHECK_RESULTS, RESERVED_NAMES, FieldDef

#: Naive datetimes (``<input type=datetime-local>``) are read as China Standard Time (no DST since 1991).
CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 5000}
NOTE_MAX_LENGTH = 2000
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
EVIDENCE_KEYS = {"sha256", "filename", "size", "content_type"}
CHECK_ENTRY_KEYS = {"result", "note", "evidence"}
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TRUE = {"true", "1", "yes", "on", "是"}
_FALSE = {"false", "0", "no", "off", "否"}


class Invalid(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


class Ambiguous:
    """Two submitted names that cannot both hold (``a=1`` and ``a[0][b]=2``)."""


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


def coerce_fields(fields: tuple[FieldDef, ...], values: Any, prefix: str | None, errors: dict, lang: str,
                  *, top: bool = False) -> dict:
    """The clean values of ``fields`` from ``values``; each problem goes to ``errors`` under its path."""
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
        if f.readonly:  # shown, never entered: the (bound) default, and nothing else
            clean[f.name] = f.default if f.default is not None else _empty_value(f)
            if present and not _empty(raw) and not _is_default(f, raw):
                errors[p] = message("read_only", lang)
            continue
        if not present and f.default is not None:
            raw = f.default
        if isinstance(raw, Ambiguous):
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
            errors[p] = _required(f, fields, clean, lang)
        clean[f.name] = value
        if f.must_be_yes is not None and value is False and p not in errors:
            errors[p] = f.must_be_yes.get(lang)
        for option, names in f.option_requires:
            if value == option:
                for name in names:
                    if clean.get(name) is not True and _path(prefix, name) not in errors:
                        errors[_path(prefix, name)] = message("option_requires", lang, field=f.label.get(lang),
                                                              option=f.option(option).label.get(lang))
    return clean


def _required(f: FieldDef, fields: tuple[FieldDef, ...], clean: dict, lang: str) -> str:
    """The message of a missing value; a field shown because one field differs from another (a reason for
    deviating from a decision) says which choice differs from what."""
    vi = f.visible_if
    if vi is None or vi.differs_from is None:
        return message("required", lang)
    chosen, decided = (next(x for x in fields if x.name == n) for n in (vi.field, vi.differs_from))
    return message("differs_reason", lang, field=chosen.label.get(lang),
                   chosen=_shown(chosen, clean[chosen.name], lang), decided=_shown(decided, clean[decided.name], lang))


def _shown(f: FieldDef, value: Any, lang: str) -> str:
    option = f.option(value) if f.options and isinstance(value, str) else None
    return option.label.get(lang) if option else str(value)


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
        out.append(coerce_fields(f.columns, row, f"{p}[{idx}]", errors, lang))
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
