"""regflow engine benchmark: start → script → exclusive gateway → user task → end.

Measures, in one process on one machine (issue 2, "Must show"):

1. in-memory SpiffWorkflow instances/s from start to the first user task, with SpiffWorkflow's default
   ``PythonScriptEngine`` and with regflow's restricted ``RegflowScriptEngine``;
2. the same through ``Runtime.start`` with persistence on SQLite (file in a temp dir, WAL):
   one transaction per instance, and batched (``--batch`` instances per transaction);
3. the same on PostgreSQL (full hash-chained audit is always on);
4. ``Runtime.complete_task`` latency p50/p95, each completion in its own transaction, as a user of
   the task's candidate group, on SQLite and PostgreSQL;
5. state bytes per instance at the first user task and audit rows per instance;

and checks the goals of issue 2. ``--profile`` instead runs cProfile over the persisted start path.

    .venv/bin/python bench/engine.py                 # full run, human-readable
    .venv/bin/python bench/engine.py --json          # one JSON document on stdout
    .venv/bin/python bench/engine.py --skip-pg       # SQLite only
    .venv/bin/python bench/engine.py --profile       # cProfile of Runtime.start on SQLite and PostgreSQL
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is called engine.py: keep ``import engine`` pointing at the regflow package, not at us.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
from RestrictedPython import compile_restricted_eval, compile_restricted_exec  # noqa: E402
from RestrictedPython.transformer import RestrictingNodeTransformer  # noqa: E402
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import create_engine, event, func, select, text  # noqa: E402

import engine.service_tasks  # noqa: E402, F401  (the registry build_runtime uses)
from engine.bootstrap import build_runtime  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.db import dispose_engines, get_engine, session_factory, transaction  # noqa: E402
from engine.runtime import spiff_speedups  # noqa: E402
from engine.runtime.deploy import deploy  # noqa: E402
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance  # noqa: E402
from engine.runtime.script_builtins import sandbox  # noqa: E402
from engine.runtime.script_compile import (  # noqa: E402
    DEADLINE_GUARD,
    SCRIPT_FILENAME,
    RegflowPolicy,
    compile_source,
)
from engine.runtime.script_engine import RegflowScriptEngine  # noqa: E402
from engine.runtime.script_watch import make_watch, resident_bytes  # noqa: E402
from engine.runtime.serializer import RegflowWorkflow  # noqa: E402
from engine.runtime.services import registry  # noqa: E402
from engine.runtime.users import add_user  # noqa: E402
from engine.schema import upgrade  # noqa: E402

BPMN_FILE = HERE / "data" / "minimal.bpmn"
PROCESS_ID = "bench_minimal"
USER_TASK = "review"
GROUP = "reviewers"
REVIEWER = "bench_reviewer"
PG_BASE = os.environ.get("REGFLOW_BENCH_PG_URL",
                         os.environ.get("REGFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))

# Goals (issue 2).
SPIFF_ARENA_STARTS_PER_S = 18.7
GOAL_BATCHED_RATIO = 0.5
GOAL_PG_PER_S = 700.0
GOAL_SQLITE_P50_MS = 5.0
GOAL_VS_ARENA = 20.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------------------------------- in memory
def parse_plain():
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BPMN_FILE))
    return parser.get_spec(PROCESS_ID), parser.get_subprocess_specs(PROCESS_ID)


def in_memory(n: int, reps: int, make_engine, release: bool = False, regflow: bool = False) -> dict:
    """Instances/s from a new workflow to its first READY user task (found with get_tasks).

    Plain SpiffWorkflow 3.2.0 as shipped (``regflow`` false): a ``BpmnWorkflow``, with regflow's process-wide
    change to ``Task._set_state`` taken back for the measurement (``spiff_speedups.disabled``). With
    ``release``, each workflow's reference cycles are broken when it is done, as regflow's runtime does
    (``RegflowWorkflow.release``). With ``regflow``: regflow's engine without the database — a
    ``RegflowWorkflow`` (its cheaper tree walks), regflow's ``_set_state``, released."""
    spec, subs = parse_plain()
    cls = RegflowWorkflow if regflow else BpmnWorkflow
    release = release or regflow

    def one():
        wf = cls(spec, subs, script_engine=make_engine())
        wf.do_engine_steps()
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        return wf, ready

    def one_released():
        wf, ready = one()
        RegflowWorkflow.release(wf)  # (the method touches only BpmnWorkflow's own attributes)
        return None, ready

    with nullcontext() if regflow else spiff_speedups.disabled():
        return _in_memory_runs(n, reps, one, one_released if release else one)


def _in_memory_runs(n: int, reps: int, one, run) -> dict:
    wf, ready = one()
    assert [t.task_spec.bpmn_id for t in ready] == [USER_TASK], ready
    assert ready[0].data.get("score") == 14
    for _ in range(min(200, n)):  # warm-up
        run()
    rates, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            run()
        rates.append(rate(n, time.perf_counter() - t0))
        cpu.append(rate(n, time.process_time() - c0))
    return {"per_s": statistics.median(rates), "runs": [round(r, 1) for r in rates],
            "per_cpu_s": statistics.median(cpu), "n": n}


def spiff_state_bytes() -> dict:
    """For context: SpiffWorkflow's own serializer (spec embedded) at the first user task."""
    spec, subs = parse_plain()
    wf = BpmnWorkflow(spec, subs)
    wf.do_engine_steps()
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    return {"spiff_default_serializer_bytes": len(ser.serialize_json(wf))}


# ---------------------------------------------------------------------------------------- resource limits
#: a script-heavy step for comparison: a loop with arithmetic, string building and formatting
HEAVY_SCRIPT = ("total = 0\nfor item in items:\n    total += item['amount'] * item['qty']\n"
                "labels = [f\"{i['sku']}:{i['qty'] * 2}\" for i in items]\n"
                "summary = '%d items, %s' % (len(items), total)")
HEAVY_DATA = {"items": [{"sku": f"s{i}", "amount": i, "qty": i % 7} for i in range(50)]}


class _NoSizeChecks(RegflowPolicy):
    """regflow's compiler without the size checks of ``+ * ** << %`` and f-string format specs."""

    visit_BinOp = RestrictingNodeTransformer.visit_BinOp
    visit_FormattedValue = RestrictingNodeTransformer.visit_FormattedValue


def limits_cost(reps: int) -> dict:
    """µs the size checks and the memory watch add to the bench process's step (its script and its gateway's
    condition) and to a script-heavy step, measured as the difference between the same code compiled with and
    without the checks, run the same way (each the best of ``reps`` interleaved repetitions)."""
    spec, _subs = parse_plain()
    script = spec.task_specs["prepare"].script
    conditions = [c.args[0] for c, _ in spec.task_specs["route"].cond_task_specs if c is not None]
    env = RegflowScriptEngine(registry, None, time_budget_s=2).environment
    box = sandbox(env.limits)

    def compiled(source: str, mode: str, checked: bool):
        if checked:
            return compile_source(source, mode).code
        fn = compile_restricted_exec if mode == "exec" else compile_restricted_eval
        return fn(source, SCRIPT_FILENAME, policy=_NoSizeChecks).code

    def runner(code, data: dict, source: str, mode: str):
        # as the environment runs it: the watch for code that loops, its tracer for calls it cannot follow
        watched = compile_source(source, mode).loops or DEADLINE_GUARD in code.co_names
        traced = env.needs_tracer(source, mode)

        def run():
            g = dict(data)
            g.update(env.globals)
            g["__builtins__"] = box.builtins
            if not watched and not traced:
                return exec(code, g)  # noqa: S102  (the sandbox's compiled code, as the environment runs it)
            prev = sys.gettrace()
            check, tracer = make_watch(2.0, source, env.limits.memory_bytes, prev, box.quiet)
            g[DEADLINE_GUARD] = check
            if not traced:
                return exec(code, g)  # noqa: S102
            sys.settrace(tracer)
            try:
                exec(code, g)  # noqa: S102
            finally:
                sys.settrace(prev)
        return run

    def cost(sources: list[tuple[str, str, dict]], number: int) -> dict:
        runs = {True: [], False: []}
        pairs = [(checked, [runner(compiled(src, mode, checked), data, src, mode) for src, mode, data in sources])
                 for checked in (False, True)]
        for _ in range(reps):
            for checked, fns in pairs:
                t0 = time.perf_counter()
                for _ in range(number):
                    for fn in fns:
                        fn()
                runs[checked].append((time.perf_counter() - t0) / number * 1e6)
        plain, checked = min(runs[False]), min(runs[True])
        return {"without_us": round(plain, 3), "with_us": round(checked, 3), "cost_us": round(checked - plain, 3),
                "cost_pct": round(100 * (checked - plain) / plain, 1)}

    step = [(script, "exec", {})] + [(c, "eval", {"score": 14}) for c in conditions]
    res = {"bench_step": cost(step, 20000), "heavy_step": cost([(HEAVY_SCRIPT, "exec", HEAVY_DATA)], 500),
           "script": script, "conditions": conditions}
    t0 = time.perf_counter()
    for _ in range(1000):
        resident_bytes()
    res["memory_sample_us"] = round((time.perf_counter() - t0) / 1000 * 1e6, 2)
    return res


# ---------------------------------------------------------------------------------------- persisted
class Database:
    """A migrated, empty database with the bench process deployed and one reviewer."""

    def __init__(self, kind: str, url: str, cleanup):
        self.kind, self.url, self._cleanup = kind, url, cleanup

    @property
    def factory(self):
        return session_factory(self.url)

    def tx(self):
        return transaction(self.factory)

    def close(self):
        dispose_engines()
        self._cleanup()


def sqlite_database(tmp: Path) -> Database:
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    return Database("sqlite", url, lambda: None)


def pg_check() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        eng = create_engine(PG_BASE, connect_args={"connect_timeout": 5})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {PG_BASE} unreachable: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def pg_database() -> Database:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_BASE else "?"
    url = f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"

    def drop():
        with admin.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    try:
        upgrade(url)
    except Exception:
        drop()
        raise
    return Database("postgresql", url, drop)


def deploy_bench(runtime, db: Database) -> str:
    """Deploy bench/data/minimal.bpmn with regflow's deploy(); returns how it was deployed."""
    with db.tx() as s:
        deploy(runtime, s, {BPMN_FILE.name: BPMN_FILE.read_text(encoding="utf-8")}, "bench")
    return "engine.runtime.deploy.deploy"


def prepare(db: Database):
    runtime = build_runtime(load_settings(database_url=db.url))
    how = deploy_bench(runtime, db)
    with db.tx() as s:
        add_user(s, REVIEWER, "bench-pass-123", "officer", GROUP)
    return runtime, how


def persisted_starts(runtime, db: Database, n: int, reps: int, batch: int, warmup: int) -> dict:
    """Runtime.start to the first user task: one tx per instance, and ``batch`` per tx (Runtime.start_many)."""
    def per_tx(count):
        for _ in range(count):
            with db.tx() as s:
                runtime.start(s, PROCESS_ID, actor="bench")

    def batched(count):
        done = 0
        while done < count:
            k = min(batch, count - done)
            with db.tx() as s:
                runtime.start_many(s, PROCESS_ID, [{}] * k, actor="bench")
            done += k

    per_tx(warmup)
    batched(warmup)
    # interleave the modes so that drifting load from other processes hits both alike
    runs: dict[str, list[tuple[float, float]]] = {"one_tx_per_instance": [], "batched": []}
    for _ in range(reps):
        for name, fn in (("one_tx_per_instance", per_tx), ("batched", batched)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(n)
            runs[name].append((rate(n, time.perf_counter() - t0), rate(n, time.process_time() - c0)))
    out = {}
    for name, r in runs.items():
        out[name] = {"per_s": statistics.median(x[0] for x in r), "runs": [round(x[0], 1) for x in r],
                     "per_cpu_s": statistics.median(x[1] for x in r), "n": n}
    out["batched"]["batch"] = batch
    return out


def footprint(db: Database) -> dict:
    """State bytes and audit rows per instance at the first user task (instances still running)."""
    with db.tx() as s:
        running = s.execute(select(func.count(), func.avg(func.length(ProcessInstance.state)),
                                   func.min(func.length(ProcessInstance.state)),
                                   func.max(func.length(ProcessInstance.state)))
                            .where(ProcessInstance.status == "running")).one()
        count, avg_len, min_len, max_len = running
        sample = s.scalars(select(ProcessInstance.id).where(ProcessInstance.status == "running")
                           .order_by(ProcessInstance.id).limit(200)).all()
        rows = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id.in_(sample)))
        kinds = s.execute(select(AuditEvent.kind, func.count()).where(AuditEvent.instance_id == sample[0])
                          .group_by(AuditEvent.kind)).all()
        open_tasks = s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.status == "open"))
        one = s.get(ProcessInstance, sample[0])
        state_bytes = len(one.state.encode("utf-8"))
    return {"instances_at_user_task": count, "open_human_tasks": open_tasks,
            "state_chars_avg": round(float(avg_len), 1), "state_chars_min": min_len, "state_chars_max": max_len,
            "state_bytes_utf8_sample": state_bytes,
            "audit_rows_per_instance": round(rows / len(sample), 2),
            "audit_kinds_per_instance": {k: c for k, c in sorted(kinds)}}


def completions(runtime, db: Database, m: int, warmup: int) -> dict:
    """Runtime.complete_task, each in its own transaction, as a member of the candidate group."""
    with db.tx() as s:
        ids = s.scalars(select(HumanTask.id).where(HumanTask.status == "open", HumanTask.bpmn_id == USER_TASK)
                        .order_by(HumanTask.id).limit(m + warmup)).all()
    if len(ids) < m + warmup:
        raise RuntimeError(f"only {len(ids)} open tasks for {m + warmup} completions")
    lat = []
    last_instance = None
    for i, tid in enumerate(ids):
        t0 = time.perf_counter()
        with db.tx() as s:
            out = runtime.complete_task(s, tid, REVIEWER, {"ok": True})
            status, last_instance = out.instance.status, out.instance.id
        dt = time.perf_counter() - t0
        assert status == "completed", status
        if i >= warmup:
            lat.append(dt * 1000.0)
    with db.tx() as s:
        rows_full = s.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.instance_id == last_instance))
    return {"n": len(lat), "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
            "mean_ms": statistics.fmean(lat), "max_ms": max(lat),
            "audit_rows_per_completed_instance": rows_full}


def statements(runtime, db: Database, k: int = 20) -> dict:
    """SQL statements (incl. BEGIN/COMMIT) per start and per completion, counted on the driver cursor."""
    eng = get_engine(db.url)
    count = [0]

    def on_exec(*_a):
        count[0] += 1

    def on_tx(*_a):
        count[0] += 1

    with db.tx() as s:
        ids = s.scalars(select(HumanTask.id).where(HumanTask.status == "open").order_by(HumanTask.id.desc())
                        .limit(k)).all()
    event.listen(eng, "before_cursor_execute", on_exec)
    event.listen(eng, "commit", on_tx)
    if db.kind != "sqlite":  # SQLite's BEGIN IMMEDIATE is already a cursor execute
        event.listen(eng, "begin", on_tx)
    try:
        for _ in range(k):
            with db.tx() as s:
                runtime.start(s, PROCESS_ID, actor="bench")
        per_start = count[0] / k
        count[0] = 0
        for tid in ids:
            with db.tx() as s:
                runtime.complete_task(s, tid, REVIEWER, {"ok": True})
        per_complete = count[0] / len(ids)
    finally:
        event.remove(eng, "before_cursor_execute", on_exec)
        event.remove(eng, "commit", on_tx)
        if db.kind != "sqlite":
            event.remove(eng, "begin", on_tx)
    return {"per_start": per_start, "per_complete": per_complete,
            "note": "statements incl. BEGIN/COMMIT, one tx each"}


def _parallel_worker(url: str, n: int, batch: int, barrier, results) -> None:
    """One of K processes starting instances concurrently (PostgreSQL only: SQLite has one writer)."""
    runtime = build_runtime()
    factory = session_factory(url)
    with transaction(factory) as s:  # warm the spec cache
        runtime.start(s, PROCESS_ID, actor="bench")
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        with transaction(factory) as s:
            if k == 1:
                runtime.start(s, PROCESS_ID, actor="bench")
            else:
                runtime.start_many(s, PROCESS_ID, [{}] * k, actor="bench")
        done += k
    results.put(time.perf_counter() - t0)


def parallel_starts(db: Database, workers: int, n: int, batch: int) -> dict:
    """Aggregate starts/s of ``workers`` processes on one database (Camunda's 698/s used 4 threads)."""
    ctx = mp.get_context("spawn")
    out = {}
    for mode, size in (("one_tx_per_instance", 1), ("batched", batch)):
        barrier, results = ctx.Barrier(workers + 1), ctx.Queue()
        per = n // workers
        procs = [ctx.Process(target=_parallel_worker, args=(db.url, per, size, barrier, results))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        barrier.wait(timeout=300)
        t0 = time.perf_counter()
        times = [results.get(timeout=600) for _ in procs]
        wall = time.perf_counter() - t0
        for p in procs:
            p.join(30)
        out[mode] = {"per_s": rate(per * workers, wall), "workers": workers, "n": per * workers,
                     "slowest_worker_s": round(max(times), 2)}
    out["batched"]["batch"] = batch
    return out


def run_backend(db: Database, args) -> dict:
    runtime, how = prepare(db)
    log(f"[{db.kind}] deployed via {how}; timing starts ({args.reps} x {args.n} per mode)…")
    starts = persisted_starts(runtime, db, args.n, args.reps, args.batch, args.warmup)
    if db.kind == "postgresql" and args.workers > 1:
        log(f"[{db.kind}] {args.workers} processes starting concurrently…")
        starts["parallel"] = parallel_starts(db, args.workers, args.n, args.batch)
    fp = footprint(db)
    log(f"[{db.kind}] timing {args.completions} completions…")
    comp = completions(runtime, db, args.completions, min(50, args.warmup))
    return {"deploy": how, "starts": starts, "footprint": fp, "complete_task": comp,
            "sql_statements": statements(runtime, db)}


# ---------------------------------------------------------------------------------------- profile
def profile(args) -> None:
    """cProfile of Runtime.start (one tx per instance, then batched) on SQLite and PostgreSQL."""
    backends = [("sqlite", None)]
    if not args.skip_pg:
        why = pg_check()
        if why:
            print(f"PostgreSQL profile skipped: {why}")
        else:
            backends.append(("postgresql", None))
    with tempfile.TemporaryDirectory(prefix="regflow-bench-") as tmp:
        for kind, _ in backends:
            db = sqlite_database(Path(tmp)) if kind == "sqlite" else pg_database()
            try:
                runtime, _how = prepare(db)
                for mode in ("per_tx", "batched"):
                    def work(count):
                        if mode == "per_tx":
                            for _ in range(count):
                                with db.tx() as s:
                                    runtime.start(s, PROCESS_ID, actor="bench")
                        else:
                            for i in range(0, count, args.batch):
                                with db.tx() as s:  # as the timed batched mode: one start_many per batch
                                    runtime.start_many(s, PROCESS_ID, [{}] * min(args.batch, count - i),
                                                       actor="bench")
                    work(args.warmup)
                    prof = cProfile.Profile()
                    t0 = time.perf_counter()
                    prof.enable()
                    work(args.profile_n)
                    prof.disable()
                    wall = time.perf_counter() - t0
                    buf = io.StringIO()
                    st = pstats.Stats(prof, stream=buf)
                    by_package = _by_package(st)
                    total = sum(by_package.values()) or 1.0
                    st.strip_dirs()
                    print(f"\n===== profile {kind} {mode}: {args.profile_n} starts, {wall:.2f} s under cProfile "
                          f"({rate(args.profile_n, wall):.0f}/s profiled) =====")
                    print("own time by package (cProfile tottime):")
                    for name, secs in sorted(by_package.items(), key=lambda kv: -kv[1])[:10]:
                        print(f"   {name:<26} {100 * secs / total:5.1f}%   "
                              f"{1000 * secs / args.profile_n:6.2f} ms/start")
                    st.sort_stats("tottime").print_stats(args.profile_top)
                    st.sort_stats("cumulative").print_stats(args.profile_top)
                    print(buf.getvalue())
            finally:
                db.close()


def _by_package(st: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = {}
    for (path, _line, function), (_cc, _nc, tottime, _ct, _callers) in st.stats.items():
        if path == "~":
            name = "sqlite3 (C)" if "sqlite3" in function else "builtins / C"
        else:
            name = next((k for k in ("sqlalchemy", "SpiffWorkflow", "psycopg", "RestrictedPython", "engine/runtime",
                                     "json", "uuid", "hashlib") if k in path), "other")
        out[name] = out.get(name, 0.0) + tottime
    return out


# ---------------------------------------------------------------------------------------- main
def goals(res: dict) -> list[dict]:
    mem = res["in_memory"]["default_engine"]["per_s"]
    out = []
    sq = res["sqlite"]
    pg = res.get("postgresql")

    def add(name, value, target, ok, note=""):
        out.append({"goal": name, "value": value, "target": target, "met": ok, "note": note})

    for label, r in (("SQLite", sq), ("PostgreSQL", pg)):
        if r is None:
            continue
        b = r["starts"]["batched"]["per_s"]
        rel = res["in_memory"].get("default_engine_released", {}).get("per_s")
        reg = res["in_memory"].get("regflow_engine_in_memory", {}).get("per_s")
        add(f"{label} batched / in-memory SpiffWorkflow (default engine)", round(b / mem, 3), GOAL_BATCHED_RATIO,
            b / mem >= GOAL_BATCHED_RATIO, f"{b:.0f}/s vs {mem:.0f}/s" + (
                f"; {b / rel:.3f} vs the baseline with its cycles broken too ({rel:.0f}/s)" if rel else "") + (
                f"; {b / reg:.3f} vs regflow's own engine in memory ({reg:.0f}/s)" if reg else ""))
    if pg is None:
        add("PostgreSQL instances/s to first wait state (full audit)", None, GOAL_PG_PER_S, None,
            "not measured: " + res.get("pg_skipped", "skipped"))
    else:
        one = pg["starts"]["one_tx_per_instance"]["per_s"]
        bat = pg["starts"]["batched"]["per_s"]
        add("PostgreSQL instances/s to first wait state, one tx per instance (full audit)", round(one, 1),
            GOAL_PG_PER_S, one >= GOAL_PG_PER_S)
        add("PostgreSQL instances/s to first wait state, batched (full audit)", round(bat, 1),
            GOAL_PG_PER_S, bat >= GOAL_PG_PER_S)
        par = pg["starts"].get("parallel")
        if par:
            for mode in ("one_tx_per_instance", "batched"):
                v = par[mode]["per_s"]
                add(f"PostgreSQL instances/s to first wait state, {mode.replace('_', ' ')}, "
                    f"{par[mode]['workers']} processes (full audit)", round(v, 1), GOAL_PG_PER_S, v >= GOAL_PG_PER_S)
    p50 = sq["complete_task"]["p50_ms"]
    add("SQLite complete_task p50 (ms)", round(p50, 2), GOAL_SQLITE_P50_MS, p50 <= GOAL_SQLITE_P50_MS)
    target = GOAL_VS_ARENA * SPIFF_ARENA_STARTS_PER_S
    for label, r in (("SQLite", sq), ("PostgreSQL", pg)):
        if r is None:
            continue
        one = r["starts"]["one_tx_per_instance"]["per_s"]
        add(f"{label} one tx per instance vs spiff-arena 18.7/s (×)", round(one / SPIFF_ARENA_STARTS_PER_S, 1),
            GOAL_VS_ARENA, one >= target, f"{one:.0f}/s vs ≥ {target:.0f}/s")
    return out


def environment() -> dict:
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "spiffworkflow": version("spiffworkflow"), "sqlalchemy": version("sqlalchemy"),
           "psycopg": version("psycopg")}
    try:
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="instances per timed repetition (default 2000)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per persisted mode; median reported")
    ap.add_argument("--mem-reps", type=int, default=5, help="timed repetitions in memory; median reported")
    ap.add_argument("--batch", type=int, default=100, help="instances per transaction in batched mode")
    ap.add_argument("--completions", type=int, default=500, help="task completions timed per backend")
    ap.add_argument("--warmup", type=int, default=200, help="untimed warm-up instances per mode")
    ap.add_argument("--workers", type=int, default=4,
                    help="processes starting instances concurrently on PostgreSQL (default 4; 1 skips it)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    ap.add_argument("--skip-pg", action="store_true", help="SQLite only")
    ap.add_argument("--profile", action="store_true", help="cProfile the persisted start path instead")
    ap.add_argument("--profile-n", type=int, default=1000)
    ap.add_argument("--profile-top", type=int, default=30)
    args = ap.parse_args(argv)
    if args.profile:
        profile(args)
        return 0


    logging.getLogger("engine").setLevel(logging.ERROR)

    res: dict = {"process": f"{BPMN_FILE.relative_to(ROOT)} ({PROCESS_ID}): start → script → exclusive gateway "
                            "→ user task → end", "environment": environment(),
                 "params": {k: getattr(args, k) for k in ("n", "reps", "mem_reps", "batch", "completions", "warmup")}}
    t_all = time.perf_counter()
    engines = {"default_engine": (PythonScriptEngine, False),
               "regflow_restricted_engine": (lambda: RegflowScriptEngine(registry, None, time_budget_s=2), False),
               "default_engine_released": (PythonScriptEngine, True),
               "regflow_engine_in_memory": (PythonScriptEngine, True, True)}
    # measured before and after the persisted runs (the machine is shared): medians over both
    log("in-memory SpiffWorkflow…")
    mem_before = {k: in_memory(args.n, args.mem_reps, *f) for k, f in engines.items()}
    with tempfile.TemporaryDirectory(prefix="regflow-bench-") as tmp:
        db = sqlite_database(Path(tmp))
        try:
            res["sqlite"] = run_backend(db, args)
        finally:
            db.close()
    res["sqlite"]["url"] = "sqlite:///<tempdir>/bench.db (WAL, synchronous=NORMAL)"

    if args.skip_pg:
        res["pg_skipped"] = "--skip-pg given"
    else:
        why = pg_check()
        if why:
            res["pg_skipped"] = why
        else:
            db = pg_database()
            try:
                res["postgresql"] = run_backend(db, args)
            finally:
                db.close()
            res["postgresql"]["url"] = PG_BASE + " (own schema, dropped afterwards)"
    log("in-memory SpiffWorkflow again…")
    res["in_memory"] = {}
    for k, f in engines.items():
        after = in_memory(args.n, args.mem_reps, *f)
        runs = mem_before[k]["runs"] + after["runs"]
        res["in_memory"][k] = {"per_s": statistics.median(runs), "runs_before": mem_before[k]["runs"],
                               "runs_after": after["runs"], "n": args.n,
                               "per_cpu_s": statistics.median([mem_before[k]["per_cpu_s"], after["per_cpu_s"]])}
    res["in_memory"].update(spiff_state_bytes())
    log("cost of the scripts' resource limits…")
    res["limits"] = limits_cost(args.mem_reps * 2)
    try:
        res["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    res["goals"] = goals(res)
    res["wall_s"] = round(time.perf_counter() - t_all, 1)

    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False))
    else:
        print_report(res)
    return 0


def print_report(res: dict) -> None:
    env = res["environment"]
    p = res["params"]
    print(f"regflow engine benchmark — {res['process']}")
    print(f"python {env['python']}, SpiffWorkflow {env['spiffworkflow']}, SQLAlchemy {env['sqlalchemy']}, "
          f"psycopg {env['psycopg']}; {env['cpus']} CPUs shared with other work: load average "
          f"{env.get('loadavg_at_start')} at start, {env.get('loadavg_at_end')} at end")
    print(f"n={p['n']} instances per repetition; medians of {2 * p['mem_reps']} (in memory, half before and half "
          f"after the persisted runs) / {p['reps']} (persisted, modes interleaved) repetitions; warm-up "
          f"{p['warmup']}; batch {p['batch']}; {p['completions']} completions per backend")
    print("inst/s = wall clock (time.perf_counter); cpu/s = per CPU-second of this process (excludes the "
          "PostgreSQL server), shown because the machine is shared")
    print()
    mem = res["in_memory"]
    base = mem["default_engine"]["per_s"]
    print("1. In memory: new BpmnWorkflow → do_engine_steps → first READY user task")
    print(f"   {'script engine':<44} {'inst/s':>8} {'cpu/s':>8}  runs (before | after)")
    for key, label in (("default_engine", "SpiffWorkflow PythonScriptEngine"),
                       ("regflow_restricted_engine", "regflow RegflowScriptEngine (restricted)"),
                       ("default_engine_released", "PythonScriptEngine, cycles broken (†)"),
                       ("regflow_engine_in_memory", "regflow's engine, no database (‡)")):
        r = mem[key]
        print(f"   {label:<44} {r['per_s']:>8.0f} {r['per_cpu_s']:>8.0f}  {r['runs_before']} | {r['runs_after']}")
    print()
    print("2./3. Persisted through Runtime.start (state + human_task + candidates + hash-chained audit), "
          "to the first user task")
    print(f"   {'backend':<11} {'mode':<22} {'inst/s':>8} {'cpu/s':>8} {'÷ in-mem':>9}  runs")
    for kind in ("sqlite", "postgresql"):
        r = res.get(kind)
        if r is None:
            print(f"   {kind:<11} skipped: {res.get('pg_skipped')}")
            continue
        for mode, label in (("one_tx_per_instance", "one tx per instance"),
                            ("batched", f"batched, {r['starts']['batched']['batch']} per tx")):
            m = r["starts"][mode]
            print(f"   {kind:<11} {label:<22} {m['per_s']:>8.0f} {m['per_cpu_s']:>8.0f} {m['per_s'] / base:>9.3f}  "
                  f"{m['runs']}")
    par = (res.get("postgresql") or {}).get("starts", {}).get("parallel")
    if par:
        for mode, label in (("one_tx_per_instance", "one tx per instance"),
                            ("batched", f"batched, {par['batched']['batch']} per tx")):
            m = par[mode]
            print(f"   {'postgresql':<11} {label + ', ' + str(m['workers']) + ' procs':<22} {m['per_s']:>8.0f} "
                  f"{'':>8} {m['per_s'] / base:>9.3f}  (aggregate over {m['n']} starts)")
    print(f"   (÷ in-mem = persisted inst/s ÷ in-memory SpiffWorkflow with its default engine, {base:.0f}/s)")
    print("   († regflow breaks each finished step's workflow reference cycles (RegflowWorkflow.release) so that "
          "reference counting frees it; the † row does the same to plain SpiffWorkflow, for comparison)")
    reg = mem.get("regflow_engine_in_memory", {}).get("per_s")
    if reg:
        print(f"   (‡ RegflowWorkflow in memory: released, its cheaper tree walks and state-change logging "
              f"(engine/runtime/spiff_speedups.py), {reg:.0f}/s; the rows above are SpiffWorkflow 3.2.0 as shipped. "
              f"Persisted ÷ ‡: " + ", ".join(
                  f"{k} batched {res[k]['starts']['batched']['per_s'] / reg:.3f}" for k in ("sqlite", "postgresql")
                  if res.get(k)) + ")")
    print()
    print("4. complete_task latency (each in its own transaction, as a member of the candidate group)")
    for kind in ("sqlite", "postgresql"):
        r = res.get(kind)
        if r is None:
            print(f"   {kind:<11} skipped")
            continue
        c = r["complete_task"]
        print(f"   {kind:<11} p50 {c['p50_ms']:6.2f} ms   p95 {c['p95_ms']:6.2f} ms   mean {c['mean_ms']:6.2f} ms   "
              f"max {c['max_ms']:7.2f} ms   (n={c['n']})")
    print()
    print("5. Footprint")
    print(f"   SpiffWorkflow's own serializer at the user task (spec embedded): "
          f"{mem['spiff_default_serializer_bytes']} bytes")
    for kind in ("sqlite", "postgresql"):
        r = res.get(kind)
        if r is None:
            continue
        f, q = r["footprint"], r["sql_statements"]
        print(f"   {kind:<11} process_instance.state at the user task: {f['state_bytes_utf8_sample']} bytes "
              f"(avg {f['state_chars_avg']:.0f} chars over {f['instances_at_user_task']} instances)")
        print(f"   {'':<11} audit rows per instance: {f['audit_rows_per_instance']:g} at the user task "
              f"{f['audit_kinds_per_instance']}, {r['complete_task']['audit_rows_per_completed_instance']} "
              f"once completed")
        print(f"   {'':<11} SQL statements: {q['per_start']:g} per start, {q['per_complete']:g} per completion "
              f"({q['note']})")
    print()
    lim = res["limits"]
    print("6. Scripts' resource limits (size checks of + * ** << % and format specs, memory watch): µs per step, "
          "best of interleaved runs, same code compiled without the checks vs with them")
    for key, label in (("bench_step", f"this process's step ({len(lim['conditions'])} condition + script)"),
                       ("heavy_step", "script-heavy step (50-item loop, f-strings, %)")):
        r = lim[key]
        print(f"   {label:<48} {r['without_us']:8.2f} → {r['with_us']:8.2f} µs   cost {r['cost_us']:+.2f} µs "
              f"({r['cost_pct']:+.1f} %)")
    print(f"   one memory sample (taken only while a script loops, at most every 10 ms): {lim['memory_sample_us']} µs")
    print()
    print("Goals (issue 2)")
    for g in res["goals"]:
        verdict = "n/a" if g["met"] is None else ("MET" if g["met"] else "NOT MET")
        value = "—" if g["value"] is None else g["value"]
        note = f"  ({g['note']})" if g["note"] else ""
        print(f"   [{verdict:^7}] {g['goal']}: {value} (target {'≤' if 'p50' in g['goal'] else '≥'} "
              f"{g['target']}){note}")
    print(f"\nwall time {res['wall_s']} s; process deployed via {res['sqlite']['deploy']}")


if __name__ == "__main__":
    sys.exit(main())
