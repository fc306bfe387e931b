"""Open deadlines follow the calendar: after a year's official schedule is loaded, every waiting timer
whose deadline was computed from that year (provisionally, weekends only) is computed again and
rescheduled through the engine (one audited step per instance)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from . import calendar as cal


def reschedule_for_year(runtime, session: Session, year: int, *, actor: str = "calendar") -> list[dict]:
    cal.refresh(session)
    calendar = cal.current_calendar()

    def recompute(old: dict) -> dict | None:
        touches = year in (old.get("missing_years") or []) or str(old.get("at", "")).startswith(str(year))
        if not touches:
            return None
        (new,) = cal.recompute([old], calendar)
        return new.to_dict()

    return runtime.reschedule_timers(session, recompute, actor=actor, reason=f"calendar year {year} loaded")
