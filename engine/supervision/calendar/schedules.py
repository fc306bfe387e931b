"""A year's official schedule (:class:`YearSchedule`): read and validated from a file or from the
``chinese-calendar`` package, before anything is stored.

* :func:`parse_year_file` — a new year's official schedule (国务院办公厅 notice) from YAML or CSV, format
  below and in ``engine/supervision/data/calendar_year.example.yaml``.
* :func:`package_schedules` — every year the pinned ``chinese-calendar`` package covers.

YAML format::

    year: 2027
    source: 国办发明电〔2026〕N号          # optional; defaults to the file name
    complete: true                        # optional; false = preliminary, stays provisional
    holidays:                             # required: every day of each announced rest period
      - name: 元旦
        days: [2027-01-01, 2027-01-02, 2027-01-03]
      - name: 春节
        from: 2027-02-06                  # a range, both ends included (may be combined with days)
        to: 2027-02-12
    workdays:                             # optional: swapped working days, each a Saturday or Sunday
      - 2027-02-20                        # a date, or
      - {day: 2027-01-30, name: 春节}      # a date with the holiday it makes up for

CSV format: a header ``year,date,kind,name`` and one row per day; ``kind`` is ``holiday`` or
``workday`` (``swapped_workday`` is accepted too); every row has the same ``year``; the file name
is the source.

Validation (all problems are reported at once, each with file, line and field; nothing is loaded
if there is any): known keys/columns only, ISO dates (YYYY-MM-DD), every date inside the year, a
swapped working day on a Saturday or Sunday, no day listed twice, no day both holiday and working
day, at least one holiday.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import yaml
from chinese_calendar import constants

from engine.errors import InvalidInput, NotFound

from .values import WEEKDAYS, CalendarFileError

PACKAGE = "chinese-calendar"
#: chinese-calendar labels → the names used in the official notices.
PACKAGE_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


# ---------------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class DayEntry:
    is_workday: bool
    kind: str
    name: str | None


@dataclass(frozen=True)
class YearSchedule:
    year: int
    source: str
    complete: bool
    days: dict[date, DayEntry]

    def holidays(self) -> list[dict]:
        """Holiday periods: runs of consecutive days with the same name."""
        periods: list[dict] = []
        for d in sorted(k for k, e in self.days.items() if e.kind == "holiday"):
            name = self.days[d].name
            if periods and periods[-1]["name"] == name and date.fromisoformat(periods[-1]["to"]) + timedelta(1) == d:
                periods[-1]["to"] = d.isoformat()
                periods[-1]["days"].append(d.isoformat())
            else:
                periods.append({"name": name, "from": d.isoformat(), "to": d.isoformat(), "days": [d.isoformat()]})
        return periods

    def swapped_workdays(self) -> list[dict]:
        return [{"day": d.isoformat(), "weekday": WEEKDAYS[d.weekday()], "name": e.name}
                for d, e in sorted(self.days.items()) if e.kind == "swapped_workday"]

    def to_dict(self) -> dict:
        return {"year": self.year, "source": self.source, "complete": self.complete,
                "holidays": self.holidays(), "workdays": self.swapped_workdays()}


@dataclass
class _Entry:
    day: date
    kind: str
    name: str | None
    line: int | None
    field: str


class _Issues:
    def __init__(self, file: str):
        self.file = file
        self.items: list[dict] = []

    def add(self, line: int | None, fld: str | None, message: str) -> None:
        self.items.append({"file": self.file, "line": line, "field": fld, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            raise CalendarFileError(f"{self.file}: {n} problem{'s' if n > 1 else ''}, nothing was loaded",
                                    self.items)


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(text: str, issues: _Issues, line: int | None, fld: str) -> date | None:
    text = (text or "").strip()
    if not _DATE_RE.fullmatch(text):
        issues.add(line, fld, f"{text!r} is not a date (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        issues.add(line, fld, f"{text!r} is not a valid date: {exc}")
        return None


def _parse_year(text: str, issues: _Issues, line: int | None, fld: str) -> int | None:
    text = (text or "").strip()
    if not re.fullmatch(r"\d{4}", text) or not 1950 <= int(text) <= 2199:
        issues.add(line, fld, f"{text!r} is not a year between 1950 and 2199")
        return None
    return int(text)


def _validate(year: int | None, entries: list[_Entry], issues: _Issues, top_line: int | None) -> dict[date, DayEntry]:
    seen: dict[date, _Entry] = {}
    days: dict[date, DayEntry] = {}
    if not any(e.kind == "holiday" for e in entries):
        issues.add(top_line, "holidays", "no holidays listed: a year's schedule has at least one")
    for e in entries:
        where = f"line {e.line}" if e.line else e.field
        if year is not None and e.day.year != year:
            issues.add(e.line, e.field, f"{e.day.isoformat()} is outside {year}")
        if e.kind == "swapped_workday" and e.day.weekday() < 5:
            issues.add(e.line, e.field, f"a swapped working day must be a Saturday or Sunday; "
                                        f"{e.day.isoformat()} is a {WEEKDAYS[e.day.weekday()]}")
        prior = seen.get(e.day)
        if prior is not None:
            prior_where = f"line {prior.line}" if prior.line else prior.field
            if prior.kind == e.kind:
                issues.add(e.line, e.field, f"duplicate: {e.day.isoformat()} is already listed ({prior_where})")
            else:
                issues.add(e.line, e.field, f"{e.day.isoformat()} is both a holiday and a working day "
                                            f"({prior_where} and {where})")
            continue
        seen[e.day] = e
        days[e.day] = DayEntry(e.kind == "swapped_workday", e.kind, e.name)
    return days


# YAML ------------------------------------------------------------------------------------------
def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, issues: _Issues, fld: str, allowed: set[str]) -> dict[str, Any] | None:
    if not isinstance(node, yaml.MappingNode):
        issues.add(_line(node), fld, "expected a mapping (key: value)")
        return None
    out: dict[str, Any] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else None
        if key not in allowed:
            issues.add(_line(k), f"{fld}.{key}" if fld else str(key),
                       f"unknown key {key!r} (expected {', '.join(sorted(allowed))})")
        elif key in out:
            issues.add(_line(k), f"{fld}.{key}" if fld else key, f"key {key!r} given twice")
        else:
            out[key] = v
    return out


def _scalar(node, issues: _Issues, fld: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        issues.add(_line(node), fld, "expected a single value")
        return None
    return node.value


def _sequence(node, issues: _Issues, fld: str) -> list:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, yaml.SequenceNode):
        issues.add(_line(node), fld, "expected a list")
        return []
    return list(node.value)


def _date_node(node, issues: _Issues, fld: str) -> date | None:
    text = _scalar(node, issues, fld)
    return None if text is None else _parse_date(text, issues, _line(node), fld)


def _parse_yaml(text: str, name: str) -> YearSchedule:
    issues = _Issues(name)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.add(mark.line + 1 if mark else None, None, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        issues.raise_if_any()
    if root is None:
        issues.add(1, None, "the file is empty")
        issues.raise_if_any()
    top = _mapping(root, issues, "", {"year", "source", "complete", "holidays", "workdays"})
    issues.raise_if_any()
    year = source = None
    complete = True
    entries: list[_Entry] = []
    if "year" not in top:
        issues.add(_line(root), "year", "missing: the year this schedule is for")
    else:
        y = _scalar(top["year"], issues, "year")
        year = None if y is None else _parse_year(y, issues, _line(top["year"]), "year")
    if "source" in top:
        source = _scalar(top["source"], issues, "source")
        if source is not None and not 0 < len(source.strip()) <= 250:
            issues.add(_line(top["source"]), "source", "must be 1–250 characters")
    if "complete" in top:
        c = _scalar(top["complete"], issues, "complete")
        if c is not None and c.lower() not in ("true", "false"):
            issues.add(_line(top["complete"]), "complete", f"{c!r} is not true or false")
        complete = (c or "").lower() != "false"
    if "holidays" not in top:
        issues.add(_line(root), "holidays", "missing: the list of holiday periods")
    for i, node in enumerate(_sequence(top.get("holidays", yaml.ScalarNode("tag:yaml.org,2002:null", "")),
                                       issues, "holidays")):
        fld = f"holidays[{i}]"
        h = _mapping(node, issues, fld, {"name", "days", "from", "to"})
        if h is None:
            continue
        hname = _scalar(h["name"], issues, f"{fld}.name") if "name" in h else None
        if not (hname or "").strip():
            issues.add(_line(node), f"{fld}.name", "missing: the holiday's name (e.g. 春节)")
            hname = None
        if "days" not in h and "from" not in h:
            issues.add(_line(node), fld, "give the days (days: [...]) or a range (from:, to:)")
        for j, dnode in enumerate(_sequence(h["days"], issues, f"{fld}.days") if "days" in h else []):
            d = _date_node(dnode, issues, f"{fld}.days[{j}]")
            if d is not None:
                entries.append(_Entry(d, "holiday", hname, _line(dnode), f"{fld}.days[{j}]"))
        if ("from" in h) != ("to" in h):
            issues.add(_line(node), fld, "a range needs both from: and to:")
        elif "from" in h:
            lo = _date_node(h["from"], issues, f"{fld}.from")
            hi = _date_node(h["to"], issues, f"{fld}.to")
            if lo is not None and hi is not None:
                if hi < lo or (hi - lo).days > 31:
                    issues.add(_line(h["to"]), f"{fld}.to", f"range {lo.isoformat()}..{hi.isoformat()} must run "
                                                            f"forward and be at most a month long")
                else:
                    for k in range((hi - lo).days + 1):
                        entries.append(_Entry(lo + timedelta(days=k), "holiday", hname, _line(h["from"]),
                                              f"{fld}.from"))
    for i, node in enumerate(_sequence(top["workdays"], issues, "workdays") if "workdays" in top else []):
        fld = f"workdays[{i}]"
        if isinstance(node, yaml.MappingNode):
            w = _mapping(node, issues, fld, {"day", "name"})
            if w is None:
                continue
            if "day" not in w:
                issues.add(_line(node), f"{fld}.day", "missing: the date of the swapped working day")
                continue
            d = _date_node(w["day"], issues, f"{fld}.day")
            wname = _scalar(w["name"], issues, f"{fld}.name") if "name" in w else None
        else:
            d, wname = _date_node(node, issues, fld), None
        if d is not None:
            entries.append(_Entry(d, "swapped_workday", wname or None, _line(node), fld))
    days = _validate(year, entries, issues, _line(root))
    issues.raise_if_any()
    return YearSchedule(year, (source or name).strip(), complete, days)


# CSV -------------------------------------------------------------------------------------------
_CSV_COLUMNS = ("year", "date", "kind", "name")
_CSV_KINDS = {"holiday": "holiday", "workday": "swapped_workday", "swapped_workday": "swapped_workday"}


def _parse_csv(text: str, name: str) -> YearSchedule:
    issues = _Issues(name)
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in _CSV_COLUMNS]
    if missing or unknown:
        issues.add(1, None, f"header must be {','.join(_CSV_COLUMNS)}"
                   + (f"; missing {', '.join(missing)}" if missing else "")
                   + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        issues.raise_if_any()
    reader.fieldnames = header
    year: int | None = None
    entries: list[_Entry] = []
    rows = 0
    for row in reader:
        line = reader.line_num
        rows += 1
        if None in row:
            issues.add(line, None, f"{len(row[None])} value(s) more than the header has columns")
        y = _parse_year(row.get("year") or "", issues, line, "year")
        if y is not None:
            if year is None:
                year = y
            elif y != year:
                issues.add(line, "year", f"{y} differs from the file's year {year} (one year per file)")
        d = _parse_date(row.get("date") or "", issues, line, "date")
        kind = _CSV_KINDS.get((row.get("kind") or "").strip())
        if kind is None:
            issues.add(line, "kind", f"{(row.get('kind') or '').strip()!r} is not holiday or workday")
        hname = (row.get("name") or "").strip() or None
        if kind == "holiday" and hname is None:
            issues.add(line, "name", "missing: the holiday's name (e.g. 春节)")
        if d is not None and kind is not None:
            entries.append(_Entry(d, kind, hname, line, "date"))
    if rows == 0:
        issues.add(1, None, "no rows")
        issues.raise_if_any()
    days = _validate(year, entries, issues, 1)
    issues.raise_if_any()
    return YearSchedule(year, name, True, days)


def parse_year_file(path: str | Path) -> YearSchedule:
    """Read and validate a schedule file (``.yaml``/``.yml`` or ``.csv``); raises CalendarFileError."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"calendar file {p} not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarFileError(f"{p.name}: not UTF-8 text", [{"file": p.name, "line": None, "field": None,
                                                               "message": str(exc)}]) from exc
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _parse_yaml(text, p.name)
    if suffix == ".csv":
        return _parse_csv(text, p.name)
    raise InvalidInput(f"{p.name}: unknown calendar file type {suffix!r} (expected .yaml, .yml or .csv)")


# ---------------------------------------------------------------------------------------------- the package
def package_schedules() -> list[YearSchedule]:
    """Every year of the installed chinese-calendar package, validated like a file."""
    source = f"{PACKAGE} {_dist_version(PACKAGE)}"
    by_year: dict[int, list[_Entry]] = {}
    for d, label in constants.holidays.items():
        by_year.setdefault(d.year, []).append(_Entry(d, "holiday", PACKAGE_NAMES.get(label, label), None,
                                                     f"holidays[{d.isoformat()}]"))
    for d, label in constants.workdays.items():
        by_year.setdefault(d.year, []).append(_Entry(d, "swapped_workday", PACKAGE_NAMES.get(label, label),
                                                     None, f"workdays[{d.isoformat()}]"))
    out = []
    for y, entries in sorted(by_year.items()):
        issues = _Issues(source)
        days = _validate(y, sorted(entries, key=lambda e: (e.day, e.kind)), issues, None)
        issues.raise_if_any()
        out.append(YearSchedule(y, source, True, days))
    return out
