"""All tables in one MetaData, and schema upgrades through Alembic (one head)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import engine.runtime.models  # noqa: F401  (registers the runtime tables)
import engine.runtime.periodic  # noqa: F401  (periodic jobs: the period each last ran for)
import engine.supervision.calendar_models  # noqa: F401  (working-day calendar)
import engine.supervision.campaign_models  # noqa: F401  (campaigns and draws)
import engine.supervision.document_file_models  # noqa: F401  (documents' signed PDFs and service records)
import engine.supervision.document_models  # noqa: F401  (agencies and the document register)
import engine.supervision.list_models  # noqa: F401  (the abnormal and serious lists, annual reports)
import engine.supervision.loop_models  # noqa: F401  (hazards, rectification orders, cases, publications)
import engine.supervision.portal_models  # noqa: F401  (the entity portal: access codes, submissions)
import engine.supervision.registry_models  # noqa: F401  (inspectors, check items, teams)
import engine.supervision.transfer_models  # noqa: F401  (transfers to other authorities)
import scoring.models  # noqa: F401  (the entity registry and model registry tables)
from engine.config import PROJECT_ROOT
from engine.db import Base, get_engine

metadata = Base.metadata

#: what migrations create beside the models, which cannot declare it (0008: SQLite's FTS5 table of entity-name
#: bigrams with its shadow tables, PostgreSQL's GIN index on the bigrams of entity names); comparisons of the
#: schema with the models (autogenerate, tests) skip these names
UNMODELLED = frozenset({"entity_name_bigram", "entity_name_bigram_data", "entity_name_bigram_idx",
                        "entity_name_bigram_config", "ix_entity_name_bigrams"})


def include_name(name, type_, parent_names) -> bool:
    """Alembic ``include_name`` hook: everything except :data:`UNMODELLED`."""
    return name not in UNMODELLED


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` (SQLite folders are created as needed)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(url)
    with get_engine(url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if conn.in_transaction():
            conn.commit()


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
