"""Reading a registry CSV file: the header checked, every row with typed accessors that record each problem
(spreadsheet row and column) instead of raising, and the rejection that lists them all.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2. The importers that
validate and write each file are in :mod:`engine.supervision.importer`.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.errors import InvalidInput, NotFound

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


def read_text(source: Source, encoding: str) -> tuple[str, str]:
    if isinstance(source, io.TextIOBase):
        return source.read(), getattr(source, "name", "<stream>")
    path = Path(source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
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
    text, name = read_text(source, encoding)
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



def note_duplicates(rows: list[Row], key: Callable[[Row], Any], column: str, errors: list[RowError]) -> None:
    """A key (``key(row)``, blank ones ignored) seen on an earlier row: an error naming that row."""
    first: dict[Any, int] = {}
    for r in rows:
        k = key(r)
        if k is None or k == "":
            continue
        if k in first:
            errors.append(RowError(r.number, column, f"duplicate of row {first[k]} ({k})"))
        else:
            first[k] = r.number



def reject_if_any(name: str, errors: list[RowError]) -> None:
    """Raise :class:`ImportRejected` listing ``errors`` (sorted by row and column), if there are any."""
    if errors:
        errors.sort(key=lambda e: (e.row, e.column or ""))
        raise ImportRejected(name, errors)

