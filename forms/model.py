"""The parsed form: immutable dataclasses built by ``forms.schema`` from YAML (or from runtime data)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

LANGS = ("zh", "en")

FIELD_TYPES = ("text", "textarea", "integer", "number", "bool", "date", "datetime", "select",
               "multiselect", "evidence", "checklist", "table")

#: The three results every checklist clause must get.
CHECK_RESULTS = ("compliant", "non_compliant", "not_applicable")

#: Submitted keys that are never fields (consumed by the web layer).
RESERVED_NAMES = frozenset({"csrf_token"})


@dataclass(frozen=True)
class Text:
    """A text in Simplified Chinese (always) and English (optional: falls back to Chinese)."""
    zh: str
    en: str | None = None

    def get(self, lang: str = "zh") -> str:
        return self.en if lang == "en" and self.en else self.zh

    def to_json(self) -> dict:
        return {"zh": self.zh, "en": self.en} if self.en else {"zh": self.zh}


@dataclass(frozen=True)
class Option:
    value: str
    label: Text


@dataclass(frozen=True)
class Cover:
    """One source of a (merged) checklist clause: which item, which department, which clause code."""
    item: str
    department: str
    clause: str
    item_name: str = ""


@dataclass(frozen=True)
class Clause:
    code: str
    text: Text
    basis: tuple[str, ...] = ()
    covers: tuple[Cover, ...] = ()

    @property
    def departments(self) -> tuple[str, ...]:
        return tuple(sorted({c.department for c in self.covers}))


@dataclass(frozen=True)
class VisibleIf:
    """``{field: x, equals: v}`` or ``{field: x, in: [...]}``: compared with the other field's clean value;
    ``{field: x, differs_from: y}``: shown when x and y both have a value and they differ (e.g. a reason for
    choosing another method than the decided one)."""
    field: str
    values: tuple[Any, ...]
    differs_from: str | None = None

    def holds(self, clean: dict) -> bool:
        if self.field not in clean:
            return False
        value = clean[self.field]
        if self.differs_from is not None:
            other = clean.get(self.differs_from)
            return not _blank(value) and not _blank(other) and not _same(value, other)
        if isinstance(value, (list, tuple)):
            return any(v in self.values for v in value)
        return any(_same(value, v) for v in self.values)


def _blank(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True must not equal 1
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return a == b


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: Text
    required: bool = False
    help: Text | None = None
    visible_if: VisibleIf | None = None
    default: Any = None
    min: Any = None
    max: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_message: Text | None = None
    decimals: int | None = None
    unit: Text | None = None
    options: tuple[Option, ...] = ()
    columns: tuple["FieldDef", ...] = ()
    clauses: tuple[Clause, ...] | None = None
    clauses_from: str | None = None
    #: a select's ``option_requires``: ``((option, (yes/no field, …)), …)`` — the option needs those answered yes
    option_requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: a yes/no field that must be answered yes (the legal requirement it states is the refusal's message)
    must_be_yes: Text | None = None
    #: the task data key whose value (when present and valid) becomes the default at run time, e.g. the method a
    #: decision table chose; bound by :func:`forms.validate.bind_runtime`
    default_from: str | None = None
    #: shown, never entered: the clean value is the (bound) default; a submitted value must equal it
    readonly: bool = False

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    def column(self, name: str) -> "FieldDef | None":
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class FormDefinition:
    id: str
    version: int
    title: Text
    fields: tuple[FieldDef, ...]
    description: Text | None = None
    source: str = ""
    sha256: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    def with_clauses(self, field_name: str, clauses: tuple["Clause", ...]) -> "FormDefinition":
        """A copy whose checklist ``field_name`` has ``clauses`` (``Clause`` objects; clauses handed over at run
        time as data are parsed by :func:`forms.schema.bind_clauses`)."""
        f = self.field(field_name)
        if f is None or f.type != "checklist":
            raise KeyError(f"form {self.id} has no checklist field {field_name!r}")
        if not all(isinstance(c, Clause) for c in clauses):
            raise TypeError("with_clauses takes Clause objects; use forms.schema.bind_clauses for data")
        bound = replace(f, clauses=tuple(clauses))
        return replace(self, fields=tuple(bound if x.name == field_name else x for x in self.fields))

    def with_default(self, field_name: str, default: Any) -> "FormDefinition":
        """A copy whose field ``field_name`` has ``default`` (a clean value, e.g. bound from the task data)."""
        bound = replace(self.field(field_name), default=default)
        return replace(self, fields=tuple(bound if x.name == field_name else x for x in self.fields))
