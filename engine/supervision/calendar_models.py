"""Working-day calendar tables (migration ``0003_calendar``).

Only exceptions to "Monday–Friday work, Saturday–Sunday rest" have a ``calendar_day`` row: official
holidays (every day of the announced period, weekend days included, so a year can be shown as
announced) and swapped working days (调休 weekend days that are worked). A ``calendar_year`` row says
that a year's schedule is known; a year without one (or with ``complete`` false) is computed
provisionally from weekends alone, and every deadline touching it is flagged.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

#: ``calendar_day.kind``. The loaders write ``holiday`` and ``swapped_workday``; ``weekend`` and
#: ``workday`` describe ordinary days in :class:`engine.supervision.calendar.DayInfo`.
DAY_KINDS = ("holiday", "swapped_workday", "weekend", "workday")


class CalendarDay(Base):
    __tablename__ = "calendar_day"
    __table_args__ = (
        CheckConstraint("kind IN ('holiday', 'swapped_workday', 'weekend', 'workday')", name="kind"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(20))
    #: The holiday (or the holiday a swapped working day makes up for), e.g. 春节.
    name: Mapped[Optional[str]] = mapped_column(String(100))
    #: Where the row came from: ``chinese-calendar 1.11.0`` or the loaded file's name.
    source: Mapped[str] = mapped_column(String(300))

    def __repr__(self) -> str:
        return f"CalendarDay({self.day.isoformat()}, {self.kind}, {self.name!r})"


class CalendarYear(Base):
    """A year whose official schedule is loaded. ``complete`` false = preliminary, still provisional."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(300))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    complete: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return f"CalendarYear({self.year}, {self.source!r}, complete={self.complete})"
