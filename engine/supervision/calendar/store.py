"""The stored calendar (tables in :mod:`engine.supervision.calendar_models`): loading a validated year,
all or nothing; seeding every year of the ``chinese-calendar`` package; and what is stored.

Loading a year that is already complete with different content needs ``replace=True`` (``--replace``);
identical content is a no-op. A load marks the installed calendar stale once the transaction commits.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from engine.db import utcnow
from engine.errors import Conflict, NotFound
from engine.runtime import clock

from ..calendar_models import CalendarDay, CalendarYear
from .current import invalidate
from .schedules import PACKAGE, DayEntry, YearSchedule, package_schedules, parse_year_file
from .values import SHANGHAI, WEEKDAYS


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
    return {"day": d.isoformat(), "weekday": WEEKDAYS[d.weekday()], "kind": kind, "name": name}


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
