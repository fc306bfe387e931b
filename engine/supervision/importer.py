"""CSV importers for the registries: all or nothing, every problem reported with its row and column.

Each ``import_*`` function reads a whole file, validates every row (types, dates, codes, USCC check digits,
references to departments/skills/inspectors, duplicates inside the file) and only then writes. If any row
is wrong it raises :class:`ImportRejected` listing every problem and writes nothing; the caller's
transaction is not touched. Rows whose key already exists in the database are **updated in place** (upsert
by code; for entities by USCC, for leave by inspector and period, for conflicts by inspector and USCC), so
importing the same file twice changes nothing the second time. Nothing is ever deleted by an import.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2. The CSV format
of each file is documented in ``engine/supervision/README.md``.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from scoring.factors import ENTITY_TYPES, FACTOR_BY_NAME, INDUSTRY_SECTIONS, NUMERIC_FACTORS, STATUSES
from scoring.models import Entity
from scoring.uscc import is_valid_uscc

from .registry_models import (FREQUENCIES, METHODS, CheckItem, Department, Inspector, InspectorConflict,
                              InspectorLeave, Skill)

LIST_SEPARATORS = re.compile(r"[;；]")
CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
REGION_RE = re.compile(r"^\d{6}$")
_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}


@dataclass(frozen=True)
class RowError:
    """One problem: spreadsheet row (1 = header), column (None = the whole row) and the reason in words."""

    row: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}" + (f", column {self.column}" if self.column else "") + f": {self.reason}"

    def to_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason}


class ImportRejected(InvalidInput):
    """The file has problems; nothing was imported. ``errors`` lists every :class:`RowError`."""

    MAX_SHOWN = 50

    def __init__(self, source: str, errors: list[RowError]):
        super().__init__(f"{source}: {len(errors)} problem(s); nothing was imported",
                         errors=[e.to_dict() for e in errors])
        self.source = source
        self.errors = errors

    def __str__(self) -> str:
        lines = [self.message] + [f"  {e}" for e in self.errors[: self.MAX_SHOWN]]
        if len(self.errors) > self.MAX_SHOWN:
            lines.append(f"  … and {len(self.errors) - self.MAX_SHOWN} more")
        return "\n".join(lines)


@dataclass
class ImportReport:
    kind: str
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[RowError] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged,
                "warnings": [w.to_dict() for w in self.warnings]}


# ------------------------------------------------------------------------------------------------- reading
Source = str | Path | io.TextIOBase


def _read_text(source: Source, encoding: str) -> tuple[str, str]:
    if isinstance(source, io.TextIOBase):
        return source.read(), getattr(source, "name", "<stream>")
    path = Path(source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        from engine.errors import NotFound

        raise NotFound(f"{path}: no such file") from None
    try:
        return raw.decode(encoding), str(path)
    except UnicodeDecodeError as exc:
        raise ImportRejected(str(path), [RowError(1, None, f"not {encoding} text (byte {exc.start}); "
                                                           "save as UTF-8 or pass --encoding gb18030")]) from None


class Row:
    """One data row with typed accessors that record problems instead of raising."""

    def __init__(self, number: int, values: dict[str, str], errors: list[RowError]):
        self.number = number
        self.values = values
        self.errors = errors

    def fail(self, column: str | None, reason: str) -> None:
        self.errors.append(RowError(self.number, column, reason))

    def has(self, column: str) -> bool:
        return column in self.values

    def raw(self, column: str) -> str:
        return self.values.get(column, "")

    def text(self, column: str, *, required: bool = False, max_len: int = 200) -> str | None:
        v = self.raw(column)
        if not v:
            if required:
                self.fail(column, "required")
            return None
        if len(v) > max_len:
            self.fail(column, f"longer than {max_len} characters")
            return None
        return v

    def code(self, column: str, *, required: bool = True) -> str | None:
        v = self.text(column, required=required, max_len=32)
        if v is not None and not CODE_RE.match(v):
            self.fail(column, f"{v!r} is not a code (letters, digits, '_', '.', '-'; at most 32)")
            return None
        return v

    def integer(self, column: str, *, lo: int | None = None, hi: int | None = None,
                default: int | None = None) -> int | None:
        v = self.raw(column)
        if not v:
            return default
        try:
            n = int(v)
        except ValueError:
            self.fail(column, f"{v!r} is not a whole number")
            return None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            self.fail(column, f"{n} is outside {lo}..{hi}")
            return None
        return n

    def real(self, column: str, *, required: bool = False) -> float | None:
        v = self.raw(column)
        if not v:
            if required:
                self.fail(column, "required")
            return None
        try:
            x = float(v)
        except ValueError:
            self.fail(column, f"{v!r} is not a number")
            return None
        if x != x or x in (float("inf"), float("-inf")):
            self.fail(column, f"{v!r} is not a finite number")
            return None
        return x

    def boolean(self, column: str, default: bool | None = None) -> bool | None:
        v = self.raw(column).lower()
        if not v:
            return default
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        self.fail(column, f"{self.raw(column)!r} is not true/false (also 1/0, yes/no, 是/否)")
        return None

    def date(self, column: str, *, required: bool = False) -> date | None:
        v = self.raw(column)
        if not v:
            if required:
                self.fail(column, "required")
            return None
        m = _DATE_RE.match(v)
        try:
            if not m:
                raise ValueError
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            self.fail(column, f"{v!r} is not a date (YYYY-MM-DD)")
            return None

    def choice(self, column: str, choices: Iterable[str], *, required: bool = True,
               default: str | None = None) -> str | None:
        v = self.raw(column)
        if not v:
            if required and default is None:
                self.fail(column, "required")
            return default
        choices = tuple(choices)
        if v not in choices:
            self.fail(column, f"unknown {column} {v!r} (known: {', '.join(choices)})")
            return None
        return v

    def codes(self, column: str, known: Iterable[str], what: str) -> list[str] | None:
        """A ``;``-separated list of known codes (order kept, duplicates dropped)."""
        known = set(known)
        items = [p.strip() for p in LIST_SEPARATORS.split(self.raw(column)) if p.strip()]
        unknown = [p for p in items if p not in known]
        if unknown:
            self.fail(column, f"unknown {what} {', '.join(repr(u) for u in unknown)}")
            return None
        return list(dict.fromkeys(items))


def read_rows(source: Source, required: tuple[str, ...], optional: tuple[str, ...] = (), *,
              encoding: str = "utf-8-sig") -> tuple[str, list[Row], list[RowError]]:
    """Parse the CSV, check the header, and return ``(source name, rows, errors)``; blank rows are skipped."""
    text, name = _read_text(source, encoding)
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected(name, [RowError(1, None, "the file is empty (no header row)")]) from None
    except csv.Error as exc:
        raise ImportRejected(name, [RowError(1, None, f"not CSV: {exc}")]) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    seen: set[str] = set()
    for h in header:
        if not h:
            errors.append(RowError(1, None, "a column has no name"))
        elif h in seen:
            errors.append(RowError(1, h, "column appears twice"))
        elif h not in required and h not in optional:
            errors.append(RowError(1, h, f"unknown column (known: {', '.join(required + optional)})"))
        seen.add(h)
    for col in required:
        if col not in seen:
            errors.append(RowError(1, col, "required column is missing"))
    if errors:
        raise ImportRejected(name, errors)
    rows: list[Row] = []
    number = 1
    try:
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                errors.append(RowError(number, None, f"{len(cells)} cells, the header has {len(header)}"))
                continue
            rows.append(Row(number, {h: c.strip() for h, c in zip(header, cells)}, errors))
    except csv.Error as exc:
        errors.append(RowError(number + 1, None, f"not CSV: {exc}"))
    return name, rows, errors


def _duplicates(rows: list[Row], key: Callable[[Row], Any], column: str, errors: list[RowError]) -> None:
    first: dict[Any, int] = {}
    for r in rows:
        k = key(r)
        if k is None or k == "":
            continue
        if k in first:
            errors.append(RowError(r.number, column, f"duplicate of row {first[k]} ({k})"))
        else:
            first[k] = r.number


def _apply(obj, values: dict) -> bool:
    """Set changed attributes; True if anything changed."""
    changed = False
    for k, v in values.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed = True
    return changed


def _upsert(session: Session, model, key_attr: str, records: list[tuple[Row, dict]], report: ImportReport,
            now: datetime | None = None) -> None:
    keys = [rec[key_attr] for _r, rec in records]
    existing = {getattr(o, key_attr): o for o in session.scalars(select(model).where(
        getattr(model, key_attr).in_(keys)))} if keys else {}
    for _row, rec in records:
        obj = existing.get(rec[key_attr])
        if obj is None:
            if now is not None and hasattr(model, "updated_at"):
                rec = {**rec, "updated_at": now}
            session.add(model(**rec))
            report.created += 1
        elif _apply(obj, rec):
            if now is not None and hasattr(obj, "updated_at"):
                obj.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()


def _finish(name: str, errors: list[RowError]) -> None:
    if errors:
        errors.sort(key=lambda e: (e.row, e.column or ""))
        raise ImportRejected(name, errors)


# ------------------------------------------------------------------------------------------------- departments, skills
def _import_codes(session: Session, source: Source, model, kind: str, encoding: str) -> ImportReport:
    name, rows, errors = read_rows(source, ("code", "name"), encoding=encoding)
    records = []
    for r in rows:
        rec = {"code": r.code("code"), "name": r.text("name", required=True)}
        records.append((r, rec))
    _duplicates(rows, lambda r: r.raw("code"), "code", errors)
    _finish(name, errors)
    report = ImportReport(kind, name, rows=len(rows))
    _upsert(session, model, "code", records, report)
    return report


def import_departments(session: Session, source: Source, *, encoding: str = "utf-8-sig") -> ImportReport:
    """``code,name``."""
    return _import_codes(session, source, Department, "departments", encoding)


def import_skills(session: Session, source: Source, *, encoding: str = "utf-8-sig") -> ImportReport:
    """``code,name``."""
    return _import_codes(session, source, Skill, "skills", encoding)


# ------------------------------------------------------------------------------------------------- inspectors
INSPECTOR_REQUIRED = ("code", "name", "department", "skills", "region")
INSPECTOR_OPTIONAL = ("username", "cert_no", "cert_expires", "is_expert", "leader_eligible", "seniority", "active")


def import_inspectors(session: Session, source: Source, *, today: date, now: datetime,
                      encoding: str = "utf-8-sig") -> ImportReport:
    """The inspector pool. A certificate that has expired before ``today`` is a warning, not an error: the
    inspector is imported (and shown as ``expired``) but never drawn until the certificate is renewed."""
    name, rows, errors = read_rows(source, INSPECTOR_REQUIRED, INSPECTOR_OPTIONAL, encoding=encoding)
    departments = set(session.scalars(select(Department.code)))
    skills = set(session.scalars(select(Skill.code)))
    report = ImportReport("inspectors", name, rows=len(rows))
    records = []
    for r in rows:
        dept = r.text("department", required=True, max_len=32)
        if dept is not None and dept not in departments:
            r.fail("department", f"unknown department {dept!r}" + (
                "" if departments else " (no departments yet: run `regflow import departments` first)"))
        rec = {"code": r.code("code"), "name": r.text("name", required=True, max_len=100),
               "username": r.text("username", max_len=64), "department": dept,
               "cert_no": r.text("cert_no", max_len=40), "cert_expires": r.date("cert_expires"),
               "skills": r.codes("skills", skills, "skill"), "region": r.text("region", required=True),
               "is_expert": r.boolean("is_expert", False), "leader_eligible": r.boolean("leader_eligible", False),
               "seniority": r.integer("seniority", lo=0, hi=60, default=0), "active": r.boolean("active", True)}
        if rec["region"] is not None and not REGION_RE.match(rec["region"]):
            r.fail("region", f"{rec['region']!r} is not a 6-digit GB/T 2260 code")
        if rec["is_expert"] is False and not rec["cert_no"]:
            r.fail("cert_no", "an officer (is_expert false) needs an enforcement certificate number")
        if (rec["cert_no"] or rec["is_expert"] is False) and not r.raw("cert_expires"):
            r.fail("cert_expires", "required with an enforcement certificate")
        if rec["is_expert"] and rec["leader_eligible"]:
            r.fail("leader_eligible", "an expert cannot lead a team (experts are not counted officers)")
        if rec["cert_expires"] is not None and rec["cert_expires"] < today:
            report.warnings.append(RowError(r.number, "cert_expires",
                                            f"certificate expired on {rec['cert_expires']}: imported, but "
                                            "not drawn until renewed"))
        records.append((r, rec))
    _duplicates(rows, lambda r: r.raw("code"), "code", errors)
    _duplicates(rows, lambda r: r.raw("cert_no"), "cert_no", errors)
    _finish(name, errors)
    # a certificate number held by another inspector already in the registry
    codes = {rec["code"] for _r, rec in records}
    certs = {rec["cert_no"]: r for r, rec in records if rec["cert_no"]}
    if certs:
        for code, cert in session.execute(select(Inspector.code, Inspector.cert_no)
                                          .where(Inspector.cert_no.in_(list(certs)))):
            r = certs[cert]
            if code != r.raw("code") and code not in codes:
                errors.append(RowError(r.number, "cert_no", f"certificate {cert} already belongs to inspector {code}"))
    _finish(name, errors)
    _upsert(session, Inspector, "code", records, report, now=now)
    return report


# ------------------------------------------------------------------------------------------------- leave, conflicts
def _inspector_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Inspector.code, Inspector.id)).all())


def import_leaves(session: Session, source: Source, *, encoding: str = "utf-8-sig") -> ImportReport:
    """``inspector,start_date,end_date[,reason]`` — both days included."""
    name, rows, errors = read_rows(source, ("inspector", "start_date", "end_date"), ("reason",), encoding=encoding)
    ids = _inspector_ids(session)
    records = []
    for r in rows:
        code = r.text("inspector", required=True)
        if code is not None and code not in ids:
            r.fail("inspector", f"unknown inspector {code!r}")
        start, end = r.date("start_date", required=True), r.date("end_date", required=True)
        if start and end and end < start:
            r.fail("end_date", f"{end} is before start_date {start}")
        records.append((r, {"inspector_id": ids.get(code), "start_date": start, "end_date": end,
                            "reason": r.text("reason") or ""}))
    _duplicates(rows, lambda r: (r.raw("inspector"), r.raw("start_date"), r.raw("end_date")), "start_date", errors)
    _finish(name, errors)
    report = ImportReport("leaves", name, rows=len(rows))
    for _r, rec in records:
        obj = session.scalar(select(InspectorLeave).where(InspectorLeave.inspector_id == rec["inspector_id"],
                                                          InspectorLeave.start_date == rec["start_date"],
                                                          InspectorLeave.end_date == rec["end_date"]))
        if obj is None:
            session.add(InspectorLeave(**rec))
            report.created += 1
        elif _apply(obj, rec):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


def import_conflicts(session: Session, source: Source, *, now: datetime, encoding: str = "utf-8-sig") -> ImportReport:
    """``inspector,uscc,reason`` — declared conflicts of interest (grounds for recusal)."""
    name, rows, errors = read_rows(source, ("inspector", "uscc", "reason"), encoding=encoding)
    ids = _inspector_ids(session)
    records = []
    for r in rows:
        code = r.text("inspector", required=True)
        if code is not None and code not in ids:
            r.fail("inspector", f"unknown inspector {code!r}")
        uscc = r.text("uscc", required=True, max_len=18)
        if uscc is not None and not is_valid_uscc(uscc):
            r.fail("uscc", f"{uscc!r} is not a valid unified social credit code (check digit)")
        records.append((r, {"inspector_id": ids.get(code), "entity_uscc": uscc,
                            "reason": r.text("reason", required=True)}))
    _duplicates(rows, lambda r: (r.raw("inspector"), r.raw("uscc")), "uscc", errors)
    _finish(name, errors)
    report = ImportReport("conflicts", name, rows=len(rows))
    for _r, rec in records:
        obj = session.scalar(select(InspectorConflict).where(
            InspectorConflict.inspector_id == rec["inspector_id"], InspectorConflict.entity_uscc == rec["entity_uscc"]))
        if obj is None:
            session.add(InspectorConflict(**rec, declared_at=now))
            report.created += 1
        elif _apply(obj, rec):
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


# ------------------------------------------------------------------------------------------------- check items
ITEM_COLUMNS = ("name", "sub_item", "legal_basis", "department", "industries", "required_skill", "ratio",
                "frequency", "method")
ITEM_REQUIRED = ("code", "name", "legal_basis", "department", "ratio", "frequency", "method",
                 "clause_code", "clause_text")
ITEM_OPTIONAL = ("sub_item", "industries", "required_skill", "clause_basis")


def import_items(session: Session, source: Source, *, now: datetime, encoding: str = "utf-8-sig") -> ImportReport:
    """Check items, one row per checklist clause.

    The item's columns are given on its first row; the following rows of the same ``code`` may leave them
    blank or repeat them (a different value is an error). ``clause_basis`` lists bases separated by ``;``.
    """
    name, rows, errors = read_rows(source, ITEM_REQUIRED, ITEM_OPTIONAL, encoding=encoding)
    departments = set(session.scalars(select(Department.code)))
    skills = set(session.scalars(select(Skill.code)))
    items: dict[str, tuple[Row, dict]] = {}
    clause_rows: dict[tuple[str, str], int] = {}
    for r in rows:
        code = r.code("code")
        if code is None:
            continue
        if code not in items:
            ratio = r.real("ratio", required=True)
            if ratio is not None and not 0 < ratio <= 1:
                r.fail("ratio", f"{ratio} is not a share in (0, 1]")
            dept = r.raw("department")
            if dept and dept not in departments:
                r.fail("department", f"unknown department {dept!r}")
            elif not dept:
                r.fail("department", "required")
            skill = r.raw("required_skill") or None
            if skill and skill not in skills:
                r.fail("required_skill", f"unknown skill {skill!r}")
            items[code] = (r, {"code": code, "name": r.text("name", required=True),
                               "sub_item": r.text("sub_item") or "",
                               "legal_basis": r.text("legal_basis", required=True, max_len=4000),
                               "department": dept, "industries": r.codes("industries", INDUSTRY_SECTIONS,
                                                                         "GB/T 4754 section"),
                               "required_skill": skill, "ratio": ratio,
                               "frequency": r.choice("frequency", FREQUENCIES),
                               "method": r.choice("method", METHODS), "clauses": []})
        else:
            first, _rec = items[code]
            for col in ITEM_COLUMNS:
                if r.raw(col) and r.raw(col) != first.raw(col):
                    r.fail(col, f"{r.raw(col)!r} differs from row {first.number} for item {code}")
        clause_code = r.text("clause_code", required=True, max_len=64)
        if clause_code is not None and not re.match(r"^[^\[\]\s]+$", clause_code):
            r.fail("clause_code", f"{clause_code!r}: no spaces or brackets")
        text = r.text("clause_text", required=True, max_len=2000)
        basis = [b.strip() for b in LIST_SEPARATORS.split(r.raw("clause_basis")) if b.strip()]
        if clause_code is not None:
            if (code, clause_code) in clause_rows:
                r.fail("clause_code", f"duplicate of row {clause_rows[(code, clause_code)]} "
                                      f"(item {code} clause {clause_code})")
            else:
                clause_rows[(code, clause_code)] = r.number
        items[code][1]["clauses"].append({"code": clause_code, "text": text, "basis": basis})
    _finish(name, errors)
    report = ImportReport("items", name, rows=len(rows))
    _upsert(session, CheckItem, "code", list(items.values()), report, now=now)
    return report


# ------------------------------------------------------------------------------------------------- entities
ENTITY_REQUIRED = ("uscc", "name", "industry_section", "district", "entity_type")
ENTITY_OPTIONAL = ("status", "factors_as_of", "abnormal_list", "serious_list") + NUMERIC_FACTORS


def import_entities(session: Session, source: Source, *, encoding: str = "utf-8-sig") -> ImportReport:
    """The entity directory, into scoring's ``entity`` table.

    New USCCs go through :func:`scoring.service.load_entities`; known USCCs are updated (only the columns the
    file has). A factor cell left blank means unknown (NULL): the entity is then not scored until it is known.
    """
    from scoring.errors import InvalidFactors
    from scoring.service import load_entities

    name, rows, errors = read_rows(source, ENTITY_REQUIRED, ENTITY_OPTIONAL, encoding=encoding)
    records = []
    for r in rows:
        uscc = r.text("uscc", required=True, max_len=18)
        if uscc is not None and not is_valid_uscc(uscc):
            r.fail("uscc", f"{uscc!r} is not a valid unified social credit code (check digit)"
                   + (" — legacy 15-digit registration numbers must be converted first" if len(uscc) == 15 else ""))
        rec: dict[str, Any] = {"uscc": uscc, "name": r.text("name", required=True),
                               "industry_section": r.choice("industry_section", INDUSTRY_SECTIONS),
                               "district": r.text("district", required=True),
                               "entity_type": r.choice("entity_type", ENTITY_TYPES)}
        if rec["district"] is not None and not REGION_RE.match(rec["district"]):
            r.fail("district", f"{rec['district']!r} is not a 6-digit GB/T 2260 code")
        if r.has("status"):
            rec["status"] = r.choice("status", STATUSES, default="active")
        if r.has("factors_as_of"):
            d = r.date("factors_as_of")
            rec["factors_as_of"] = datetime(d.year, d.month, d.day, tzinfo=timezone.utc) if d else None
        for flag in ("abnormal_list", "serious_list"):
            if r.has(flag):
                rec[flag] = r.boolean(flag, False)
        for fname in NUMERIC_FACTORS:
            if not r.has(fname):
                continue
            f = FACTOR_BY_NAME[fname]
            if f.kind == "bool":
                rec[fname] = r.boolean(fname)
                continue
            x = r.real(fname)
            if x is None:
                rec[fname] = None
                continue
            if not f.lo <= x <= f.hi or (f.kind == "int" and x != round(x)):
                r.fail(fname, f"{r.raw(fname)!r} is outside the valid range "
                              f"{f.lo:g}..{f.hi:g}{' (whole number)' if f.kind == 'int' else ''}")
                rec[fname] = None
                continue
            rec[fname] = int(x) if f.kind == "int" else float(x)
        records.append((r, rec))
    _duplicates(rows, lambda r: r.raw("uscc"), "uscc", errors)
    _finish(name, errors)
    report = ImportReport("entities", name, rows=len(rows))
    existing = {e.uscc: e for e in session.scalars(select(Entity).where(
        Entity.uscc.in_([rec["uscc"] for _r, rec in records])))} if records else {}
    new = [(r, rec) for r, rec in records if rec["uscc"] not in existing]
    for _r, rec in records:
        obj = existing.get(rec["uscc"])
        if obj is None:
            continue
        if _apply(obj, rec):
            report.updated += 1
        else:
            report.unchanged += 1
    if new:
        columns = sorted({k for _r, rec in new for k in rec})
        frame = {c: [rec.get(c, _DEFAULTS.get(c)) for _r, rec in new] for c in columns}
        try:
            report.created = load_entities(session, frame)
        except InvalidFactors as exc:  # a rule scoring knows and this importer does not: still row-level
            m = re.fullmatch(r"row (\d+)", str(exc.entity))
            row = new[int(m.group(1))][0].number if m and int(m.group(1)) < len(new) else 0
            raise ImportRejected(name, [RowError(row, exc.field, exc.reason)]) from exc
    session.flush()
    return report


_DEFAULTS = {"status": "active", "abnormal_list": False, "serious_list": False}
