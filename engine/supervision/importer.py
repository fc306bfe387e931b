"""CSV importers for the registries: all or nothing, every problem reported with its row and column.

Each ``import_*`` function reads a whole file, validates every row (types, dates, codes, USCC check digits,
references to departments/skills/inspectors, duplicates inside the file) and only then writes. If any row
is wrong it raises :class:`ImportRejected` listing every problem and writes nothing; the caller's
transaction is not touched. Rows whose key already exists in the database are **updated in place** (upsert
by code; for entities by USCC, for leave by inspector and period, for conflicts by inspector and USCC), so
importing the same file twice changes nothing the second time. Nothing is ever deleted by an import.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2. The CSV format
of each file is documented in ``engine/supervision/README.md``.

Reading and checking the rows is :mod:`engine.supervision.importer_rows`; this module validates what each
file means (references, duplicates, the registry's rules) and writes.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.errors import InvalidFactors
from scoring.factors import ENTITY_TYPES, FACTOR_BY_NAME, INDUSTRY_SECTIONS, NUMERIC_FACTORS, STATUSES
from scoring.models import Entity
from scoring.uscc import is_valid_uscc

from .importer_rows import (
    LIST_SEPARATORS,
    REGION_RE,
    ImportRejected,
    ImportReport,
    Row,
    RowError,
    Source,
    note_duplicates,
    read_rows,
    reject_if_any,
)
from .registry_models import (
    FREQUENCIES,
    METHODS,
    CheckItem,
    Department,
    Inspector,
    InspectorConflict,
    InspectorLeave,
    Skill,
)

__all__ = ["ImportRejected", "ImportReport", "RowError", "import_conflicts", "import_departments",
           "import_entities", "import_inspectors", "import_items", "import_leaves", "import_skills"]


# ------------------------------------------------------------------------------------------------- writing
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



# ------------------------------------------------------------------------------------------------- departments, skills
def _import_codes(session: Session, source: Source, model, kind: str, encoding: str) -> ImportReport:
    name, rows, errors = read_rows(source, ("code", "name"), encoding=encoding)
    records = []
    for r in rows:
        rec = {"code": r.code("code"), "name": r.text("name", required=True)}
        records.append((r, rec))
    note_duplicates(rows, lambda r: r.raw("code"), "code", errors)
    reject_if_any(name, errors)
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
    note_duplicates(rows, lambda r: r.raw("code"), "code", errors)
    note_duplicates(rows, lambda r: r.raw("cert_no"), "cert_no", errors)
    reject_if_any(name, errors)
    # a certificate number held by another inspector already in the registry
    codes = {rec["code"] for _r, rec in records}
    certs = {rec["cert_no"]: r for r, rec in records if rec["cert_no"]}
    if certs:
        for code, cert in session.execute(select(Inspector.code, Inspector.cert_no)
                                          .where(Inspector.cert_no.in_(list(certs)))):
            r = certs[cert]
            if code != r.raw("code") and code not in codes:
                errors.append(RowError(r.number, "cert_no", f"certificate {cert} already belongs to inspector {code}"))
    reject_if_any(name, errors)
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
    note_duplicates(rows, lambda r: (r.raw("inspector"), r.raw("start_date"), r.raw("end_date")), "start_date", errors)
    reject_if_any(name, errors)
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
    note_duplicates(rows, lambda r: (r.raw("inspector"), r.raw("uscc")), "uscc", errors)
    reject_if_any(name, errors)
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
    reject_if_any(name, errors)
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
    # deferred: scoring.service loads numpy and scikit-learn, and the CLI imports this module at start-up
    from scoring.service import load_entities  # noqa: PLC0415  (scikit-learn: see above)

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
    note_duplicates(rows, lambda r: r.raw("uscc"), "uscc", errors)
    reject_if_any(name, errors)
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
