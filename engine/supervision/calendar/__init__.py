"""Chinese working days as data: deadlines in working days and in calendar days, the legal deadlines
of the inspection loop (rectification orders, case decisions, publication).

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
      format in :mod:`.schedules` and in ``engine/supervision/data/calendar_year.example.yaml``.

BPMN expressions get :data:`HELPERS` (``workdays``, ``calendar_days``, ``legal_days``,
``deadline_info``, ``is_workday``), computed on the process's current calendar (:func:`use_calendar`,
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

Modules: :mod:`.values` (constants, errors, :class:`Deadline`, :class:`DeadlineTime`),
:mod:`.workday_calendar` (:class:`WorkdayCalendar`, the arithmetic), :mod:`.current` (the installed
calendar), :mod:`.helpers` (BPMN helpers, serializer entry), :mod:`.schedules` (reading and validating a
year's schedule), :mod:`.store` (storing, seeding and reading years). Import from this package.
"""
from __future__ import annotations

from .current import current_calendar, invalidate, needs_refresh, recompute, refresh, use_calendar
from .helpers import (
    HELPERS,
    calendar_days,
    day_start,
    deadline_info,
    is_workday,
    last_deadline,
    legal_days,
    register_script_helpers,
    register_serializer,
    workdays,
)
from .schedules import PACKAGE, PACKAGE_NAMES, DayEntry, YearSchedule, package_schedules, parse_year_file
from .store import (
    SeedResult,
    YearLoadResult,
    iter_years,
    load_schedule,
    load_year_file,
    provisional_years,
    seed_from_chinese_calendar,
    year_schedule,
    years_loaded,
)
from .values import (
    DEADLINE_TIME,
    KINDS,
    MAX_COUNT,
    PENALTY_LAW_WORKDAY_COUNTS,
    SHANGHAI,
    WEEKDAYS,
    CalendarFileError,
    CalendarMissing,
    CalendarNotInstalled,
    DayInfo,
    Deadline,
    DeadlineTime,
    local_day,
)
from .workday_calendar import WorkdayCalendar, calendar_fingerprint

__all__ = [
    "DEADLINE_TIME", "KINDS", "MAX_COUNT", "PENALTY_LAW_WORKDAY_COUNTS", "SHANGHAI", "WEEKDAYS",
    "CalendarFileError", "CalendarMissing", "CalendarNotInstalled", "DayInfo", "Deadline", "DeadlineTime",
    "local_day", "WorkdayCalendar", "calendar_fingerprint", "current_calendar", "invalidate", "needs_refresh",
    "recompute", "refresh", "use_calendar", "HELPERS", "calendar_days", "day_start", "deadline_info", "is_workday",
    "last_deadline", "legal_days", "register_script_helpers", "register_serializer", "workdays", "PACKAGE",
    "PACKAGE_NAMES", "DayEntry", "YearSchedule", "package_schedules", "parse_year_file", "SeedResult",
    "YearLoadResult", "iter_years", "load_schedule", "load_year_file", "provisional_years",
    "seed_from_chinese_calendar", "year_schedule", "years_loaded",
]
