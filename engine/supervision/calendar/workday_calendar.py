"""Working-day arithmetic over a schedule held in memory (:class:`WorkdayCalendar`).

The start day is excluded: ``add_workdays(start, n)`` is the n-th working day after it, ``add_days(start, n)``
is ``start + n`` calendar days rolled forward to the next working day; ``n == 0`` gives the start day itself,
rolled forward if it is not a working day. A day the schedule does not list is a working day from Monday to
Friday. A year without a complete schedule makes the result provisional (``strict=True``: an error).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..calendar_models import CalendarDay, CalendarYear
from .schedules import YearSchedule
from .values import DEADLINE_TIME, KINDS, MAX_COUNT, SHANGHAI, CalendarMissing, DayInfo, Deadline, local_day


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
    def from_schedules(cls, schedules: Iterable[YearSchedule]) -> "WorkdayCalendar":
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


def calendar_fingerprint(session: Session) -> tuple:
    """Cheap summary of the stored calendar; changes whenever a year is seeded, loaded or replaced."""
    years, last = session.execute(select(func.count(CalendarYear.year), func.max(CalendarYear.loaded_at))).one()
    days = session.scalar(select(func.count()).select_from(CalendarDay))
    return (years, last.isoformat() if last else None, days)
