"""A campaign launch computed in two processes (engine/runtime/parallel.py): the same instances, waiting at
the same tasks, as the launch computed in one; the officers' workload caps hold across both processes;
a second process that would need the database gives its part back and the first runs it; and a process
that may not use the database cannot, whatever it tries."""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
from dataclasses import replace

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, text

from engine import db as engine_db
from engine.bootstrap import build_runtime
from engine.config import load_settings
from engine.db import dispose_engines, session_factory, transaction
from engine.runtime import audit, clock
from engine.runtime import runtime as runtime_module
from engine.runtime.models import HumanTask, Job, ProcessInstance
from engine.runtime.worker import run_jobs
from engine.schema import upgrade
from engine.simulation import DEFAULT_START, EVERY_CLASS, Options, campaign_plan, prepare_run
from engine.supervision import inspection, teams
from engine.supervision.registry_models import TeamAssignment, TeamDraw

WANT = 160  # children: long enough to be split at the threshold below, short enough for the suite
SPLIT_FROM = 50


def _launch(tmp_path, name: str, *, split_from: int, cap: int | None = None, monkeypatch=None) -> dict:
    """Set up a registry, plan and approve a campaign that draws ``WANT`` entities (every class at 100 %), let the
    worker's job loop run the launch the approval queued, and report what the launch left in the database."""
    url = f"sqlite:///{tmp_path / name}.db"
    upgrade(url)
    runtime = build_runtime(replace(load_settings(database_url=url), parallel_start_from=split_from))
    if cap is not None:
        monkeypatch.setattr(inspection, "workload_cap_for", lambda *_a, **_k: cap)
    now = DEFAULT_START
    try:
        with clock.frozen(now):
            prepare_run(url, Options(entities=math.ceil(WANT / 0.92) + 20, seed=5, training_entities=2000), runtime)
        factory = session_factory(url)
        plan = campaign_plan("split launch", now, ratios=EVERY_CLASS, control_share=0, capacity=WANT,
                             lookback_months=0)
        approval = {"decision": "approve", "public_random_value": "03 11 19 24 27 30 + 07",
                    "public_random_source": "test", "notice_date": now.date().isoformat()}
        with clock.frozen(now):
            with transaction(factory) as s:
                iid = runtime.start(s, "inspection_campaign", business_key="SPLIT", actor="planner").instance.id
            for actor, form in (("planner", plan), ("approver", approval)):
                with transaction(factory) as s:
                    (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid,
                                                              HumanTask.status == "open"))
                    runtime.complete_task(s, ht.id, actor, form)
            with transaction(factory) as s:  # the approval launched nothing: it queued the launch for a worker
                assert s.scalar(select(func.count()).select_from(ProcessInstance)
                                .where(ProcessInstance.parent_instance_id == iid)) == 0
                assert s.execute(select(Job.kind, Job.bpmn_id).where(Job.instance_id == iid)).all() == [
                    ("continue", "launch")]
            report = run_jobs(runtime, factory)  # the worker's job loop launches them
            assert report.continuations_run == 1 and not report.failures
        with transaction(factory) as s:
            children = s.scalars(select(ProcessInstance).where(ProcessInstance.parent_instance_id == iid)).all()
            waits = dict(s.execute(select(ProcessInstance.business_key, HumanTask.bpmn_id).join(
                HumanTask, HumanTask.instance_id == ProcessInstance.id).where(
                ProcessInstance.parent_instance_id == iid, HumanTask.status == "open")).all())
            draws = s.scalar(select(func.count()).select_from(TeamDraw))
            assignments = s.scalars(select(TeamAssignment)).all()
            load = dict(s.execute(select(TeamAssignment.inspector_id, func.count()).where(
                TeamAssignment.released_at.is_(None)).group_by(TeamAssignment.inspector_id)).all())
            workload_exclusions = sum("workload: " in json.dumps(p) for p in s.scalars(select(TeamDraw.pool)))
            chains_ok = all(audit.verify(s, chain=audit.instance_chain(c.id)).ok for c in children)
            paths = {c.business_key: _waiting_data(runtime.load_workflow(s, c.id)).get("path") for c in children}
            ids = {"task": s.scalars(select(HumanTask.id)).all(), "draw": s.scalars(select(TeamDraw.id)).all(),
                   "assignment": [a.id for a in assignments]}
        return {"children": len(children), "statuses": {c.status for c in children}, "waits": waits,
                "draws": draws, "assignments": len(assignments), "load": load,
                "workload_exclusions": workload_exclusions, "chains_ok": chains_ok,
                "paths": paths, "ids": ids}
    finally:
        dispose_engines()


def _waiting_data(wf) -> dict:
    (task,) = [t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]
    return task.data


def test_split_launch_gives_what_the_single_process_launch_gives(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    split = _launch(tmp_path, "split", split_from=SPLIT_FROM)
    assert any("computed by a second process" in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
    caplog.clear()
    single = _launch(tmp_path, "single", split_from=0)
    assert not any("second process" in r.getMessage() for r in caplog.records)
    assert split["children"] == single["children"] >= WANT
    assert split["statuses"] == single["statuses"] == {"running"}
    assert split["waits"] == single["waits"] and set(split["waits"].values()) == {"inspect"}
    assert split["paths"] == single["paths"] and {"standard", "heavy"} <= set(split["paths"].values())
    assert split["draws"] == single["draws"] == split["children"]
    assert split["assignments"] == single["assignments"]
    assert split["chains_ok"] and single["chains_ok"]
    # ids from both processes: none taken twice, none skipped
    for kind, got in split["ids"].items():
        assert sorted(got) == list(range(min(got), min(got) + len(got))), kind


def test_workload_cap_holds_across_both_processes(tmp_path, caplog, monkeypatch):
    """With a cap that binds (15 open assignments per officer; uncapped, the busiest officer of this
    launch gets 20), the two processes share the workload: officers at the cap are left out of later
    pools in both, and nobody gets a sixteenth team."""
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    out = _launch(tmp_path, "capped", split_from=SPLIT_FROM, cap=15, monkeypatch=monkeypatch)
    assert any("computed by a second process" in r.getMessage() for r in caplog.records)
    assert out["workload_exclusions"] > 0
    assert max(out["load"].values()) <= 15
    assert set(out["waits"].values()) == {"inspect"} and len(out["waits"]) == out["children"]


def _in_the_child(monkeypatch, act) -> None:
    """``act(session)`` in the forked process only, where team formation reads the skills (under the workload
    lock), before it goes on as usual."""
    parent = os.getpid()
    real = teams._known_skills

    def known_skills(session):
        if os.getpid() != parent:
            act(session)
        return real(session)
    monkeypatch.setattr(teams, "_known_skills", known_skills)


def test_a_second_process_that_needs_the_database_gives_its_part_back(tmp_path, caplog, monkeypatch):
    _in_the_child(monkeypatch, lambda session: session.execute(text("select 1")))
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    out = _launch(tmp_path, "fallback", split_from=SPLIT_FROM)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("started here instead" in w and "may not use the database: select 1" in w for w in warnings), warnings
    assert out["children"] >= WANT and set(out["waits"].values()) == {"inspect"}
    assert out["draws"] == out["children"] and out["chains_ok"]
    load = out["load"]
    assert sum(load.values()) == out["assignments"]  # the child's discarded teams left no count behind


def test_a_second_process_that_dies_has_its_part_run_here(tmp_path, caplog, monkeypatch):
    _in_the_child(monkeypatch, lambda _session: os._exit(3))
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    out = _launch(tmp_path, "died", split_from=SPLIT_FROM)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("started here instead" in w and "answer is cut short" in w for w in warnings), warnings
    assert out["children"] >= WANT and set(out["waits"].values()) == {"inspect"} and out["chains_ok"]


@pytest.mark.parametrize("window", [70, 53])
def test_a_long_split_batch_goes_window_by_window(tmp_path, caplog, monkeypatch, window):
    """160 children in windows of 70 (70, 70, 20: three splits) or 53 (53, 53, 53 and a last one of 1,
    started in one process)."""
    monkeypatch.setattr(runtime_module, "_SPLIT_WINDOW", window)
    caplog.set_level(logging.INFO, logger="engine.runtime.runtime")
    out = _launch(tmp_path, f"windows{window}", split_from=SPLIT_FROM)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    splits = [r.getMessage() for r in caplog.records if "computed by a second process" in r.getMessage()]
    full, rest = divmod(out["children"], window)
    expected = [f"batch of {window} starts"] * full + ([f"batch of {rest} starts"] if rest >= 4 else [])
    assert [m.split(":")[0] for m in splits] == expected, splits
    assert out["children"] == WANT and len(expected) == 3
    assert set(out["waits"].values()) == {"inspect"} and out["draws"] == out["children"] and out["chains_ok"]
    for kind, got in out["ids"].items():
        assert sorted(got) == list(range(min(got), min(got) + len(got))), kind


def test_a_process_forbidden_the_database_cannot_use_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'guard.db'}"
    upgrade(url)
    factory = session_factory(url)
    try:
        with transaction(factory) as s:
            s.execute(text("select 1"))
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    engine_db.forbid_database("the test's child")
                    seen = []
                    for what, attempt in (("statement", lambda: s.execute(text("select 1"))),
                                          ("savepoint", lambda: (s.begin_nested(), s.execute(text("select 1")))),
                                          ("commit", lambda: s.commit())):
                        try:
                            attempt()
                            seen.append((what, "ran"))
                        except engine_db.DatabaseForbidden as exc:
                            seen.append((what, str(exc)))
                        except Exception as exc:  # noqa: BLE001 - reported to the test
                            seen.append((what, f"other: {type(exc).__name__}: {exc}"))
                    os.write(write_fd, pickle.dumps((seen, engine_db.database_forbidden_hits())))
                finally:
                    os._exit(0)
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as src:
                seen, hits = pickle.loads(src.read())
            os.waitpid(pid, 0)
            # the parent's transaction is intact
            assert s.execute(text("select 2")).scalar() == 2
        assert [what for what, _r in seen] == ["statement", "savepoint", "commit"]
        assert seen[0][1] == "the test's child may not use the database: select 1"
        assert seen[1][1] == seen[2][1] == "the test's child may not use the database: a transaction command"
        assert len(hits) == 3
    finally:
        dispose_engines()


def test_shared_workload_counts_both_processes():
    shared = teams.SharedWorkload({1: 2, 2: 0}, [1, 2, 3])
    shared.add(1)
    shared.mine = 1
    shared.add(1)
    shared.add(3)
    assert shared.get(1) == 4 and shared[3] == 1 and shared.get(2) == 0 and shared.get(9) == 0
    assert shared.merged(with_child=True) == {1: 4, 2: 0, 3: 1}
    assert shared.merged(with_child=False) == {1: 3, 2: 0}
