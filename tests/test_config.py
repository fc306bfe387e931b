"""Number settings name the variable and the value they cannot take; the CLI says so in one line (exit 2)
before it touches the database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import SettingError, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, value, message", [
    ("PARALLEL_START_FROM", "abc", "REGFLOW_PARALLEL_START_FROM='abc': a whole number of 0 or more is needed"),
    ("PARALLEL_START_FROM", "2.5", "REGFLOW_PARALLEL_START_FROM='2.5': a whole number of 0 or more is needed"),
    ("SERVICE_RETRIES", "-1", "REGFLOW_SERVICE_RETRIES='-1': a whole number of 0 or more is needed"),
    ("RETRY_BACKOFF_S", "nan", "REGFLOW_RETRY_BACKOFF_S='nan': a number of 0 or more is needed"),
    ("MAX_UPLOAD_MB", "", "REGFLOW_MAX_UPLOAD_MB='': a number of 0 or more is needed"),
])
def test_a_number_setting_it_cannot_take_is_named(monkeypatch, name, value, message):
    monkeypatch.setenv(f"REGFLOW_{name}", value)
    with pytest.raises(SettingError) as err:
        load_settings()
    assert str(err.value) == message


def test_number_settings_read_their_values(monkeypatch):
    monkeypatch.setenv("REGFLOW_PARALLEL_START_FROM", "0")
    monkeypatch.setenv("REGFLOW_RETRY_BACKOFF_S", "1.5")
    s = load_settings()
    assert (s.parallel_start_from, s.retry_backoff_s) == (0, 1.5)
    monkeypatch.delenv("REGFLOW_PARALLEL_START_FROM")
    assert load_settings().parallel_start_from == 1000


def test_the_cli_says_which_setting_and_writes_nothing(tmp_path):
    db = tmp_path / "regflow.db"
    env = {**os.environ, "REGFLOW_DATABASE_URL": f"sqlite:///{db}", "REGFLOW_PARALLEL_START_FROM": "many"}
    out = subprocess.run([sys.executable, "-m", "web.cli", "init"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "error: REGFLOW_PARALLEL_START_FROM='many': a whole number of 0 or more is needed"
    assert "Traceback" not in out.stderr and not db.exists()
