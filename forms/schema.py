"""Strict validation of a form definition (plain data + the YAML line of every key) into ``forms.model``.

Every problem is collected as a ``FormIssue`` (file, line, key path such as ``fields[2].options[0].value``)
and raised together as one ``FormDefinitionError``.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .coerce import coerce_default  # the same coercion as submitted data
from .errors import FormDefinitionError, FormIssue
from .model import FIELD_TYPES, RESERVED_NAMES, Clause, Cover, FieldDef, FormDefinition, Option, Text, VisibleIf

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPTION_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
CODE_RE = re.compile(r"^[^\[\]\s]+$")

TOP_KEYS = {"id", "version", "title", "description", "fields"}
COMMON_KEYS = {"name", "type", "label", "required", "help", "visible_if"}
_TEXT_KEYS = {"default", "min_length", "max_length", "pattern", "pattern_message"}
TYPE_KEYS = {
    "text": _TEXT_KEYS,
    "textarea": _TEXT_KEYS,
    "integer": {"default", "min", "max", "unit"},
    "number": {"default", "min", "max", "decimals", "unit"},
    "bool": {"default", "must_be_yes"},
    "date": {"default", "min", "max"},
    "datetime": {"default"},
    "select": {"default", "options", "option_requires"},
    "multiselect": {"default", "options", "min", "max"},
    "evidence": {"min", "max"},
    "checklist": {"clauses", "clauses_from"},
    "table": {"columns", "min", "max"},
}
#: Types whose ``min``/``max`` count items (selections, files, rows) rather than bound a value.
COUNTED = {"multiselect", "evidence", "table"}
NOT_IN_TABLE = {"table", "checklist"}
NOT_COMPARABLE = {"table", "checklist", "evidence", "textarea"}
#: Keys of a field that takes a default, outside tables: its default from the task data, and read-only.
RUNTIME_KEYS = {"default_from", "readonly"}

Path = tuple


def key_path(path: Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class Checker:
    def __init__(self, file: str, marks: dict[Path, int] | None = None):
        self.file = file
        self.marks = marks or {}
        self.issues: list[FormIssue] = []

    def line(self, path: Path) -> int | None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.marks:
                return self.marks[path[:n]]
        return None

    def err(self, path: Path, message: str) -> None:
        self.issues.append(FormIssue(self.file, self.line(path), key_path(path), message))

    def raise_if_any(self) -> None:
        if self.issues:
            raise FormDefinitionError(self.issues)

    # -- small typed readers -------------------------------------------------------------------
    def mapping(self, value: Any, path: Path, allowed: set, required: set = frozenset()) -> dict | None:
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping, not {_kind(value)}")
            return None
        for k in value:
            if k not in allowed:
                self.err(path + (k,), f"unknown key {k!r} (allowed here: {', '.join(sorted(allowed))})")
        for k in sorted(required - set(value)):
            self.err(path, f"missing required key {k!r}")
        return value

    def text(self, value: Any, path: Path, *, plain_ok: bool = False) -> Text | None:
        if plain_ok and isinstance(value, str):
            if not value.strip():
                self.err(path, "must not be empty")
                return None
            return Text(value.strip())
        m = self.mapping(value, path, {"zh", "en"}, {"zh", "en"})
        if m is None:
            return None
        ok = True
        for lang in ("zh", "en"):
            if lang in m and (not isinstance(m[lang], str) or not m[lang].strip()):
                hint = " (YAML reads yes/no/on/off as true/false: quote it)" if isinstance(m[lang], bool) else ""
                self.err(path + (lang,), f"must be a non-empty string{hint}")
                ok = False
        if not ok or not {"zh", "en"} <= set(m):
            return None
        return Text(m["zh"].strip(), m["en"].strip())

    def integer(self, value: Any, path: Path, *, low: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path, f"must be an integer, not {_kind(value)}")
            return None
        if low is not None and value < low:
            self.err(path, f"must be ≥ {low}")
            return None
        return value

    def boolean(self, value: Any, path: Path) -> bool:
        if not isinstance(value, bool):
            self.err(path, f"must be true or false, not {_kind(value)}")
            return False
        return value

    def identifier(self, value: Any, path: Path, regex: re.Pattern = NAME_RE) -> str | None:
        if not isinstance(value, str) or not regex.match(value):
            self.err(path, f"{value!r} is not a valid identifier (expected {regex.pattern})")
            return None
        return value


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


# -- the form ---------------------------------------------------------------------------------------
def parse_form(data: Any, ck: Checker, *, expected_id: str | None = None) -> FormDefinition | None:
    top = ck.mapping(data, (), TOP_KEYS, {"id", "version", "title", "fields"})
    if top is None:
        ck.raise_if_any()
    form_id = ck.identifier(top.get("id"), ("id",), ID_RE) if "id" in top else None
    if form_id and expected_id and form_id != expected_id:
        ck.err(("id",), f"id {form_id!r} does not match the file name ({expected_id}.yaml)")
    version = ck.integer(top["version"], ("version",), low=1) if "version" in top else None
    title = ck.text(top["title"], ("title",)) if "title" in top else None
    description = ck.text(top["description"], ("description",)) if "description" in top else None
    fields = parse_fields(top.get("fields"), ("fields",), ck, in_table=False) if "fields" in top else ()
    ck.raise_if_any()
    return FormDefinition(id=form_id, version=version, title=title, description=description, fields=fields)


def parse_fields(value: Any, path: Path, ck: Checker, *, in_table: bool) -> tuple[FieldDef, ...]:
    if not isinstance(value, list) or not value:
        ck.err(path, f"must be a non-empty list of fields, not {_kind(value)}")
        return ()
    out: list[FieldDef] = []
    seen: dict[str, int] = {}
    failed: set[str] = set()
    for i, raw in enumerate(value):
        f = parse_field(raw, path + (i,), ck, earlier={x.name: x for x in out}, in_table=in_table, failed=failed)
        if f is None:
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                failed.add(raw["name"])
            continue
        if f.name in seen:
            ck.err(path + (i, "name"), f"duplicate field name {f.name!r} (first at {key_path(path)}[{seen[f.name]}])")
            continue
        seen[f.name] = i
        out.append(f)
    return tuple(out)


def parse_field(raw: Any, path: Path, ck: Checker, *, earlier: dict[str, FieldDef], in_table: bool,
                failed: set[str] = frozenset()) -> FieldDef | None:
    if not isinstance(raw, dict):
        ck.err(path, f"a field must be a mapping, not {_kind(raw)}")
        return None
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES or (in_table and ftype in NOT_IN_TABLE):
        allowed = [t for t in FIELD_TYPES if not (in_table and t in NOT_IN_TABLE)]
        ck.err(path + ("type",), f"unknown field type {ftype!r} (allowed: {', '.join(allowed)})"
               if "type" in raw else "missing required key 'type'")
        return None
    bound_keys = RUNTIME_KEYS if "default" in TYPE_KEYS[ftype] and not in_table else set()
    m = ck.mapping(raw, path, COMMON_KEYS | TYPE_KEYS[ftype] | bound_keys, {"name", "type", "label"})
    n_issues = len(ck.issues)
    name = ck.identifier(m.get("name"), path + ("name",)) if "name" in m else None
    if name in RESERVED_NAMES:
        ck.err(path + ("name",), f"{name!r} is reserved")
    kw: dict[str, Any] = {"name": name, "type": ftype}
    kw["label"] = ck.text(m["label"], path + ("label",)) if "label" in m else None
    kw["required"] = ck.boolean(m["required"], path + ("required",)) if "required" in m else ftype == "checklist"
    if "help" in m:
        kw["help"] = ck.text(m["help"], path + ("help",))
    if "must_be_yes" in m:
        kw["must_be_yes"] = ck.text(m["must_be_yes"], path + ("must_be_yes",))
    for k in ("pattern_message", "unit"):
        if k in m:
            kw[k] = ck.text(m[k], path + (k,))
    _runtime_keys(m, path, ck, kw)
    if "options" in m:
        kw["options"] = _options(m["options"], path + ("options",), ck)
    elif ftype in ("select", "multiselect"):
        ck.err(path, "missing required key 'options'")
    _bounds(m, ftype, path, ck, kw)
    if ftype == "table":
        if "columns" in m:
            kw["columns"] = parse_fields(m["columns"], path + ("columns",), ck, in_table=True)
        else:
            ck.err(path, "missing required key 'columns'")
    if ftype == "checklist":
        _checklist(m, path, ck, kw)
    if "option_requires" in m and kw.get("options"):
        kw["option_requires"] = _option_requires(m["option_requires"], path + ("option_requires",), ck, kw, earlier)
    if "visible_if" in m:
        if m["visible_if"].get("field") in failed if isinstance(m["visible_if"], dict) else False:
            return None  # the field it depends on has errors of its own
        kw["visible_if"] = _visible_if(m["visible_if"], path + ("visible_if",), ck, earlier)
    if len(ck.issues) > n_issues:
        return None
    f = FieldDef(**kw)
    if "default" in m:
        default, problem = coerce_default(f, m["default"])
        if problem:
            ck.err(path + ("default",), f"invalid default: {problem}")
            return None
        f = FieldDef(**{**kw, "default": default})
    return f


def _options(value: Any, path: Path, ck: Checker) -> tuple[Option, ...]:
    if not isinstance(value, list) or not value:
        ck.err(path, f"must be a non-empty list of {{value, label}}, not {_kind(value)}")
        return ()
    out, seen = [], set()
    for i, raw in enumerate(value):
        m = ck.mapping(raw, path + (i,), {"value", "label"}, {"value", "label"})
        if m is None or not {"value", "label"} <= set(m):
            continue
        v = m["value"]
        if not isinstance(v, str):
            ck.err(path + (i, "value"), f"option values must be strings (quote it: '{v}'), not {_kind(v)}")
            continue
        if not OPTION_RE.match(v):
            ck.err(path + (i, "value"), f"{v!r} is not a valid option value (expected {OPTION_RE.pattern})")
            continue
        if v in seen:
            ck.err(path + (i, "value"), f"duplicate option value {v!r}")
            continue
        seen.add(v)
        label = ck.text(m["label"], path + (i, "label"))
        if label:
            out.append(Option(v, label))
    return tuple(out)


def _bounds(m: dict, ftype: str, path: Path, ck: Checker, kw: dict) -> None:
    for lo_key, hi_key in (("min", "max"), ("min_length", "max_length")):
        vals = {}
        for k in (lo_key, hi_key):
            if k not in m:
                continue
            v = m[k]
            if ftype == "date" and k in ("min", "max"):
                v = _date(v)
                if v is None:
                    ck.err(path + (k,), "must be a date (YYYY-MM-DD)")
                    continue
            elif ftype == "number" and k in ("min", "max"):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    ck.err(path + (k,), f"must be a number, not {_kind(v)}")
                    continue
            else:
                v = ck.integer(v, path + (k,), low=0 if (ftype in COUNTED or k.endswith("length")) else None)
                if v is None:
                    continue
            vals[k] = kw[k] = v
        if len(vals) == 2 and vals[lo_key] > vals[hi_key]:
            ck.err(path + (lo_key,), f"{lo_key} ({vals[lo_key]}) is greater than {hi_key} ({vals[hi_key]})")
    if "pattern" in m:
        p = m["pattern"]
        try:
            if not isinstance(p, str):
                raise TypeError(f"must be a string, not {_kind(p)}")
            re.compile(p)
            kw["pattern"] = p
        except (re.error, TypeError) as exc:
            ck.err(path + ("pattern",), f"invalid regular expression: {exc}")
    if "decimals" in m:
        d = ck.integer(m["decimals"], path + ("decimals",), low=0)
        if d is not None:
            kw["decimals"] = d


def _date(v: Any) -> dt.date | None:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return None
    return None


def _runtime_keys(m: dict, path: Path, ck: Checker, kw: dict) -> None:
    """``default_from`` (a task data key: its value, when valid, is the default at run time) and ``readonly``
    (shown, never entered: the clean value is the default)."""
    if "default_from" in m:
        kw["default_from"] = ck.identifier(m["default_from"], path + ("default_from",))
    if "readonly" in m:
        kw["readonly"] = ck.boolean(m["readonly"], path + ("readonly",))
        if kw["readonly"] and m.get("required") is True:
            ck.err(path + ("required",), "a read-only field cannot be required (nobody can enter it)")


def _visible_if(value: Any, path: Path, ck: Checker, earlier: dict[str, FieldDef]) -> VisibleIf | None:
    m = ck.mapping(value, path, {"field", "equals", "in", "differs_from"}, {"field"})
    if m is None:
        return None
    if sum(k in m for k in ("equals", "in", "differs_from")) != 1:
        ck.err(path, "needs exactly one of 'equals', 'in' or 'differs_from'")
        return None
    target = m.get("field")
    ref = earlier.get(target) if isinstance(target, str) else None
    if ref is None:
        ck.err(path + ("field",), f"{target!r} is not a field defined before this one")
        return None
    if ref.type in NOT_COMPARABLE:
        ck.err(path + ("field",), f"cannot depend on a {ref.type} field")
        return None
    if "differs_from" in m:
        other = earlier.get(m["differs_from"]) if isinstance(m["differs_from"], str) else None
        if other is None or other.name == ref.name:
            ck.err(path + ("differs_from",), f"{m['differs_from']!r} is not another field defined before this one")
            return None
        if other.type != ref.type:
            ck.err(path + ("differs_from",), f"cannot compare the {ref.type} field {ref.name!r} with the "
                                             f"{other.type} field {other.name!r}")
            return None
        return VisibleIf(ref.name, (), differs_from=other.name)
    if "in" in m:
        values = m["in"]
        if not isinstance(values, list) or not values:
            ck.err(path + ("in",), "must be a non-empty list")
            return None
    else:
        values = [m["equals"]]
    key = "in" if "in" in m else "equals"
    for v in values:
        if isinstance(v, (dict, list)) or v is None:
            ck.err(path + (key,), f"must compare with a scalar, not {_kind(v)}")
            return None
        if ref.options and v not in {o.value for o in ref.options}:
            ck.err(path + (key,), f"{v!r} is not an option of field {ref.name!r}")
            return None
        if (ref.type == "bool") != isinstance(v, bool):
            ck.err(path + (key,), f"{v!r} cannot equal a value of the {ref.type} field {ref.name!r}")
            return None
    if ref.type == "date":
        values = [_date(v).isoformat() if _date(v) else v for v in values]
    return VisibleIf(ref.name, tuple(values))


def _option_requires(value: Any, path: Path, ck: Checker, kw: dict,
                     earlier: dict[str, FieldDef]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{option: [bool field, …]}``: choosing the option needs each of those earlier yes/no fields answered yes
    (e.g. filing a case needs the filing conditions confirmed)."""
    if not isinstance(value, dict) or not value:
        ck.err(path, "must be a mapping of option values to lists of yes/no fields")
        return ()
    values = {o.value for o in kw["options"]}
    out = []
    for option, names in value.items():
        if option not in values:
            ck.err(path + (option,), f"{option!r} is not an option of this field")
            continue
        if not isinstance(names, list) or not names:
            ck.err(path + (option,), "must be a non-empty list of field names")
            continue
        for name in names:
            ref = earlier.get(name) if isinstance(name, str) else None
            if ref is None or ref.type != "bool":
                ck.err(path + (option,), f"{name!r} is not a yes/no field defined before this one")
        out.append((option, tuple(n for n in names if isinstance(n, str))))
    return tuple(out)


# -- checklists -------------------------------------------------------------------------------------
def _checklist(m: dict, path: Path, ck: Checker, kw: dict) -> None:
    if ("clauses" in m) == ("clauses_from" in m):
        ck.err(path, "a checklist needs exactly one of 'clauses' (fixed) or 'clauses_from' (task data key)")
        return
    if "clauses_from" in m:
        kw["clauses_from"] = ck.identifier(m["clauses_from"], path + ("clauses_from",))
    else:
        kw["clauses"] = parse_clauses(m["clauses"], path + ("clauses",), ck)


def parse_clauses(value: Any, path: Path, ck: Checker) -> tuple[Clause, ...]:
    if not isinstance(value, list) or not value:
        ck.err(path, f"must be a non-empty list of clauses, not {_kind(value)}")
        return ()
    out, seen = [], set()
    for i, raw in enumerate(value):
        p = path + (i,)
        m = ck.mapping(raw, p, {"code", "text", "basis", "covers"}, {"code", "text"})
        if m is None or not {"code", "text"} <= set(m):
            continue
        code = m["code"]
        if not isinstance(code, str) or not CODE_RE.match(code):
            ck.err(p + ("code",), f"{code!r} is not a valid clause code (a string without spaces or brackets)")
            continue
        if code in seen:
            ck.err(p + ("code",), f"duplicate clause code {code!r}")
            continue
        seen.add(code)
        text = ck.text(m["text"], p + ("text",), plain_ok=True)
        basis = m.get("basis", [])
        basis = [basis] if isinstance(basis, str) else basis
        if not isinstance(basis, list) or not all(isinstance(b, str) and b.strip() for b in basis):
            ck.err(p + ("basis",), "must be a string or a list of non-empty strings")
            continue
        covers = _covers(m.get("covers", []), p + ("covers",), ck)
        if text is not None and covers is not None:
            out.append(Clause(code, text, tuple(b.strip() for b in basis), covers))
    return tuple(out)


def _covers(value: Any, path: Path, ck: Checker) -> tuple[Cover, ...] | None:
    if not isinstance(value, list):
        ck.err(path, f"must be a list, not {_kind(value)}")
        return None
    out = []
    for i, raw in enumerate(value):
        m = ck.mapping(raw, path + (i,), {"item", "item_name", "department", "clause"}, {"item", "department"})
        if m is None or not all(isinstance(m.get(k, ""), str) for k in m):
            ck.err(path + (i,), "item, item_name, department and clause must be strings")
            return None
        if {"item", "department"} <= set(m):
            out.append(Cover(m["item"], m["department"], m.get("clause", ""), m.get("item_name", "")))
    return tuple(out)


def parse_runtime_clauses(value: Any, *, where: str) -> tuple[Clause, ...]:
    """Clauses handed over at run time (e.g. a merged checklist in task data); no line numbers."""
    ck = Checker(f"<runtime {where}>")
    clauses = parse_clauses(value, ("clauses",), ck)
    ck.raise_if_any()
    return clauses


def bind_clauses(form: FormDefinition, field_name: str, clauses: Any) -> FormDefinition:
    """``form`` with its checklist ``field_name`` bound to ``clauses`` handed over as data (a list of clause dicts,
    or a checklist field dict from ``forms.checklist.merge_checklist``). Raises FormDefinitionError."""
    if isinstance(clauses, dict):
        clauses = clauses.get("clauses", [])
    return form.with_clauses(field_name, parse_runtime_clauses(clauses, where=f"{form.id}.{field_name}"))
