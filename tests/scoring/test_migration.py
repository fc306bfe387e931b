"""Migration 0002_scoring creates exactly the tables scoring/models.py declares."""
import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, create_engine

from engine.db import NAMING_CONVENTION
from scoring.models import Entity, ModelVersion

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0002_scoring_entity_registry.py"


def _load():
    spec = importlib.util.spec_from_file_location("m0002", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_revision_ids():
    mod = _load()
    assert mod.revision == "0002_scoring" and mod.down_revision == "0001_runtime"


def test_upgrade_matches_models_and_downgrade_drops(tmp_path):
    mod = _load()
    eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with eng.begin() as conn:
        ctx = MigrationContext.configure(conn)
        mod.op._proxy = Operations(ctx)
        try:
            mod.upgrade()
        finally:
            del mod.op._proxy
    target = MetaData(naming_convention=NAMING_CONVENTION)
    for t in (ModelVersion.__table__, Entity.__table__):
        t.to_metadata(target)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        diff = compare_metadata(ctx, target)
    assert diff == [], diff
    with eng.begin() as conn:
        ctx = MigrationContext.configure(conn)
        mod.op._proxy = Operations(ctx)
        try:
            mod.downgrade()
        finally:
            del mod.op._proxy
    with eng.connect() as conn:
        assert not eng.dialect.has_table(conn, "entity") and not eng.dialect.has_table(conn, "model_version")
    eng.dispose()
