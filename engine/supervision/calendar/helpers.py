"""What the engine registers from the calendar: the helpers BPMN scripts and expressions call
(:data:`HELPERS`, computed on the installed calendar from ``engine.runtime.clock.now()``; put on a runtime's
helper registry by :func:`register_script_helpers`) and the serializer entry that keeps a :class:`DeadlineTime`
in task data.
"""
from __future__ import annotations

import threading
from datetime import date, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.runtime import clock

from .current import current_calendar
from .values import PENALTY_LAW_WORKDAY_COUNTS, SHANGHAI, Deadline, DeadlineTime, local_day

if TYPE_CHECKING:  # (the registry's module loads RestrictedPython, which calendar commands never need)
    from engine.runtime.script_builtins import HelperRegistry

_last = threading.local()


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


#: the helpers BPMN scripts and expressions get (a read-only mapping: :func:`register_script_helpers` puts them
#: on a runtime's registry)
HELPERS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "workdays": workdays,
    "calendar_days": calendar_days,
    "legal_days": legal_days,
    "deadline_info": deadline_info,
    "is_workday": is_workday,
    "day_start": day_start,
})


def register_script_helpers(helpers: HelperRegistry) -> None:
    """Offer :data:`HELPERS` to the scripts and expressions reading ``helpers`` (a runtime's: ``runtime.helpers``).
    They are bounded (a count of days above ``MAX_COUNT`` is refused), so an expression such as ``workdays(5)``
    runs without the time budget's tracer."""
    for name, fn in HELPERS.items():
        helpers.register(name, fn, replace=True, bounded=True)


def register_serializer(registry) -> None:
    """Teach a SpiffWorkflow serializer registry to keep :class:`DeadlineTime` in task data."""
    registry.register(DeadlineTime, lambda v: v.to_dict(), DeadlineTime.from_dict, typename="RegflowDeadline")
