"""regflow's task serialization gives SpiffWorkflow's own dictionary (the suite cross-checks every state it
writes, see tests/conftest.py; this shows the check is on and catches a difference)."""
from __future__ import annotations

import enum
import math
from collections import OrderedDict, namedtuple
from datetime import datetime, timedelta, timezone

import pytest

from engine.runtime import serializer
from tests.conftest import deploy_files


def test_cross_check_is_on_and_catches_a_difference(runtime, db, people, monkeypatch):
    assert serializer.CROSS_CHECK, "the suite runs with REGFLOW_SERIALIZER_CROSS_CHECK=1"
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        inst = runtime.start(s, "minimal", data={"amount": 7}).instance
    with db.tx() as s:
        wf = runtime.load_workflow(s, inst.id)
    runtime.serializer.dumps(wf)  # consistent: no error
    real = serializer.tasks_to_dict

    def off_by_one(converter, tasks):
        out = real(converter, tasks)
        first = next(iter(out.values()))
        first["state"] += 1
        return out
    monkeypatch.setattr(serializer, "tasks_to_dict", off_by_one)
    with pytest.raises(AssertionError, match="differs from SpiffWorkflow"):
        runtime.serializer.dumps(wf)


def _state_with(runtime, db, values: dict):
    deploy_files(runtime, db, "minimal.bpmn")
    with db.tx() as s:
        inst = runtime.start(s, "minimal", data={"amount": 7}).instance
    with db.tx() as s:
        wf = runtime.load_workflow(s, inst.id)
    wf.task_tree.set_data(**values)
    return wf


def test_state_encoding_writes_what_spiffworkflow_writes(runtime, db, people):
    """States are encoded by orjson; what is read back is what SpiffWorkflow's own encoder gives (the
    cross-check compares the two for this state too), the odd types included."""
    class Level(enum.IntEnum):
        HIGH = 3

    class Code(str):
        pass

    Pair = namedtuple("Pair", "a b")
    values = {"when": datetime(2026, 12, 6, 8, 30, tzinfo=timezone.utc), "span": timedelta(days=2, seconds=5),
              "tags": {"x"}, "code": Code("AR-01"), "level": Level.HIGH, "pair": Pair(1, "二"),
              "ordered": OrderedDict(b=1, a=2), "name": "郑州市某某食品有限公司", "score": 0.055145,
              "nested": [{"k": [1, 2.5, None, True]}]}
    wf = _state_with(runtime, db, values)
    text = runtime.serializer.dumps(wf)
    assert "郑州市某某食品有限公司" in text  # UTF-8, not \\u escapes
    data = runtime.serializer.loads(text).task_tree.data
    assert data["when"] == values["when"] and data["span"] == values["span"]
    assert data["tags"] == ["x"] and data["code"] == "AR-01" and data["level"] == 3
    assert data["pair"] == [1, "二"] and data["ordered"] == {"b": 1, "a": 2}
    assert data["score"] == 0.055145 and data["nested"] == values["nested"]


def test_state_encoding_falls_back_to_the_standard_encoder(runtime, db, people):
    """What orjson refuses (an integer beyond 64 bits) is written by the standard encoder, and read back."""
    wf = _state_with(runtime, db, {"big": 2 ** 70})
    assert runtime.serializer.loads(runtime.serializer.dumps(wf)).task_tree.data["big"] == 2 ** 70


def test_state_encoding_refuses_what_no_encoder_writes(runtime, db, people):
    wf = _state_with(runtime, db, {"thing": object()})
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        runtime.serializer.dumps(wf)


def test_state_encoding_cross_check_catches_a_difference(runtime, db, people, monkeypatch):
    """NaN is one value the two encoders write differently (orjson: null): the cross-check says so."""
    wf = _state_with(runtime, db, {"score": float("nan")})
    with pytest.raises(AssertionError, match="orjson state differs"):
        runtime.serializer.dumps(wf)
    monkeypatch.setattr(serializer, "CROSS_CHECK", False)
    assert runtime.serializer.loads(runtime.serializer.dumps(wf)).task_tree.data["score"] is None


def test_states_written_by_the_standard_encoder_still_load(runtime, db, people, monkeypatch):
    """States stored before (ASCII-escaped, NaN as the standard library writes it) load as they did."""
    wf = _state_with(runtime, db, {"name": "食品", "score": float("nan")})
    inner = runtime.serializer.spiff_serializer
    old = inner.serialize_json(wf)
    assert "\\u98df" in old and "NaN" in old
    data = runtime.serializer.loads(old).task_tree.data
    assert data["name"] == "食品" and math.isnan(data["score"])
