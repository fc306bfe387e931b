"""The calendar installed in this process: the one the BPMN helpers compute on.

:func:`refresh` installs the stored calendar and reloads it only when it changed (one cheap query otherwise);
:func:`use_calendar` installs a given one (tests, tools); :func:`invalidate` marks it stale after this process
changed the stored data.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

from sqlalchemy.orm import Session

from .values import CalendarNotInstalled, Deadline, DeadlineTime
from .workday_calendar import WorkdayCalendar, calendar_fingerprint

_current: dict[str, Any] = {"calendar": None, "stale": False}
_current_lock = threading.Lock()


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
