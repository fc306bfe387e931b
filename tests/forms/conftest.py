"""Fixtures of the forms tests: the sample form (every field type) and the shipped definitions."""
from __future__ import annotations

from pathlib import Path

import pytest

from forms.loader import FormRegistry, load_form_file

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "forms" / "definitions"

SHA = "ab" * 32


def ref(name: str = "photo.jpg", sha: str = SHA, size: int = 1024) -> dict:
    return {"sha256": sha, "filename": name, "size": size}


@pytest.fixture(scope="session")
def sample():
    return load_form_file(DATA / "good" / "sample.yaml")


@pytest.fixture(scope="session")
def shipped():
    return FormRegistry(SHIPPED)


@pytest.fixture
def valid_sample_data() -> dict:
    """JSON data that satisfies the sample form."""
    return {
        "uscc": "91440101MA5C000010",
        "visited": True,
        "decision": "approve",
        "checks": {"GEN-01": {"result": "compliant"}, "4.2.1": {"result": "not_applicable"}},
    }
