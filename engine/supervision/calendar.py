"""Chinese working days as data: deadlines in working days and in calendar days (DOMAIN.md §6).

Rules
    * A day is a working day unless the loaded schedule says otherwise: Monday–Friday work,
      Saturday–Sunday rest, official holidays rest, swapped working days (调休) work.
    * The start day is excluded. ``add_workdays(start, n)`` is the n-th working day after the start
      day; ``add_days(start, n)`` is ``start + n`` calendar days, rolled forward to the next working day
      when that day is a holiday or a rest day ("holiday deadlines roll", Civil Code art. 203).
      ``n == 0`` gives the start day itself, rolled forward if it is not a working day.
    * Administrative Penalty Law art. 85: its "2/3/5/7 days" are working days, every other count is
      calendar days (:func:`legal_days`).
    * A deadline is the end of its day in China: ``DEADLINE_TIME`` (23:59:59) Asia/Shanghai.
    * A year without a complete schedule in the database is computed from weekends alone, and the
      result says so (``provisional=True``, ``missing_years``) — never silently exact. Callers that
      must fail loudly pass ``strict=True`` and get :class:`CalendarMissing`.

Where the data comes from (see :mod:`engine.supervision.calendar_models`)
    * :func:`seed_from_chinese_calendar` — every year the pinned ``chinese-calendar`` package covers.
    * :func:`load_year_file` — a new year's official schedule (国务院办公厅 notice) from YAML or CSV,
      format below and in ``engine/supervision/data/calendar_year.example.yaml``.

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
day, at least one holiday. Loading a year that is already complete with different content needs
``replace=True`` (``--replace``); identical content is a no-op.

BPMN expressions get :data:`HELPERS` (``workdays``, ``calendar_days``, ``legal_days``,
``deadline_info``, ``is_workday``), computed on the module's current calendar (:func:`use_calendar`,
:func:`refresh`) from ``engine.runtime.clock.now()``. What survives the engine's JSON state:

    * ``workdays(n)`` / ``calendar_days(n)`` / ``legal_days(n)`` return a :class:`DeadlineTime`, an
      aware ``datetime`` carrying ``provisional``, ``missing_years``, ``start``, ``n`` and ``kind``.
      As a timer expression it gives the due date (the flag does not reach the timer's own state).
      Stored in task data it survives save/restore only once the engine's serializer registry knows
      it (:func:`register_serializer`); until then the serializer refuses it (a loud ``TypeError``),
      it never degrades silently.
    * ``deadline_info(n, kind=...)`` returns plain JSON: ``{"at": iso, "day": iso, "provisional":
      bool, "missing_years": [...], "start": iso, "n": n, "kind": ...}``; its ``start``/``n``/
      ``kind`` are what :func:`recompute` needs once the missing year is loaded.
"""
from __future__ import annotations

import csv
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import yaml
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from engine.db import utcnow
from engine.errors import Conflict, EngineError, InvalidInput, NotFound
from engine.runtime import clock

from .calendar_models import CalendarDay, CalendarYear


def _shanghai():
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Shanghai")
    except Exception:  # noqa: BLE001 - no tz database on this machine
        # China has kept UTC+8 without daylight saving since 1991: the same instants.
        return timezone(timedelta(hours=8), "Asia/Shanghai")


SHANGHAI = _shanghai()
#: The moment a deadline ends on its day (Asia/Shanghai): the last second of the day.
DEADLINE_TIME = time(23, 59, 59)
#: Longest count the helpers accept (about 27 years): guards expressions against runaway loops.
MAX_COUNT = 10_000
KINDS = ("workdays", "days")
#: Administrative Penalty Law art. 85: these counts of days are working days.
PENALTY_LAW_WORKDAY_COUNTS = frozenset({2, 3, 5, 7})

PACKAGE = "chinese-calendar"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
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


# ---------------------------------------------------------------------------------------------- errors
class CalendarMissing(NotFound):
    """Strict mode: a computation needs a year whose official schedule is not loaded."""

    def __init__(self, year: int):
        super().__init__(f"no working-day calendar for {year}: load that year's official schedule with "
                         f"`regflow calendar load FILE`", year=year)
        self.year = year


class CalendarNotInstalled(EngineError):
    """The deadline helpers were called before :func:`use_calendar` / :func:`refresh`."""


class CalendarFileError(InvalidInput):
    """A schedule file that cannot be loaded. ``issues``: dicts with file, line, field, message."""

    def __init__(self, message: str, issues: list[dict]):
        super().__init__(message, issues=issues)
        self.issues = issues

    def __str__(self) -> str:
        lines = [self.message]
        for i in self.issues:
            where = ":".join(str(p) for p in (i.get("file"), i.get("line")) if p)
            fld = f" ({i['field']})" if i.get("field") else ""
            lines.append(f"  {where}{fld}: {i['message']}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class DayInfo:
    day: date
    is_workday: bool
    #: holiday | swapped_workday | weekend | workday
    kind: str
    name: str | None
    #: The day's year has no complete schedule: ``is_workday`` only knows about weekends.
    provisional: bool


@dataclass(frozen=True)
class Deadline:
    #: End of ``day`` in Asia/Shanghai (``DEADLINE_TIME``), timezone-aware.
    at: datetime
    day: date
    #: True when a day the computation looked at lies in a year without a complete schedule.
    provisional: bool
    missing_years: list[int]
    #: What produced it, so it can be recomputed: local start day, count and kind.
    start: date
    n: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "day": self.day.isoformat(), "provisional": self.provisional,
                "missing_years": list(self.missing_years), "start": self.start.isoformat(), "n": self.n,
                "kind": self.kind}

    def as_datetime(self) -> "DeadlineTime":
        return DeadlineTime.from_deadline(self)


def _plain(value: datetime) -> datetime:
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=value.tzinfo, fold=value.fold)


class DeadlineTime(datetime):
    """An aware ``datetime`` (the deadline) that remembers whether it is provisional and its inputs.

    Arithmetic and ``replace`` give plain datetimes (the result is no longer that deadline);
    ``astimezone`` keeps the information (same instant). Copies and pickles keep it too.
    """

    provisional: bool
    missing_years: tuple[int, ...]
    start: date
    n: int
    kind: str

    @classmethod
    def from_deadline(cls, d: Deadline) -> "DeadlineTime":
        return cls._make(d.at, d.provisional, d.missing_years, d.start, d.n, d.kind)

    @classmethod
    def _make(cls, at: datetime, provisional: bool, missing_years: Iterable[int], start: date, n: int,
              kind: str) -> "DeadlineTime":
        obj = cls(at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond,
                  tzinfo=at.tzinfo, fold=at.fold)
        obj.provisional = bool(provisional)
        obj.missing_years = tuple(missing_years)
        obj.start = start
        obj.n = n
        obj.kind = kind
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.isoformat(), "provisional": self.provisional,
                "missing_years": list(self.missing_years), "start": self.start.isoformat(), "n": self.n,
                "kind": self.kind}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "DeadlineTime":
        return cls._make(datetime.fromisoformat(doc["at"]), doc["provisional"], doc.get("missing_years", ()),
                         date.fromisoformat(doc["start"]), int(doc["n"]), doc["kind"])

    def as_deadline(self) -> Deadline:
        local = self.astimezone(SHANGHAI)
        return Deadline(at=_plain(local), day=local.date(), provisional=self.provisional,
                        missing_years=list(self.missing_years), start=self.start, n=self.n, kind=self.kind)

    def __reduce_ex__(self, protocol):
        return (DeadlineTime.from_dict, (self.to_dict(),))

    def __reduce__(self):
        return self.__reduce_ex__(2)

    def __add__(self, other):
        return _demote(super().__add__(other))

    __radd__ = __add__

    def __sub__(self, other):
        return _demote(super().__sub__(other))

    def replace(self, *args, **kwargs):
        return _plain(super().replace(*args, **kwargs))

    def astimezone(self, tz=None):
        moved = _plain(super().astimezone(tz))
        return DeadlineTime._make(moved, self.provisional, self.missing_years, self.start, self.n, self.kind)

    def __repr__(self) -> str:
        flag = ", provisional" if self.provisional else ""
        return f"DeadlineTime({self.isoformat()}{flag}, {self.n} {self.kind} from {self.start.isoformat()})"


def _demote(value):
    return _plain(value) if isinstance(value, datetime) else value


def register_serializer(registry) -> None:
    """Teach a SpiffWorkflow serializer registry to keep :class:`DeadlineTime` in task data."""
    registry.register(DeadlineTime, lambda v: v.to_dict(), DeadlineTime.from_dict, typename="RegflowDeadline")


# ---------------------------------------------------------------------------------------------- calendar
def local_day(value: date | datetime | str) -> date:
    """The Asia/Shanghai calendar day of ``value`` (an aware datetime, a date or an ISO string)."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        value = clock.parse_iso(text)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime or a date")
        return value.astimezone(SHANGHAI).date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date, an aware datetime or an ISO string, not {type(value).__name__}")


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        else:
            raise ValueError(f"a count of days must be a whole number, not {n!r}")
    if n < 0 or n > MAX_COUNT:
        raise ValueError(f"a count of days must be between 0 and {MAX_COUNT}, not {n}")
    return n


class WorkdayCalendar:
    """The schedule held in memory: exceptions by day plus the set of years that are known.

    Immutable once built; build a new one (:meth:`from_session`) when the data changes.
    """

    def __init__(self, exceptions: Mapping[date, tuple[bool, str, str | None]], known_years: Iterable[int],
                 fingerprint: tuple | None = None):
        self._exceptions = dict(exceptions)
        self.known_years = frozenset(known_years)
        self.fingerprint = fingerprint
        #: (first day, n, kind) -> (deadline day, years looked at): the calendar never changes, so neither does
        #: a walk over it (a campaign launch asks for the same deadline thousands of times)
        self._walks: dict[tuple[date, int, str], tuple[date, frozenset[int]]] = {}

    @classmethod
    def from_session(cls, session: Session) -> "WorkdayCalendar":
        days = {r.day: (r.is_workday, r.kind, r.name) for r in session.scalars(select(CalendarDay))}
        known = session.scalars(select(CalendarYear.year).where(CalendarYear.complete.is_(True))).all()
        return cls(days, known, calendar_fingerprint(session))

    @classmethod
    def from_schedules(cls, schedules: Iterable["YearSchedule"]) -> "WorkdayCalendar":
        """A calendar without a database (tests, tools): the given schedules only."""
        exceptions: dict[date, tuple[bool, str, str | None]] = {}
        known = []
        for s in schedules:
            exceptions.update({d: (e.is_workday, e.kind, e.name) for d, e in s.days.items()})
            if s.complete:
                known.append(s.year)
        return cls(exceptions, known)

    # days ---------------------------------------------------------------------------------------
    def is_known(self, year: int) -> bool:
        return year in self.known_years

    def day_info(self, day: date | datetime | str) -> DayInfo:
        d = local_day(day)
        provisional = d.year not in self.known_years
        exc = self._exceptions.get(d)
        if exc is not None:
            return DayInfo(d, exc[0], exc[1], exc[2], provisional)
        weekend = d.weekday() >= 5
        return DayInfo(d, not weekend, "weekend" if weekend else "workday", None, provisional)

    def is_workday(self, day: date | datetime | str, *, strict: bool = False) -> bool:
        d = local_day(day)
        if strict and d.year not in self.known_years:
            raise CalendarMissing(d.year)
        exc = self._exceptions.get(d)
        return exc[0] if exc is not None else d.weekday() < 5

    def _workday(self, d: date, touched: set[int]) -> bool:
        touched.add(d.year)
        exc = self._exceptions.get(d)
        return exc[0] if exc is not None else d.weekday() < 5

    # deadlines ----------------------------------------------------------------------------------
    def add_workdays(self, start: date | datetime | str, n: int, *, strict: bool = False) -> Deadline:
        """The ``n``-th working day after the start day (excluded); ``n == 0``: the start day, rolled."""
        return self._walk(local_day(start), _count(n), "workdays", strict)

    def add_days(self, start: date | datetime | str, n: int, *, strict: bool = False) -> Deadline:
        """``n`` calendar days after the start day (excluded), rolled forward to a working day."""
        return self._walk(local_day(start), _count(n), "days", strict)

    _WALKS_KEPT = 4096

    def _walk(self, first: date, n: int, kind: str, strict: bool) -> Deadline:
        key = (first, n, kind)
        hit = self._walks.get(key)
        if hit is None:
            touched: set[int] = set()
            if kind == "workdays":
                d = first
                if n == 0:
                    while not self._workday(d, touched):
                        d += timedelta(days=1)
                counted = 0
                while counted < n:
                    d += timedelta(days=1)
                    if self._workday(d, touched):
                        counted += 1
            else:
                d = first + timedelta(days=n)
                while not self._workday(d, touched):
                    d += timedelta(days=1)
            hit = (d, frozenset(touched))
            if len(self._walks) < self._WALKS_KEPT:
                self._walks[key] = hit
        return self._deadline(first, n, kind, hit[0], hit[1], strict)

    def compute(self, start: date | datetime | str, n: int, kind: str, *, strict: bool = False) -> Deadline:
        if kind == "workdays":
            return self.add_workdays(start, n, strict=strict)
        if kind == "days":
            return self.add_days(start, n, strict=strict)
        raise ValueError(f"unknown deadline kind {kind!r} (expected one of {', '.join(KINDS)})")

    def _deadline(self, start: date, n: int, kind: str, day: date, touched: frozenset[int], strict: bool) -> Deadline:
        missing = sorted(y for y in touched if y not in self.known_years)
        if strict and missing:
            raise CalendarMissing(missing[0])
        at = datetime.combine(day, DEADLINE_TIME, tzinfo=SHANGHAI)
        return Deadline(at=at, day=day, provisional=bool(missing), missing_years=missing, start=start, n=n,
                        kind=kind)

    def __repr__(self) -> str:
        years = sorted(self.known_years)
        span = f"{years[0]}–{years[-1]}" if years else "none"
        return f"WorkdayCalendar(known years {span}, {len(self._exceptions)} exception days)"


def recompute(deadlines: Sequence[tuple[Any, int, str] | Mapping[str, Any] | Deadline],
              calendar: WorkdayCalendar | None = None, *, strict: bool = False) -> list[Deadline]:
    """Compute deadlines again (e.g. open provisional ones after a year was loaded).

    Each item is ``(start, n, kind)``, a :class:`Deadline`, a :class:`DeadlineTime` or a
    :func:`deadline_info` dict. Uses the current calendar unless one is given.
    """
    cal = calendar or current_calendar()
    out = []
    for item in deadlines:
        if isinstance(item, (Deadline, DeadlineTime)):
            start, n, kind = item.start, item.n, item.kind
        elif isinstance(item, Mapping):
            start, n, kind = item["start"], item["n"], item["kind"]
        else:
            start, n, kind = item
        out.append(cal.compute(start, n, kind, strict=strict))
    return out


# ---------------------------------------------------------------------------------------------- current calendar
_current: dict[str, Any] = {"calendar": None, "stale": False}
_current_lock = threading.Lock()
_last = threading.local()


def use_calendar(calendar: WorkdayCalendar | None) -> None:
    """Install the calendar the helpers use in this process (``None`` uninstalls it)."""
    with _current_lock:
        _current["calendar"] = calendar
        _current["stale"] = False


def current_calendar() -> WorkdayCalendar:
    cal = _current["calendar"]
    if cal is None:
        raise CalendarNotInstalled("no working-day calendar installed: call "
                                   "engine.supervision.calendar.refresh(session) at start-up")
    return cal


def invalidate() -> None:
    """The data changed: the next :func:`refresh` reloads even if the fingerprint looks the same."""
    _current["stale"] = True


def calendar_fingerprint(session: Session) -> tuple:
    """Cheap summary of the stored calendar; changes whenever a year is seeded, loaded or replaced."""
    years, last = session.execute(select(func.count(CalendarYear.year), func.max(CalendarYear.loaded_at))).one()
    days = session.scalar(select(func.count()).select_from(CalendarDay))
    return (years, last.isoformat() if last else None, days)


def needs_refresh() -> bool:
    """True when no calendar is installed or this process changed the stored one."""
    return _current["calendar"] is None or bool(_current["stale"])


def refresh(session: Session) -> WorkdayCalendar:
    """Install the stored calendar, reloading only if it changed since it was last loaded.

    One cheap query when nothing changed: call it at start-up and at the start of each worker poll,
    so a year loaded by another process is picked up.
    """
    cal = _current["calendar"]
    if cal is None or _current["stale"] or cal.fingerprint != calendar_fingerprint(session):
        cal = WorkdayCalendar.from_session(session)
        use_calendar(cal)
    return cal


def last_deadline() -> Deadline | None:
    """The last deadline a helper computed in this thread."""
    return getattr(_last, "deadline", None)


# ---------------------------------------------------------------------------------------------- helpers for BPMN
def _compute(n, start, kind: str, strict: bool) -> Deadline:
    d = current_calendar().compute(clock.now() if start is None else start, n, kind, strict=strict)
    _last.deadline = d
    return d


def workdays(n: int, start: date | datetime | str | None = None, strict: bool = False) -> DeadlineTime:
    """Deadline ``n`` working days after ``start`` (default: now), as an aware datetime."""
    return _compute(n, start, "workdays", strict).as_datetime()


def calendar_days(n: int, start: date | datetime | str | None = None, strict: bool = False) -> DeadlineTime:
    """Deadline ``n`` calendar days after ``start`` (default: now), rolled to a working day."""
    return _compute(n, start, "days", strict).as_datetime()


def legal_days(n: int, start: date | datetime | str | None = None, strict: bool = False) -> DeadlineTime:
    """Penalty Law art. 85: 2, 3, 5 or 7 days are working days, any other count calendar days."""
    kind = "workdays" if n in PENALTY_LAW_WORKDAY_COUNTS else "days"
    return _compute(n, start, kind, strict).as_datetime()


def deadline_info(n: int, start: date | datetime | str | None = None, kind: str = "workdays",
                  strict: bool = False) -> dict:
    """Plain-JSON deadline: ``{"at", "day", "provisional", "missing_years", "start", "n", "kind"}``."""
    return _compute(n, start, kind, strict).to_dict()


def day_start(day: date | datetime | str) -> datetime:
    """The first moment of ``day`` in China (00:00 Asia/Shanghai), as an aware datetime: when a campaign's
    window opens, say, for a timer or a comparison with ``now()``."""
    return datetime.combine(local_day(day), datetime.min.time(), tzinfo=SHANGHAI)


def is_workday(day: date | datetime | str | None = None) -> bool:
    """Whether ``day`` (default: today in China) is a working day."""
    return current_calendar().is_workday(clock.now() if day is None else day)


HELPERS: dict[str, Callable[..., Any]] = {
    "workdays": workdays,
    "calendar_days": calendar_days,
    "legal_days": legal_days,
    "deadline_info": deadline_info,
    "is_workday": is_workday,
    "day_start": day_start,
}


def register_script_helpers() -> None:
    """Offer :data:`HELPERS` to every BPMN script and expression. They are bounded (a count of days above
    :data:`MAX_COUNT` is refused), so an expression such as ``workdays(5)`` runs without the time budget's
    tracer."""
    from engine.runtime.scripting import register_helper

    for name, fn in HELPERS.items():
        register_helper(name, fn, replace=True, bounded=True)


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
        return [{"day": d.isoformat(), "weekday": _WEEKDAYS[d.weekday()], "name": e.name}
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
                                        f"{e.day.isoformat()} is a {_WEEKDAYS[e.day.weekday()]}")
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


# ---------------------------------------------------------------------------------------------- storing
@dataclass
class YearLoadResult:
    year: int
    source: str
    complete: bool
    #: True when nothing needed to be written (same content already stored).
    unchanged: bool
    #: The year had no row before.
    created: bool
    #: The year went from unknown/preliminary to complete: its provisional deadlines need recomputing.
    became_exact: bool
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _day_doc(d: date, kind: str, name: str | None) -> dict:
    return {"day": d.isoformat(), "weekday": _WEEKDAYS[d.weekday()], "kind": kind, "name": name}


def _year_rows(session: Session, year: int) -> dict[date, CalendarDay]:
    q = select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    return {r.day: r for r in session.scalars(q)}


def load_schedule(session: Session, schedule: YearSchedule, *, replace: bool = False) -> YearLoadResult:
    """Store a validated year; all or nothing (one savepoint). The caller commits."""
    y = schedule.year
    year_row = session.get(CalendarYear, y)
    old = _year_rows(session, y)
    added, removed, changed = [], [], []
    for d, e in sorted(schedule.days.items()):
        row = old.get(d)
        if row is None:
            added.append(_day_doc(d, e.kind, e.name))
        elif (row.is_workday, row.kind, row.name) != (e.is_workday, e.kind, e.name):
            changed.append({**_day_doc(d, e.kind, e.name), "was": {"kind": row.kind, "name": row.name}})
    for d, row in sorted(old.items()):
        if d not in schedule.days:
            removed.append(_day_doc(d, row.kind, row.name))
    differs = bool(added or removed or changed) or year_row is None or year_row.complete != schedule.complete
    result = YearLoadResult(y, schedule.source, schedule.complete, unchanged=not differs,
                            created=year_row is None,
                            became_exact=schedule.complete and (year_row is None or not year_row.complete),
                            added=added, removed=removed, changed=changed)
    if not differs:
        return result
    if year_row is not None and year_row.complete and not replace:
        raise Conflict(f"{y} is already loaded from {year_row.source} with different days "
                       f"({len(added)} added, {len(removed)} removed, {len(changed)} changed); "
                       f"pass --replace to replace it")
    with session.begin_nested():
        session.execute(delete(CalendarDay).where(CalendarDay.day >= date(y, 1, 1),
                                                  CalendarDay.day <= date(y, 12, 31)))
        session.add_all(CalendarDay(day=d, is_workday=e.is_workday, kind=e.kind, name=e.name,
                                    source=schedule.source) for d, e in sorted(schedule.days.items()))
        if year_row is None:
            session.add(CalendarYear(year=y, source=schedule.source, loaded_at=utcnow(),
                                     complete=schedule.complete))
        else:
            year_row.source, year_row.loaded_at, year_row.complete = schedule.source, utcnow(), schedule.complete
    _invalidate_after_commit(session)
    return result


def _invalidate_after_commit(session: Session) -> None:
    if not event.contains(session, "after_commit", _on_commit):
        event.listen(session, "after_commit", _on_commit, once=True)


def _on_commit(_session) -> None:
    invalidate()


def load_year_file(session: Session, path: str | Path, *, replace: bool = False) -> YearLoadResult:
    """Validate and store a year's official schedule file (format in the module docstring)."""
    return load_schedule(session, parse_year_file(path), replace=replace)


def package_schedules() -> list[YearSchedule]:
    """Every year of the installed chinese-calendar package, validated like a file."""
    from chinese_calendar import constants

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


@dataclass
class SeedResult:
    source: str
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    #: Years loaded from an official file: never overwritten by the package.
    kept: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def seed_from_chinese_calendar(session: Session) -> SeedResult:
    """Store every year the package covers. Idempotent; years loaded from files are kept."""
    schedules = package_schedules()
    result = SeedResult(source=schedules[0].source if schedules else PACKAGE)
    for s in schedules:
        existing = session.get(CalendarYear, s.year)
        if existing is not None and not existing.source.startswith(PACKAGE):
            result.kept.append(s.year)
            continue
        r = load_schedule(session, s, replace=True)
        (result.unchanged if r.unchanged else result.created if r.created else result.updated).append(s.year)
    return result


# ---------------------------------------------------------------------------------------------- queries
def years_loaded(session: Session) -> list[int]:
    """Years with a complete schedule (computations there are exact)."""
    return list(session.scalars(select(CalendarYear.year).where(CalendarYear.complete.is_(True))
                                .order_by(CalendarYear.year)))


def provisional_years(session: Session, through: int | None = None, since: int | None = None) -> list[int]:
    """Years from ``since`` (default: this year) to ``through`` (default: next year) whose
    computations would be provisional: no schedule, or only a preliminary one."""
    this_year = clock.now().astimezone(SHANGHAI).year
    lo = this_year if since is None else since
    hi = this_year + 1 if through is None else through
    known = set(years_loaded(session))
    return [y for y in range(lo, hi + 1) if y not in known]


def year_schedule(session: Session, year: int) -> YearSchedule:
    """The stored schedule of ``year``; NotFound if it was never loaded."""
    row = session.get(CalendarYear, year)
    if row is None:
        raise NotFound(f"no working-day calendar for {year}: deadlines there are provisional (weekends only); "
                       f"load the official schedule with `regflow calendar load FILE`")
    days = {d: DayEntry(r.is_workday, r.kind, r.name) for d, r in _year_rows(session, year).items()}
    return YearSchedule(year, row.source, row.complete, days)


def iter_years(session: Session) -> Iterator[CalendarYear]:
    yield from session.scalars(select(CalendarYear).order_by(CalendarYear.year))
