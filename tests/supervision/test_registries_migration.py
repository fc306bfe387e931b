"""Migration 0004_registries creates exactly the tables registry_models.py declares."""
import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, create_engine

from engine.db import NAMING_CONVENTION
from engine.supervision import registry_models as rm
from scoring.models import Entity, ModelVersion

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0004_inspectors_and_check_items.py"
TABLES = (rm.Department, rm.Skill, rm.Inspector, rm.InspectorLeave, rm.InspectorConflict, rm.CheckItem,
          rm.TeamDraw, rm.TeamAssignment)


def _load():
    spec = importlib.util.spec_from_file_location("m0004", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(eng, fn) -> None:
    with eng.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            fn()


def test_revision_ids():
    mod = _load()
    assert mod.revision == "0004_registries" and mod.down_revision == "0003_calendar"


def test_upgrade_matches_models_and_downgrade_drops(tmp_path):
    mod = _load()
    eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    # the tables referenced by foreign keys (entity -> model_version) come from earlier revisions
    base = MetaData(naming_convention=NAMING_CONVENTION)
    for t in (ModelVersion.__table__, Entity.__table__):
        t.to_metadata(base)
    base.create_all(eng)
    _run(eng, mod.upgrade)
    target = MetaData(naming_convention=NAMING_CONVENTION)
    for t in (ModelVersion.__table__, Entity.__table__) + tuple(m.__table__ for m in TABLES):
        t.to_metadata(target)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        diff = compare_metadata(ctx, target)
    assert diff == [], diff
    _run(eng, mod.downgrade)
    with eng.connect() as conn:
        for m in TABLES:
            assert not eng.dialect.has_table(conn, m.__tablename__), m.__tablename__
        assert eng.dialect.has_table(conn, "entity")
    eng.dispose()


def test_single_head():
    from engine.schema import heads

    assert len(heads()) == 1
