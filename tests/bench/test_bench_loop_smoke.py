"""bench/loop.py's launch measurement runs end to end on a small campaign (numbers are not asserted)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_launch_smoke():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "loop.py"), "--only", "launch",
                          "--launch-entities", "40", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)["launch"]
    assert doc["launched"] == 40 and doc["waiting_at"] == {"inspect": 40}
    assert 0 < doc["approval_request_s"] <= doc["launch_s"]  # the approval only queued the launch (the worker's)
    # the in-memory floor runs the same process to the same wait state
    assert doc["engine_floor"]["waiting_at"] == ["inspect"] and doc["engine_floor"]["instances"] == 40
    assert doc["goal_applies"] is False and doc["goal_met"] is False


def test_launch_smoke_split_and_single_process():
    """With the split threshold below the campaign's size the launch is computed in two processes (and
    says so); ``--single-process`` turns that off."""
    env = {**os.environ, "REGFLOW_PARALLEL_START_FROM": "20"}
    for extra, split in (([], True), (["--single-process"], False)):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "loop.py"), "--only", "launch",
                              "--launch-entities", "40", "--json", *extra], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, env=env)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)["launch"]
        assert doc["launched"] == 40 and doc["waiting_at"] == {"inspect": 40}
        if split:
            (window,) = doc["split"]
            assert window["instances"] == 40 and window["second_process"] + window["here"] == 40
            assert window["second_process"] > 0 and "second_process_failed" not in window
        else:
            assert doc["split"] is None
