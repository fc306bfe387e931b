"""bench/loop.py's launch measurement runs end to end on a small campaign (numbers are not asserted)."""
from __future__ import annotations

import json
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
    # the in-memory floor runs the same process to the same wait state
    assert doc["engine_floor"]["waiting_at"] == ["inspect"] and doc["engine_floor"]["instances"] == 40
    assert doc["goal_applies"] is False and doc["goal_met"] is False
