"""The Alembic chain (one head, every revision named) builds exactly the schema the models declare,
on SQLite and PostgreSQL, and downgrades to nothing and back."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from engine.db import get_engine
from engine.schema import alembic_config, include_name, metadata, upgrade

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def test_one_head_and_every_revision_named():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == ["0019_serious_term"]
    revisions = list(script.walk_revisions())
    assert [r.revision for r in reversed(revisions)] == [
        "0001_runtime", "0002_scoring", "0003_calendar", "0004_registries", "0005_campaigns", "0006_loop", "0007_web",
        "0008_inbox", "0009_hot_path", "0010_sign_in", "0011_simulation_jobs", "0012_totp_reads", "0013_documents",
        "0014_doc_files", "0015_portal", "0016_lists", "0017_enforcement", "0018_transfers",
        "0019_serious_term"]
    for r in revisions:
        assert r.doc and len(r.doc) > 10, r.revision
    for f in VERSIONS.glob("*.py"):
        assert len(f.stem.split("_", 1)[1]) > 5, f.name  # descriptive file names


def test_head_matches_the_models(db):
    with get_engine(db.url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False,
                                                     "include_name": include_name})
        diff = [d for d in compare_metadata(ctx, metadata)
                # the engine tests' own side-effect table is created by tests/conftest.py, not by the schema
                if not (d[0] == "remove_table" and d[1].name == "test_effect")]
    assert diff == [], diff


def test_downgrade_to_base_and_up_again(db):
    cfg = alembic_config(db.url)
    eng = get_engine(db.url)
    with eng.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    left = set(inspect(eng).get_table_names()) - {"alembic_version", "test_effect"}
    assert left == set()
    upgrade(db.url)
    assert set(metadata.tables) <= set(inspect(eng).get_table_names())
