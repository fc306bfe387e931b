"""Working-day calendar: package seed, year files, deadlines, provisional years, helpers and CLI."""
from __future__ import annotations

import copy
import json
import pickle
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import chinese_calendar
import pytest
from click.testing import CliRunner
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from sqlalchemy import func, select

from engine.cli.calendar import calendar as calendar_group
from engine.db import Base, dispose_engines, get_engine, session_factory, transaction
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime import clock
from engine.runtime.scripting import HelperRegistry, RestrictedEnvironment
from engine.schema import upgrade
from engine.supervision import calendar as cal
from engine.supervision.calendar_models import CalendarDay, CalendarYear

DATA = Path(__file__).parent / "data"
FIXTURE_2027 = DATA / "2027.yaml"  # a made-up test schedule, not the official one
CST = timezone(timedelta(hours=8))


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'calendar.db'}"
    Base.metadata.create_all(get_engine(url), tables=[CalendarDay.__table__, CalendarYear.__table__])
    yield url
    dispose_engines()


@pytest.fixture
def tx(db_url):
    factory = session_factory(db_url)
    return lambda: transaction(factory)


@pytest.fixture
def seeded(tx):
    with tx() as s:
        cal.seed_from_chinese_calendar(s)
    return tx


@pytest.fixture
def calendar(seeded):
    with seeded() as s:
        return cal.WorkdayCalendar.from_session(s)


@pytest.fixture
def installed(seeded):
    with seeded() as s:
        cal.refresh(s)
    yield seeded
    cal.use_calendar(None)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------- seed
def test_seed_covers_every_package_year_and_is_idempotent(tx):
    with tx() as s:
        first = cal.seed_from_chinese_calendar(s)
    assert first.created == list(range(2004, 2027))
    with tx() as s:
        second = cal.seed_from_chinese_calendar(s)
        assert cal.years_loaded(s) == list(range(2004, 2027))
        rows = s.scalar(select(func.count()).select_from(CalendarDay))
    assert second.created == second.updated == [] and second.unchanged == list(range(2004, 2027))
    assert second.source == "chinese-calendar 1.11.0"
    assert rows == len(chinese_calendar.constants.holidays) + len(chinese_calendar.constants.workdays)


def test_stored_days_agree_with_the_package_for_2025_and_2026(calendar):
    day = date(2025, 1, 1)
    while day.year < 2027:
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_spring_festival_2026(calendar, seeded):
    with seeded() as s:
        sched = cal.year_schedule(s, 2026)
    spring = [h for h in sched.holidays() if h["name"] == "春节"]
    assert spring == [{"name": "春节", "from": "2026-02-15", "to": "2026-02-23",
                       "days": [f"2026-02-{d}" for d in range(15, 24)]}]
    assert {(w["day"], w["weekday"]) for w in sched.swapped_workdays() if w["name"] == "春节"} == {
        ("2026-02-14", "Saturday"), ("2026-02-28", "Saturday")}
    assert calendar.is_workday(date(2026, 2, 14))  # a Saturday, swapped
    assert not calendar.is_workday(date(2026, 2, 16))  # a Monday of the holiday
    info = calendar.day_info(date(2026, 2, 17))
    assert (info.kind, info.name, info.is_workday, info.provisional) == ("holiday", "春节", False, False)
    assert calendar.day_info(date(2026, 3, 7)).kind == "weekend"
    # Thursday 12 Feb + 3 working days: Fri 13, Sat 14 (swapped), then the holiday, Tue 24.
    d = calendar.add_workdays(date(2026, 2, 12), 3)
    assert d.day == date(2026, 2, 24) and not d.provisional and d.missing_years == []
    assert d.at == datetime(2026, 2, 24, 23, 59, 59, tzinfo=CST)
    assert d.at.utcoffset() == timedelta(hours=8)


def test_start_day_is_excluded(calendar):
    monday = date(2026, 3, 2)
    assert calendar.add_workdays(monday, 1).day == date(2026, 3, 3)
    assert calendar.add_workdays(monday, 5).day == date(2026, 3, 9)
    assert calendar.add_days(monday, 1).day == date(2026, 3, 3)
    assert calendar.add_workdays(monday, 0).day == monday
    assert calendar.add_workdays(date(2026, 3, 7), 0).day == date(2026, 3, 9)  # Saturday rolls to Monday
    # a Saturday start: the first working day after it is Monday
    assert calendar.add_workdays(date(2026, 3, 7), 1).day == date(2026, 3, 9)


def test_start_datetime_uses_the_day_in_china(calendar):
    # 17:00 UTC on Friday 13 Feb is 01:00 on Saturday 14 Feb (a swapped working day) in Beijing.
    start = datetime(2026, 2, 13, 17, 0, tzinfo=timezone.utc)
    assert cal.local_day(start) == date(2026, 2, 14)
    assert calendar.add_workdays(start, 1).day == date(2026, 2, 24)
    assert calendar.add_workdays("2026-02-13", 1).day == date(2026, 2, 14)
    with pytest.raises(ValueError, match="naive"):
        calendar.add_workdays(datetime(2026, 2, 13, 9), 1)
    with pytest.raises(ValueError, match="between 0"):
        calendar.add_workdays(date(2026, 2, 13), -1)


def test_five_working_days_across_national_day(calendar):
    # 2025: Mon 29 Sep; Tue 30 Sep = 1; 1–8 Oct holiday; Thu 9 = 2, Fri 10 = 3, Sat 11 (swapped) = 4, Mon 13 = 5.
    assert calendar.add_workdays(date(2025, 9, 29), 5).day == date(2025, 10, 13)
    # 2026: Wed 30 Sep; 1–7 Oct holiday; Thu 8, Fri 9, Sat 10 (swapped), Mon 12, Tue 13.
    assert calendar.add_workdays(date(2026, 9, 30), 5).day == date(2026, 10, 13)


def test_calendar_day_deadline_on_a_holiday_rolls_forward(calendar):
    d = calendar.add_days(date(2026, 9, 24), 7)  # 1 Oct, National Day
    assert d.day == date(2026, 10, 8) and d.kind == "days" and not d.provisional
    # ends on a weekend: rolls to Monday
    assert calendar.add_days(date(2026, 3, 2), 5).day == date(2026, 3, 9)
    # ends on a swapped working Saturday: no roll
    assert calendar.add_days(date(2026, 10, 3), 7).day == date(2026, 10, 10)
    # the Spring Festival: 16 Feb + 0 days rolls past the whole holiday
    assert calendar.add_days(date(2026, 2, 16), 0).day == date(2026, 2, 24)


# ---------------------------------------------------------------------------------------------- provisional
def test_2027_is_provisional_until_its_schedule_is_loaded(seeded):
    start = date(2026, 12, 28)  # Monday
    with seeded() as s:
        before = cal.WorkdayCalendar.from_session(s)
        assert cal.provisional_years(s, since=2026, through=2027) == [2027]
    d = before.add_workdays(start, 5)
    # weekends only: 29, 30, 31 Dec, Fri 1 Jan, Mon 4 Jan — flagged, never silently exact
    assert (d.day, d.provisional, d.missing_years) == (date(2027, 1, 4), True, [2027])
    assert before.day_info(date(2027, 1, 1)).provisional
    with pytest.raises(cal.CalendarMissing) as exc:
        before.add_workdays(start, 5, strict=True)
    assert exc.value.year == 2027 and exc.value.exit_code == 3 and "2027" in str(exc.value)
    with pytest.raises(cal.CalendarMissing):
        before.is_workday(date(2027, 3, 1), strict=True)
    # the walk is remembered (same start, count and kind): the same deadline again, still flagged
    assert before.add_workdays(start, 5) == d and before.add_workdays(start, 5).missing_years == [2027]
    # same start and count, other kind: its own walk (28 Dec + 5 calendar days = Sat 2 Jan, rolled to Mon 4 Jan)
    assert before.add_days(start, 5).kind == "days" and before.add_days(start, 5).day == date(2027, 1, 4)
    # a computation that stays inside 2026 is exact even though 2027 is missing
    assert not before.add_workdays(date(2026, 12, 1), 5).provisional

    with seeded() as s:
        result = cal.load_year_file(s, FIXTURE_2027)
    assert result.created and result.became_exact and not result.unchanged
    assert len(result.added) == 35 and result.removed == result.changed == []
    with seeded() as s:
        after = cal.WorkdayCalendar.from_session(s)
        assert cal.provisional_years(s, since=2026, through=2027) == []
        assert 2027 in cal.years_loaded(s)
    d2 = after.add_workdays(start, 5)
    # 1–3 Jan are the (fixture's) New Year holiday: 29, 30, 31 Dec, Mon 4, Tue 5 Jan
    assert (d2.day, d2.provisional, d2.missing_years) == (date(2027, 1, 5), False, [])
    assert after.add_workdays(start, 5, strict=True) == d2
    assert cal.recompute([d, (start, 5, "workdays"), d.to_dict()], after) == [d2, d2, d2]


def test_refresh_reloads_the_current_calendar_after_a_load(installed):
    with clock.frozen(datetime(2026, 12, 28, 1, 0, tzinfo=timezone.utc)):
        before = cal.workdays(5)
        assert before.provisional and before.missing_years == (2027,)
        with installed() as s:
            cal.load_year_file(s, FIXTURE_2027)
        with installed() as s:
            cal.refresh(s)
        after = cal.workdays(5)
        assert not after.provisional and after.date() == date(2027, 1, 5)
        assert cal.recompute([before]) == [after.as_deadline()]


def test_refresh_notices_a_load_made_elsewhere(installed):
    first = cal.current_calendar()
    with installed() as s:
        assert cal.refresh(s) is first  # nothing changed: no reload
        cal.load_schedule(s, cal.parse_year_file(FIXTURE_2027))  # as another process would
    cal.use_calendar(first)  # this process still holds the old one
    with installed() as s:
        assert cal.refresh(s) is not first
    assert cal.current_calendar().is_known(2027)


# ---------------------------------------------------------------------------------------------- files
def test_load_is_idempotent_and_replacing_needs_a_flag(tx, tmp_path):
    with tx() as s:
        cal.load_year_file(s, FIXTURE_2027)
    with tx() as s:
        again = cal.load_year_file(s, FIXTURE_2027)
    assert again.unchanged and not again.became_exact
    changed = FIXTURE_2027.read_text(encoding="utf-8").replace("days: [2027-06-09]", "days: [2027-06-09, 2027-06-10]")
    p = _write(tmp_path, "2027-revised.yaml", changed)
    with pytest.raises(Conflict, match="--replace"):
        with tx() as s:
            cal.load_year_file(s, p)
    with tx() as s:
        r = cal.load_year_file(s, p, replace=True)
    assert [a["day"] for a in r.added] == ["2027-06-10"] and not r.created and not r.became_exact
    with tx() as s:
        assert not cal.WorkdayCalendar.from_session(s).is_workday(date(2027, 6, 10))
        assert s.get(CalendarYear, 2027).source == "test fixture (not official)"


def test_seed_keeps_a_year_loaded_from_a_file(tx, tmp_path):
    p = _write(tmp_path, "2026-official.yaml", "year: 2026\nholidays:\n  - {name: 元旦, days: [2026-01-01]}\n")
    with tx() as s:
        cal.load_year_file(s, p)
        result = cal.seed_from_chinese_calendar(s)
    assert result.kept == [2026] and 2026 not in result.created
    with tx() as s:
        assert s.get(CalendarYear, 2026).source == "2026-official.yaml"


def test_csv_file(tx):
    with tx() as s:
        r = cal.load_year_file(s, DATA / "2027.csv")
    assert r.year == 2027 and r.source == "2027.csv"
    with tx() as s:
        c = cal.WorkdayCalendar.from_session(s)
    assert c.is_workday(date(2027, 2, 14)) and not c.is_workday(date(2027, 1, 1))


BAD_YAML = """\
year: 2027
holidays:
  - name: 元旦
    days: [2027-01-01, 2026-12-31]
  - name: 春节
    from: 2027-02-05
    to: 2027-02-07
  - name: 清明节
    days: [2027-04-05, 2027-04-05]
workdays:
  - 2027-02-15
  - {day: 2027-02-06, name: 春节}
"""


def test_bad_yaml_names_file_line_and_field_and_loads_nothing(tx, tmp_path):
    p = _write(tmp_path, "bad-2027.yaml", BAD_YAML)
    with pytest.raises(cal.CalendarFileError) as exc:
        with tx() as s:
            cal.load_year_file(s, p)
    issues = exc.value.issues
    by_field = {(i["line"], i["field"]): i["message"] for i in issues}
    assert all(i["file"] == "bad-2027.yaml" for i in issues)
    assert "outside 2027" in by_field[(4, "holidays[0].days[1]")]
    assert "duplicate" in by_field[(9, "holidays[2].days[1]")]
    assert "Saturday or Sunday" in by_field[(11, "workdays[0]")] and "Monday" in by_field[(11, "workdays[0]")]
    assert "both a holiday and a working day" in by_field[(12, "workdays[1]")]
    assert len(issues) == 4
    text = str(exc.value)
    assert "nothing was loaded" in text and "bad-2027.yaml:11 (workdays[0])" in text
    assert exc.value.exit_code == 2
    with tx() as s:
        assert s.scalar(select(func.count()).select_from(CalendarDay)) == 0
        assert s.get(CalendarYear, 2027) is None


@pytest.mark.parametrize("text, field, message", [
    ("year: 2027\nholiday:\n  - {name: 元旦, days: [2027-01-01]}\n", "holiday", "unknown key"),
    ("year: 27\nholidays:\n  - {name: 元旦, days: [2027-01-01]}\n", "year", "not a year"),
    ("year: 2027\nholidays:\n  - {name: 元旦, days: [2027-13-01]}\n", "holidays[0].days[0]", "not a valid date"),
    ("year: 2027\nholidays:\n  - {name: 元旦, days: [1 Jan 2027]}\n", "holidays[0].days[0]", "YYYY-MM-DD"),
    ("year: 2027\nholidays:\n  - {days: [2027-01-01]}\n", "holidays[0].name", "name"),
    ("year: 2027\nholidays:\n  - {name: 春节, from: 2027-02-10, to: 2027-02-01}\n", "holidays[0].to", "forward"),
    ("year: 2027\nholidays:\n  - {name: 春节, from: 2027-02-10}\n", "holidays[0]", "both from: and to:"),
    ("year: 2027\nholidays: []\n", "holidays", "no holidays"),
    ("holidays:\n  - {name: 元旦, days: [2027-01-01]}\n", "year", "missing"),
    ("year: 2027\nyear: 2028\nholidays:\n  - {name: 元旦, days: [2027-01-01]}\n", "year", "twice"),
    ("year: 2027\nholidays: [\n", None, "not valid YAML"),
])
def test_bad_yaml_cases(tmp_path, text, field, message):
    p = _write(tmp_path, "y.yaml", text)
    with pytest.raises(cal.CalendarFileError) as exc:
        cal.parse_year_file(p)
    assert any(i["field"] == field and message in i["message"] and i["line"] for i in exc.value.issues), \
        exc.value.issues


def test_bad_csv_names_row_and_column_and_loads_nothing(tx, tmp_path):
    p = _write(tmp_path, "2027-bad.csv", "year,date,kind,name\n"
                                         "2027,2027-01-01,holiday,元旦\n"
                                         "2027,2028-01-01,holiday,元旦\n"
                                         "2027,2027-01-01,holiday,元旦\n"
                                         "2027,2027-02-16,workday,春节\n"
                                         "2028,2027-02-20,workday,春节\n"
                                         "2027,2027-02-21,rest,\n")
    with pytest.raises(cal.CalendarFileError) as exc:
        with tx() as s:
            cal.load_year_file(s, p)
    got = {(i["line"], i["field"]) for i in exc.value.issues}
    assert got == {(3, "date"), (4, "date"), (5, "date"), (6, "year"), (7, "kind")}
    with tx() as s:
        assert s.scalar(select(func.count()).select_from(CalendarDay)) == 0
    p2 = _write(tmp_path, "h.csv", "date,kind,name,extra\n2027-01-01,holiday,元旦,x\n")
    with pytest.raises(cal.CalendarFileError, match="missing year; unknown extra"):
        cal.parse_year_file(p2)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(NotFound):
        cal.parse_year_file(tmp_path / "nope.yaml")
    with pytest.raises(InvalidInput, match="unknown calendar file type"):
        cal.parse_year_file(_write(tmp_path, "x.txt", "year: 2027"))


# ---------------------------------------------------------------------------------------------- helpers
def test_helpers_use_the_injected_clock(installed):
    with clock.frozen(datetime(2026, 2, 12, 2, 0, tzinfo=timezone.utc)):  # Thursday 10:00 in Beijing
        due = cal.workdays(3)
        assert isinstance(due, datetime) and due == datetime(2026, 2, 24, 23, 59, 59, tzinfo=CST)
        assert due.provisional is False and due.kind == "workdays" and due.n == 3
        assert cal.last_deadline().day == date(2026, 2, 24)
        assert cal.calendar_days(4).date() == date(2026, 2, 24)  # 16 Feb is in the holiday: rolls
        assert cal.legal_days(5).kind == "workdays" and cal.legal_days(10).kind == "days"
        assert cal.is_workday() and not cal.is_workday("2026-02-16")
        info = cal.deadline_info(3)
        assert json.loads(json.dumps(info)) == info
        assert info == {"at": "2026-02-24T23:59:59+08:00", "day": "2026-02-24", "provisional": False,
                        "missing_years": [], "start": "2026-02-12", "n": 3, "kind": "workdays"}
    assert cal.workdays(1, start="2026-12-31").provisional
    assert cal.deadline_info(1, start="2026-12-31")["missing_years"] == [2027]
    with pytest.raises(cal.CalendarMissing):
        cal.workdays(1, start="2026-12-31", strict=True)


def test_helpers_fail_loudly_without_a_calendar():
    cal.use_calendar(None)
    with pytest.raises(cal.CalendarNotInstalled):
        cal.workdays(3)


def test_deadline_time_survives_copies_pickles_and_the_serializer(installed):
    due = cal.workdays(1, start="2026-12-31")
    for clone in (copy.deepcopy(due), copy.copy(due), pickle.loads(pickle.dumps(due))):
        assert type(clone) is cal.DeadlineTime and clone == due
        assert (clone.provisional, clone.missing_years, clone.start, clone.n) == (True, (2027,), date(2026, 12, 31), 1)
    assert type(due + timedelta(days=1)) is datetime  # arithmetic leaves the deadline behind
    assert type(due.replace(hour=0)) is datetime
    utc = due.astimezone(timezone.utc)
    assert utc == due and utc.provisional and utc.tzinfo == timezone.utc

    registry = DefaultRegistry()
    data = {"due": due, "other": 1}
    with pytest.raises(TypeError):  # unregistered: refused loudly, never flattened
        json.dumps(registry.convert(data))
    cal.register_serializer(registry)
    restored = registry.restore(json.loads(json.dumps(registry.convert(data))))
    assert type(restored["due"]) is cal.DeadlineTime and restored["due"] == due and restored["due"].provisional


def test_helpers_in_the_restricted_script_environment(installed):
    env = RestrictedEnvironment(helpers=cal.HELPERS)
    assert env.evaluate("workdays(3, '2026-02-12').day", {}) == 24
    assert env.evaluate("workdays(5, start).provisional", {"start": "2026-12-28"}) is True
    assert env.evaluate("deadline_info(5, start)['day']", {"start": "2026-12-28"}) == "2027-01-04"


def test_helpers_go_on_the_registry_they_are_given(installed):
    registry = HelperRegistry()
    cal.register_script_helpers(registry)
    _, helpers, bounded = registry.snapshot()
    assert helpers == dict(cal.HELPERS) and bounded == set(cal.HELPERS)
    assert RestrictedEnvironment(helpers=registry).evaluate("legal_days(3, '2026-02-12').day", {}) == 24
    with pytest.raises(TypeError):  # the table itself is read-only: nothing registers process-wide
        cal.HELPERS["extra"] = len


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli(tmp_path, monkeypatch):
    """The CLI on a fully migrated database (``calendar load`` also reschedules the engine's timers)."""
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(db_url)
    monkeypatch.setenv("REGFLOW_DATABASE_URL", db_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(calendar_group, list(args), catch_exceptions=False)


def test_cli_seed_show_load(cli, tmp_path):
    r = cli("seed", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["created"] == list(range(2004, 2027))
    assert "unchanged 2004–2026 (23)" in cli("seed").output

    r = cli("show", "2026", "--json")
    doc = json.loads(r.output)
    assert doc["source"] == "chinese-calendar 1.11.0"
    assert {"name": "春节", "from": "2026-02-15", "to": "2026-02-23"}.items() <= doc["holidays"][1].items()
    assert "2026-02-14 Sat  春节" in cli("show", "2026").output

    r = cli("show", "2027")
    assert r.exit_code == 3 and "provisional" in r.output
    assert cli("deadline", "2026-12-28", "5").output.strip().endswith("PROVISIONAL (no calendar for [2027])")
    assert cli("deadline", "2026-12-28", "5", "--strict").exit_code == 3

    bad = _write(tmp_path, "bad.yaml", BAD_YAML)
    r = cli("load", str(bad))
    assert r.exit_code == 2 and "bad.yaml:11 (workdays[0])" in r.output

    r = cli("load", str(FIXTURE_2027), "--json")
    doc = json.loads(r.output)
    assert r.exit_code == 0 and doc["became_exact"] and len(doc["added"]) == 35
    assert "already loaded with the same days" in cli("load", str(FIXTURE_2027)).output
    assert json.loads(cli("deadline", "2026-12-28", "5", "--json").output)["day"] == "2027-01-05"
    years = json.loads(cli("years", "--json").output)
    assert years["years"][-1]["year"] == 2027
    assert cli("load", str(tmp_path / "missing.yaml")).exit_code == 3
