"""The calendar's constants, errors and values: a day's status (:class:`DayInfo`), a computed deadline
(:class:`Deadline`) and the deadline as an aware ``datetime`` that survives the engine's JSON state
(:class:`DeadlineTime`); and :func:`local_day`, the China calendar day of a date, datetime or ISO string.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from engine.errors import EngineError, InvalidInput, NotFound
from engine.runtime import clock


def _shanghai():
    try:
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

#: Weekday names, Monday first (``date.weekday()`` indexes them).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


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


# ---------------------------------------------------------------------------------------------- days
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
