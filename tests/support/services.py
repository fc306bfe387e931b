"""Service operators used by the engine tests, registered under real operator ids.

Loaded into CLI subprocesses with ``REGFLOW_PLUGINS=tests.support.services``.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, text

from engine.db import RowInserter
from engine.runtime.models import ProcessInstance
from engine.runtime.services import BpmnError, Param, ServiceContext, registry
from scoring.models import Entity

#: failures left per idempotency key for mode "flaky:N"
_flaky: dict[str, int] = {}


EFFECT = Table("test_effect", MetaData(), Column("idem", String(80), primary_key=True), Column("label", String(200)),
               Column("at", String(40)))
#: mode "held" writes through this (held back inside ``engine.db.deferred_writes``); "held_dup" writes the key
#: "dup", which a second such call violates
HELD_EFFECT = RowInserter(EFFECT, ["idem", "label", "at"], deferrable=True)


def ensure_effect_table(session) -> None:
    session.execute(text("CREATE TABLE IF NOT EXISTS test_effect ("
                         "idem VARCHAR(80) PRIMARY KEY, label VARCHAR(200), at VARCHAR(40))"))


@registry.register("test.record", params=[Param("label", "str"), Param("mode", "str", required=False)],
                   description="Test operator: records one row per (instance, task); mode selects a failure.")
def record(ctx: ServiceContext, label: str, mode: str | None = "ok"):
    mode = mode or "ok"
    ensure_effect_table(ctx.session)
    if mode in ("held", "held_dup"):
        HELD_EFFECT.insert(ctx.session, [{"idem": "dup" if mode == "held_dup" else ctx.idempotency_key,
                                          "label": label, "at": ctx.now.isoformat()}])
    else:
        ctx.session.execute(text("INSERT INTO test_effect (idem, label, at) VALUES (:i, :l, :a)"),
                            {"i": ctx.idempotency_key, "l": label, "a": ctx.now.isoformat()})
    if mode == "fail":
        raise RuntimeError(f"backend down while recording {label}")
    if mode == "unreachable":
        raise BpmnError("unreachable", "entity not found at its registered address")
    if mode.startswith("flaky:"):
        left = _flaky.setdefault(ctx.idempotency_key, int(mode.split(":")[1]))
        if left > 0:
            _flaky[ctx.idempotency_key] = left - 1
            raise ConnectionError(f"flaky backend ({left} failure(s) left)")
    if mode.startswith("sleep:"):
        # crash tests: the first run announces itself through the marker file and sleeps (to be killed);
        # a run that finds the marker goes straight on
        marker = os.environ.get("REGFLOW_TEST_MARKER")
        if marker and not Path(marker).exists():
            Path(marker).write_text(ctx.idempotency_key)
            time.sleep(float(mode.split(":")[1]))
    return {"label": label, "key": ctx.idempotency_key}


@registry.register("test.peek", params=[Param("label", "str"), Param("mode", "str", required=False)],
                   description="Test operator that only reads (writes=False); mode 'write' breaks that promise.",
                   writes=False)
def peek(ctx: ServiceContext, label: str, mode: str | None = "ok"):
    mode = mode or "ok"
    if mode == "write":
        ensure_effect_table(ctx.session)
        ctx.session.execute(text("INSERT INTO test_effect (idem, label, at) VALUES (:i, :l, :a)"),
                            {"i": ctx.idempotency_key, "l": label, "a": ctx.now.isoformat()})
    if mode == "unreachable":
        raise BpmnError("unreachable", "entity not found at its registered address")
    if mode == "held":  # a write held back in a batch of starts (engine.db.deferred_writes)
        HELD_EFFECT.insert(ctx.session, [{"idem": ctx.idempotency_key, "label": label, "at": ctx.now.isoformat()}])
    if mode == "count":  # a read: what the transaction has written to test_effect so far
        return {"label": label, "instance": ctx.instance_id,
                "effects": ctx.session.execute(text("SELECT count(*) FROM test_effect")).scalar()}
    return {"label": label, "instance": ctx.instance_id}


@registry.register("test.score_then_fail", params=[Param("label", "str"), Param("mode", "str", required=False)],
                   description="Test operator: stores a score on entity <label> the way scoring does (Core UPDATE, "
                               "loaded object's committed values), then fails.")
def score_then_fail(ctx: ServiceContext, label: str, mode: str | None = None):
    from scoring.service import record_score  # noqa: PLC0415  (scikit-learn: not for every process loading these)

    entity = ctx.session.get(Entity, int(label))
    record_score(ctx.session, entity, {"risk_score": 0.99, "risk_class": "D", "risk_reasons": [],
                                       "model_version": None, "scored_at": datetime.now(timezone.utc)})
    raise RuntimeError("scoring backend fell over after the write")


@registry.register("test.detached", params=[Param("label", "str")],
                   description="Test operator registered with instance_row=False: records one row and reports "
                               "whether the calling instance's row exists yet.", instance_row=False)
def detached(ctx: ServiceContext, label: str):
    ensure_effect_table(ctx.session)
    ctx.session.execute(text("INSERT INTO test_effect (idem, label, at) VALUES (:i, :l, :a)"),
                        {"i": ctx.idempotency_key, "l": label, "a": ctx.now.isoformat()})
    exists = ctx.session.get(ProcessInstance, ctx.instance_id) is not None
    return {"label": label, "row_exists": exists}
