"""Supervision-loop benchmark (issue 4). Run: ``.venv/bin/python bench/loop.py [--entities 1000000] [--json]``.

Measurements, one function each in ``MEASUREMENTS`` (``--only draw|launch|full_loop``):

* ``draw`` — the stratified verifiable draw (engine/supervision/draw.py) on N eligible entities from the
  synthetic registry generator (classes A–D by the configured mix over a rule-of-thumb score):
  in memory (sort + validate + hash the population list, then seed, one HMAC per entity, quotas, control
  stratum, selection), and through SQLite (a temp file): freeze the eligible population from the
  ``entity`` table (query, exclusions, hash, compressed snapshot) + draw + write ``draw_result`` +
  commit, then ``verify``. Goal: ≤ 5 s for 1M eligible entities.
* ``launch`` — a campaign of ``--launch-entities`` (10,000) entities from the approver's decision to every
  child instance waiting at its first user task, through the real processes on SQLite. Goal: ≤ 20 s.
* ``full_loop`` — ``regflow simulate`` on ``--loop-entities`` entities.

The machine is shared: the load average is printed with the numbers; run-to-run noise is ±30 % or more.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from engine.bootstrap import build_runtime  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.db import dispose_engines, session_factory, transaction  # noqa: E402
from engine.runtime import clock  # noqa: E402
from engine.runtime.continuations import CONTINUE_JOB  # noqa: E402
from engine.runtime.models import HumanTask, ProcessDefinition, ProcessInstance  # noqa: E402
from engine.runtime.script_engine import RegflowScriptEngine  # noqa: E402
from engine.runtime.serializer import RegflowWorkflow  # noqa: E402
from engine.runtime.worker import run_jobs  # noqa: E402
from engine.schema import upgrade  # noqa: E402
from engine.simulation import DEFAULT_START, EVERY_CLASS, Options, campaign_plan, prepare_run, simulate  # noqa: E402
from engine.supervision import draw as drawing  # noqa: E402
from engine.supervision.registry_models import CheckItem, Department  # noqa: E402
from scoring.classes import load_class_config  # noqa: E402
from scoring.generator import generate, legacy_rule_score  # noqa: E402
from scoring.models import Entity  # noqa: E402

GOAL_DRAW_S = 5.0
GOAL_LAUNCH_S = 20.0
NOW = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)


def _registry(n: int, seed: int) -> dict[str, np.ndarray]:
    """N entities from the scoring generator, with a class A–D by the configured mix."""
    region = generate(n, seed=seed, history=False)
    e = region.entities
    rng = np.random.default_rng(seed)
    score = legacy_rule_score(e) + rng.random(n) * 0.5  # break the rule score's ties
    cut = np.quantile(score, load_class_config().cumulative())
    classes = np.array(list("ABCD"))[np.searchsorted(cut, score)]
    return {"id": e["id"], "uscc": e["uscc"], "industry_section": e["industry_section"], "district": e["district"],
            "entity_type": e["entity_type"], "status": e["status"], "risk_class": classes}


def measure_draw(args) -> dict:
    n_total = args.entities
    t = time.perf_counter()
    reg = _registry(n_total, args.seed)
    gen_s = time.perf_counter() - t
    active = ~np.isin(reg["status"], drawing.TERMINAL_STATUSES)
    # the in-memory run uses exactly --entities eligible entities (the generator makes ~6 % terminal)
    extra = 0
    while active.sum() < n_total:
        extra += n_total - int(active.sum()) + 1000
        reg = _registry(n_total + extra, args.seed)
        active = ~np.isin(reg["status"], drawing.TERMINAL_STATUSES)
    elig = np.flatnonzero(active)[:n_total]
    usccs, classes = reg["uscc"][elig], reg["risk_class"][elig]
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        pop = drawing.Population.build(usccs, classes)
        t1 = time.perf_counter()
        out = drawing.draw_population(pop, "BENCH-2026-01", "03 11 19 24 27 30 + 07")
        t2 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1, t2 - t0))
    doc = {
        "eligible": n_total, "generate_s": round(gen_s, 2),
        "in_memory_s": round(statistics.median(r[2] for r in runs), 2),
        "in_memory_min_s": round(min(r[2] for r in runs), 2),
        "population_build_s": round(statistics.median(r[0] for r in runs), 2),
        "draw_s": round(statistics.median(r[1] for r in runs), 2),
        "drawn": out.summary["drawn"], "total_drawn": out.summary["total"],
        "population": out.summary["population"],
    }
    if not args.skip_db:
        doc["sqlite"] = _draw_sqlite(reg, n_total, elig)
    doc["goal_s"] = GOAL_DRAW_S
    doc["goal_met_in_memory"] = doc["in_memory_s"] <= GOAL_DRAW_S
    if "sqlite" in doc:
        doc["goal_met_sqlite"] = doc["sqlite"]["freeze_draw_commit_s"] <= GOAL_DRAW_S
    return doc


def _draw_sqlite(reg: dict, n_eligible: int, elig: np.ndarray) -> dict:
    """Load the registry into a temp SQLite file; time freeze + draw + write + commit, then verify."""
    # as many terminal entities as the generator made among the first rows, plus the eligible ones
    last = int(elig[-1]) + 1
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        factory = session_factory(url)
        t = time.perf_counter()
        cols = ("id", "uscc", "industry_section", "district", "entity_type", "status", "risk_class")
        with transaction(factory) as s:
            s.add(Department(code="market", name="市场监管"))
            s.flush()
            s.add(CheckItem(code="BENCH-01", name="bench", legal_basis="-", department="market", industries=[],
                            clauses=[], ratio=0.05, frequency="annual", method="on_site", updated_at=NOW))
            step = 50_000
            for lo in range(0, last, step):
                hi = min(lo + step, last)
                chunk = {c: reg[c][lo:hi].tolist() for c in cols}
                s.execute(insert(Entity), [
                    {**{c: chunk[c][i] for c in cols}, "name": "e"} for i in range(hi - lo)])
        load_s = time.perf_counter() - t
        with transaction(factory) as s:
            cid = drawing.create_campaign(s, code="BENCH-2026-01", name="bench", departments=["market"],
                                    items=["BENCH-01"], window_start=date(2026, 4, 1), window_end=date(2026, 6, 30),
                                    created_by="bench", now=NOW).id
            drawing.approve_campaign(s, cid, approver="bench", now=NOW, public_value="03 11 19 24 27 30 + 07")
        t0 = time.perf_counter()
        with transaction(factory) as s:
            pop = drawing.freeze_population(s, cid, NOW)
        t1 = time.perf_counter()
        with transaction(factory) as s:
            summary = drawing.draw_campaign(s, cid, NOW)
        t2 = time.perf_counter()
        with transaction(factory) as s:
            again = drawing.draw_campaign(s, cid, NOW)
        t3 = time.perf_counter()
        with transaction(factory) as s:
            ok = drawing.verify(s, cid)
        t4 = time.perf_counter()
        db_bytes = (Path(tmp) / "bench.db").stat().st_size
        dispose_engines()
    assert pop.eligible == n_eligible, (pop.eligible, n_eligible)
    assert ok.ok and not again.created
    return {"entities_loaded": last, "load_s": round(load_s, 1), "eligible": pop.eligible, "excluded": pop.excluded,
            "freeze_population_s": round(t1 - t0, 2), "draw_and_write_s": round(t2 - t1, 2),
            "freeze_draw_commit_s": round(t2 - t0, 2), "redraw_idempotent_s": round(t3 - t2, 3),
            "verify_s": round(t4 - t3, 2), "verified": ok.ok, "drawn": summary.total,
            "db_bytes_after": db_bytes}


def measure_full_loop(args) -> dict:
    """``regflow simulate`` for ``--loop-entities`` entities: fresh registry, model, campaign, every instance
    run to its end through the real processes on a temporary SQLite database."""

    t0 = time.perf_counter()
    summary = simulate(Options(entities=args.loop_entities, seed=args.seed))
    return {"entities": args.loop_entities, "wall_s": round(time.perf_counter() - t0, 1),
            "elapsed_s": summary["elapsed_s"], "instances": summary["instances"], "drawn": summary["drawn"],
            "incidents": summary["incidents"], "audit_chain_ok": summary["audit_chain_ok"]}


def measure_launch(args) -> dict:
    """Time to launch a campaign of ``--launch-entities`` entities to their first wait state, through the real
    processes and engine on a temporary SQLite file: the approver's ``complete_task`` on ``approve`` runs, in
    one transaction, campaign row -> eligible population -> draw (every class at 100 %, no control stratum) ->
    plan publication, and stops at the launch (``async`` = ``before``: the approval's own time is
    ``approval_request_s``); then the worker's job loop runs the queued continuation in a transaction of its own:
    ``campaign.launch_inspections`` (``Runtime.start_many``), and every child runs
    risk.score -> route_by_risk -> joint check -> team.form until it waits at ``inspect`` (or
    ``resolve_staffing``). Set-up (registry, model, scoring, deployment) is not timed. Goal: <= 20 s for 10,000."""

    want = args.launch_entities
    # the generator makes ~6 % of entities terminal (never eligible): generate enough to draw ``want``
    n = math.ceil(want / 0.92) + 50

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'launch.db'}"
        upgrade(url)
        settings = load_settings(database_url=url)
        if args.single_process:
            settings = replace(settings, parallel_start_from=0)
        runtime = build_runtime(settings)
        try:
            t = time.perf_counter()
            with clock.frozen(DEFAULT_START):
                prepare_run(url, Options(entities=n, seed=args.seed, training_entities=5000), runtime)
            setup_s = time.perf_counter() - t
            factory = session_factory(url)
            now = DEFAULT_START
            plan = campaign_plan("bench launch", now, ratios=EVERY_CLASS, control_share=0, capacity=want,
                                 lookback_months=0)
            with clock.frozen(now), transaction(factory) as s:
                iid = runtime.start(s, "inspection_campaign", business_key="BENCH-LAUNCH", actor="planner").instance.id
            with clock.frozen(now), transaction(factory) as s:
                (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open"))
                runtime.complete_task(s, ht.id, "planner", plan)
            with clock.frozen(now), transaction(factory) as s:
                (ht,) = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open"))
            approval = {"decision": "approve", "public_random_value": "03 11 19 24 27 30 + 07",
                        "public_random_source": "bench", "notice_date": now.date().isoformat()}
            recorded = _record_service_results()
            profiler = None
            if args.profile:
                profiler = cProfile.Profile()
            t0, c0 = time.perf_counter(), time.process_time()
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                if profiler:
                    profiler.enable()
                with clock.frozen(now), transaction(factory) as s:
                    runtime.complete_task(s, ht.id, "approver", approval)
                approval_s = time.perf_counter() - t0
                with clock.frozen(now):  # the launch the approval queued (async = before), as a worker runs it
                    ran = run_jobs(runtime, factory, kinds=(CONTINUE_JOB,))
                if ran.continuations_run != 1 or ran.failures:
                    raise RuntimeError(f"the queued launch did not run as one continuation: {ran.to_dict()}")
            finally:
                if profiler:
                    profiler.disable()
                recorded.stop()
            launch_s, launch_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            second_cpu_s = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
            if profiler:
                profiler.dump_stats(args.profile)
            with clock.frozen(now):
                floor = _engine_floor(runtime, factory, recorded.results, min(want, 2000))
            with transaction(factory) as s:
                children = s.scalar(select(func.count()).select_from(ProcessInstance)
                                    .where(ProcessInstance.parent_instance_id == iid))
                waiting = dict(s.execute(select(HumanTask.bpmn_id, func.count()).join(
                    ProcessInstance, ProcessInstance.id == HumanTask.instance_id).where(
                    ProcessInstance.parent_instance_id == iid, HumanTask.status == "open")
                    .group_by(HumanTask.bpmn_id)).all())
        finally:
            dispose_engines()
    per_ms = 1000 * launch_s / max(children, 1)
    return {"entities": n, "launched": children, "waiting_at": waiting, "setup_s": round(setup_s, 1),
            "launch_s": round(launch_s, 2), "launch_cpu_s": round(launch_cpu_s, 2),
            "approval_request_s": round(approval_s, 2),
            "second_process_cpu_s": round(second_cpu_s, 2), "split": runtime.last_split,
            "per_instance_ms": round(per_ms, 2),
            "engine_floor": floor,
            "goal_s": GOAL_LAUNCH_S, "goal_met": children == 10_000 and launch_s <= GOAL_LAUNCH_S,
            "goal_applies": children == 10_000}


class _record_service_results:
    """Keep the first result of each service operator during the launch (one dict look-up per call)."""

    def __init__(self):
        self.results: dict[str, str] = {}
        self._cls = RegflowScriptEngine
        self._orig = orig = RegflowScriptEngine.call_service
        results = self.results

        def call_service(engine, task, operation_name=None, operation_params=None, **kw):
            out = orig(engine, task, operation_name, operation_params, **kw)
            if operation_name not in results:
                results[operation_name] = out
            return out
        RegflowScriptEngine.call_service = call_service

    def stop(self) -> None:
        self._cls.call_service = self._orig


def _engine_floor(runtime, factory, results: dict[str, str], n: int) -> dict:
    """What the engine alone costs per launched instance: ``entity_inspection`` from its start to the
    ``inspect`` task in memory — a ``RegflowWorkflow`` (SpiffWorkflow with regflow's cheaper tree walks and
    state-change logging, ``engine/runtime/spiff_speedups.py``), the same parsed specs and restricted script
    engine, the service tasks answering instantly with results recorded from the real launch, no database;
    then the same plus serializing the state as the runtime does. The persisted launch cannot be faster."""
    class Instant(RegflowScriptEngine):
        def call_service(self, task, operation_name=None, operation_params=None, **_kw):
            return results[operation_name]

    with transaction(factory) as s:
        def_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == "entity_inspection")
                          .order_by(ProcessDefinition.version.desc()).limit(1))
        d = runtime.definition(s, def_id)
        data = {"uscc": "91410105341672112H", "entity_id": 1, "campaign_id": 1, "items": [], "stratum": "C",
                "campaign_seed": "", "workload_cap": 5}
    engine_s = serialize_s = 0.0
    waiting = None
    for _ in range(n):
        t = time.perf_counter()
        wf = RegflowWorkflow(d.spec, d.subs, script_engine=Instant(runtime.services, None,
                             time_budget_s=runtime.settings.script_time_budget_s, helpers=runtime.helpers),
                             spec_ref=d.id)
        wf.get_tasks(state=TaskState.READY)[0].set_data(**data)
        wf.do_engine_steps()
        t1 = time.perf_counter()
        runtime.serializer.dumps(wf)
        t2 = time.perf_counter()
        engine_s += t1 - t
        serialize_s += t2 - t1
        waiting = [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]
    return {"instances": n, "waiting_at": waiting, "spiff_ms": round(1000 * engine_s / n, 2),
            "serialize_ms": round(1000 * serialize_s / n, 2),
            "spiff_plus_serialize_s_for_10k": round(10_000 * (engine_s + serialize_s) / n, 1)}


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "draw": measure_draw,
    "launch": measure_launch,
    "full_loop": measure_full_loop,
}


def _split_line(doc: dict) -> str:
    windows = doc["split"]
    if not windows:
        return "computed in one process (fewer starts than REGFLOW_PARALLEL_START_FROM, or --single-process)"
    failed = [w["second_process_failed"] for w in windows if "second_process_failed" in w]
    if failed:
        return f"the second process's part failed in {len(failed)} of {len(windows)} window(s), run here: {failed[0]}"
    total = {k: round(sum(w[k] for w in windows), 2) for k in ("second_process", "second_process_s", "here",
                                                               "here_s", "then_waiting_and_reading_s")}
    return (f"computed in two processes ({len(windows)} window(s)): {total['second_process']:,} instances forked "
            f"off in {total['second_process_s']} s (CPU {doc['second_process_cpu_s']} s), {total['here']:,} here in "
            f"{total['here_s']} s, then {total['then_waiting_and_reading_s']} s waiting for and reading the "
            f"second's rows, and the writing of them")


def _human(name: str, doc: dict) -> str:
    if name == "draw":
        lines = [f"draw, {doc['eligible']:,} eligible entities (goal <= {doc['goal_s']} s):",
                 f"  in memory: {doc['in_memory_s']:.2f} s median (min {doc['in_memory_min_s']:.2f}) = "
                 f"population sort/validate/hash {doc['population_build_s']:.2f} s + draw {doc['draw_s']:.2f} s; "
                 f"{doc['total_drawn']:,} drawn {doc['drawn']}  "
                 f"-> goal {'met' if doc['goal_met_in_memory'] else 'NOT met'}"]
        if "sqlite" in doc:
            q = doc["sqlite"]
            lines.append(f"  SQLite: freeze population {q['freeze_population_s']:.2f} s ({q['excluded']:,} exclusions "
                         f"logged) + draw and write {q['draw_and_write_s']:.2f} s = {q['freeze_draw_commit_s']:.2f} s "
                         f"committed -> goal {'met' if doc['goal_met_sqlite'] else 'NOT met'}; "
                         f"redraw (idempotent) {q['redraw_idempotent_s']:.3f} s; verify {q['verify_s']:.2f} s "
                         f"({'verified' if q['verified'] else 'FAILED'}); "
                         f"loading {q['entities_loaded']:,} entities took {q['load_s']:.0f} s (not timed)")
        return "\n".join(lines)
    if name == "launch":
        return (f"campaign launch to the first wait state, {doc['launched']:,} entity_inspection instances on SQLite "
                f"(goal <= {doc['goal_s']:.0f} s for 10,000): {doc['launch_s']:.2f} s, the approval's request "
                f"{doc['approval_request_s']:.2f} s then the worker's launch in one transaction "
                f"({doc['per_instance_ms']} ms per instance, CPU {doc['launch_cpu_s']:.2f} s; "
                f"waiting at {doc['waiting_at']}) -> goal "
                f"{('met' if doc['goal_met'] else 'NOT met') if doc['goal_applies'] else 'not measured'}"
                f"{'' if doc['goal_applies'] else ' (the goal is for 10,000)'}; "
                f"set-up {doc['setup_s']} s (not timed)\n"
                f"  {_split_line(doc)}\n"
                f"  floor: the engine alone (RegflowWorkflow), in memory, same specs, services answering instantly "
                f"({doc['engine_floor']['instances']:,} instances to {doc['engine_floor']['waiting_at']}): "
                f"{doc['engine_floor']['spiff_ms']} ms + serializing {doc['engine_floor']['serialize_ms']} ms "
                f"per instance = {doc['engine_floor']['spiff_plus_serialize_s_for_10k']} s for 10,000")
    if name == "full_loop":
        return (f"simulated full loop, {doc['entities']:,} entities: {doc['elapsed_s']} s "
                f"(registry, model training, campaign and every instance to its end; {doc['instances']}, "
                f"drawn {doc['drawn']}, incidents {doc['incidents']}, audit chain ok {doc['audit_chain_ok']})")
    return json.dumps(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entities", type=int, default=1_000_000, help="eligible entities for the draw")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--loop-entities", type=int, default=10_000, help="entities for the simulated full loop")
    ap.add_argument("--launch-entities", type=int, default=10_000, help="entities drawn for the launch measurement")
    ap.add_argument("--repeat", type=int, default=3, help="in-memory repetitions (median reported)")
    ap.add_argument("--skip-db", action="store_true", help="in-memory numbers only")
    ap.add_argument("--only", choices=sorted(MEASUREMENTS), action="append", help="run only these measurements")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--single-process", action="store_true",
                    help="launch in one process (REGFLOW_PARALLEL_START_FROM=0): the number before the split")
    ap.add_argument("--profile", metavar="FILE",
                    help="write cProfile statistics of the timed launch to FILE (the time then includes the "
                         "profiler's overhead: read the shares, not the total)")
    a = ap.parse_args()
    results = {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    for name in a.only or list(MEASUREMENTS):
        results[name] = MEASUREMENTS[name](a)
        if not a.json:
            print(_human(name, results[name]), flush=True)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if a.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print(f"load average before {results['load_average_before']}, after {results['load_average_after']} "
              f"on {results['cpus']} CPUs")


if __name__ == "__main__":
    main()
