"""Fixtures for the scoring tests: small synthetic regions, one trained model, a scratch SQLite database."""
from __future__ import annotations

import pytest

from engine.db import Base, get_engine, session_factory, transaction
from scoring import registry, service
from scoring.generator import WorldParams, generate
from scoring.models import Entity, ModelVersion
from scoring.train import train_synthetic

#: Test world: smaller registry, but more of each campaign is drawn and more of the draw is random, so the
#: test stratum (~3.5k random inspections) is large enough for the targets to be checked.
TEST_PARAMS = WorldParams(draw_rate=0.2, control_share=0.4)


@pytest.fixture(scope="session")
def region():
    return generate(20_000, seed=11)


@pytest.fixture(scope="session")
def trained():
    """``(TrainResult, region)`` on 40k entities; all candidates compared."""
    return train_synthetic(40_000, seed=5, params=TEST_PARAMS)


@pytest.fixture()
def db(tmp_path):
    """A session factory on a fresh SQLite file with the scoring tables."""
    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    Base.metadata.create_all(get_engine(url), tables=[ModelVersion.__table__, Entity.__table__])
    yield session_factory(url)
    get_engine(url).dispose()


@pytest.fixture()
def loaded_db(db, trained):
    """The trained model stored and active, and the first 3,000 entities of its region loaded."""
    result, region = trained
    frame = {k: v[:3000] for k, v in region.entities.items()}
    with transaction(db) as s:
        service.load_entities(s, frame)
        registry.store_version(s, result.model, result.metrics, result.metadata)
    return db
