"""``regflow calendar``: seed, load and show the working-day calendar.

Exit codes follow :mod:`engine.cli`: 2 invalid file (every problem with file, line and field on stderr),
3 year or file not found, 4 the year is already loaded with different days (use ``--replace``).
"""
from __future__ import annotations

import click

from engine.bootstrap import build_runtime
from engine.errors import InvalidInput
from engine.supervision import calendar as cal
from engine.supervision.calendar_models import CalendarYear
from engine.supervision.deadlines import reschedule_for_year
from engine.supervision.stored_deadlines import recompute_stored_deadlines

from .support import emit, handle_errors, json_option, tx


@click.group(name="calendar")
def calendar() -> None:
    """Working-day calendar: public holidays and swapped working days, one year at a time."""


@calendar.command()
@json_option
@handle_errors
def seed(as_json: bool) -> None:
    """Store every year the chinese-calendar package covers (idempotent; loaded files are kept)."""
    with tx() as s:
        result = cal.seed_from_chinese_calendar(s)
    doc = result.to_dict()

    def human(d):
        span = lambda ys: f"{ys[0]}–{ys[-1]} ({len(ys)})" if ys else "none"  # noqa: E731
        return (f"seeded from {d['source']}: created {span(d['created'])}, updated {span(d['updated'])}, "
                f"unchanged {span(d['unchanged'])}" + (f", kept (loaded from files) {d['kept']}" if d["kept"] else ""))

    emit(doc, as_json, human)


@calendar.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace a year that is already loaded with different days.")
@json_option
@handle_errors
def load(file: str, replace: bool, as_json: bool) -> None:
    """Load one year's official schedule from FILE (.yaml/.yml/.csv); all or nothing."""
    with tx() as s:
        before = cal.WorkdayCalendar.from_session(s)  # what the stored deadlines were computed on
        result = cal.load_year_file(s, file, replace=replace)
        rescheduled, stored = [], {"changed": [], "skipped": [], "timers": []}
        if not result.unchanged:
            # the same transaction: the year and the timers and deadlines it moves land together or not at all
            runtime = build_runtime()
            rescheduled = reschedule_for_year(runtime, s, result.year)
            stored = recompute_stored_deadlines(runtime, s, result.year, old_calendar=before)
    doc = {**result.to_dict(), "rescheduled_timers": rescheduled + stored["timers"],
           "recomputed_deadlines": stored["changed"], "deadlines_skipped": stored["skipped"]}

    def human(d):
        if d["unchanged"]:
            return f"{d['year']}: already loaded with the same days, nothing changed"
        head = (f"{d['year']} {'loaded' if d['created'] else 'replaced'} from {d['source']}"
                + ("" if d["complete"] else " (preliminary: still provisional)")
                + (" — now exact" if d["became_exact"] else ""))
        lines = [head]
        for r in d["rescheduled_timers"]:
            lines.append(f"  rescheduled instance {r['instance_id']} {r['bpmn_id']}: {r['old']} -> {r['new']}")
        for r in d["recomputed_deadlines"]:
            lines.append(f"  recomputed {r['row']} {r['id']} {r['field']}: {r['old']} -> {r['new']}")
        for r in d["deadlines_skipped"]:
            lines.append(f"  not recomputed {r['row']} {r['id']}: {r['reason']}")
        for label in ("added", "removed", "changed"):
            for r in d[label]:
                lines.append(f"  {label:8} {r['day']} {r['weekday'][:3]}  {r['kind']:16} {r['name'] or ''}")
        return "\n".join(lines)

    emit(doc, as_json, human)


@calendar.command()
@click.argument("year", type=int)
@json_option
@handle_errors
def show(year: int, as_json: bool) -> None:
    """Holidays and swapped working days of YEAR (exit 3 if the year was never loaded)."""
    with tx() as s:
        sched = cal.year_schedule(s, year)
        row = s.get(CalendarYear, year)
        doc = {**sched.to_dict(), "loaded_at": row.loaded_at}

    def human(d):
        lines = [f"{d['year']}  source: {d['source']}  loaded: {d['loaded_at'].isoformat(timespec='seconds')}"
                 + ("" if d["complete"] else "  (preliminary)"), "holidays:"]
        for h in d["holidays"]:
            span = h["from"] if h["from"] == h["to"] else f"{h['from']} .. {h['to']}"
            lines.append(f"  {h['name']:8} {span}  ({len(h['days'])} day{'s' if len(h['days']) > 1 else ''})")
        lines.append("swapped working days:")
        lines += [f"  {w['day']} {w['weekday'][:3]}  {w['name'] or ''}" for w in d["workdays"]] or ["  (none)"]
        return "\n".join(lines)

    emit(doc, as_json, human)


@calendar.command()
@json_option
@handle_errors
def years(as_json: bool) -> None:
    """Years loaded (with source) and the years ahead whose deadlines are still provisional."""
    with tx() as s:
        doc = {"years": [{"year": y.year, "source": y.source, "complete": y.complete, "loaded_at": y.loaded_at}
                         for y in cal.iter_years(s)],
               "provisional_years": cal.provisional_years(s)}

    def human(d):
        lines = [f"  {y['year']}  {y['source']}" + ("" if y["complete"] else "  (preliminary)") for y in d["years"]]
        lines.append(f"provisional (no official schedule): {', '.join(map(str, d['provisional_years'])) or 'none'}")
        return "\n".join(lines or ["(none)"])

    emit(doc, as_json, human)


@calendar.command()
@click.argument("start")
@click.argument("n", type=int)
@click.option("--calendar-days", "kind", flag_value="days", help="Count calendar days (rolled to a working day).")
@click.option("--workdays", "kind", flag_value="workdays", default=True, help="Count working days (default).")
@click.option("--strict", is_flag=True, help="Fail (exit 3) instead of computing a provisional deadline.")
@json_option
@handle_errors
def deadline(start: str, n: int, kind: str, strict: bool, as_json: bool) -> None:
    """The deadline N working (or calendar) days after START (a date or ISO datetime; excluded)."""
    with tx() as s:
        calendar_ = cal.WorkdayCalendar.from_session(s)
    try:
        d = calendar_.compute(start, n, kind, strict=strict)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"START/N: {exc}") from exc
    doc = d.to_dict()
    emit(doc, as_json, lambda x: f"{x['at']}" + (f"  PROVISIONAL (no calendar for {x['missing_years']})"
                                                   if x["provisional"] else ""))
