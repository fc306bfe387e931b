"""Migration 0003_calendar creates exactly the tables calendar_models.py declares."""
import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, create_engine

from engine.db import NAMING_CONVENTION
from engine.supervision.calendar_models import CalendarDay, CalendarYear

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0003_working_day_calendar.py"


def _load():
    spec = importlib.util.spec_from_file_location("m0003", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(eng, fn) -> None:
    with eng.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            fn()


def test_revision_ids():
    mod = _load()
    assert mod.revision == "0003_calendar" and mod.down_revision == "0002_scoring"


def test_upgrade_matches_models_and_downgrade_drops(tmp_path):
    mod = _load()
    eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    _run(eng, mod.upgrade)
    target = MetaData(naming_convention=NAMING_CONVENTION)
    for t in (CalendarDay.__table__, CalendarYear.__table__):
        t.to_metadata(target)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        diff = compare_metadata(ctx, target)
    assert diff == [], diff
    _run(eng, mod.downgrade)
    with eng.connect() as conn:
        assert not eng.dialect.has_table(conn, "calendar_day") and not eng.dialect.has_table(conn, "calendar_year")
    eng.dispose()
