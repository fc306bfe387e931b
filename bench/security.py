"""regflow security benchmark: what the defences of issue 17 allow and what they cost.

1. sign-in: attempts one attacker gets at one account in 15 minutes, from one address and from a new address
   each time, driving the real throttle (``engine/runtime/signin.py``) with a frozen clock that the attacker
   advances by each ``Retry-After``; and what the attack leaves for the account's owner on a new browser;
2. the scripts' resource limits per engine step: regflow's engine in memory (``bench/data/minimal.bpmn``, one
   script and one condition per instance) and a script-heavy step, with the limits of the settings (defaults)
   and with them off (``REGFLOW_SCRIPT_MAX_ITEMS=0``, ``REGFLOW_SCRIPT_MAX_MEMORY_MB=0``), interleaved;
3. runaway expressions started through the API of a live server (waitress on loopback): the time until the
   instance is an incident, the growth of the server process's resident memory and ``/healthz`` meanwhile;
4. the fuzz run of ``tests/fuzz`` (a pytest subprocess writing its tallies to ``REGFLOW_FUZZ_REPORT``): cases
   run and failures per test, schemathesis' operations × cases and server errors.

    .venv/bin/python bench/security.py              # everything (about a minute on 2 vCPUs)
    .venv/bin/python bench/security.py --skip-fuzz  # 1–3 only
    .venv/bin/python bench/security.py --scale 4    # the fuzz run with 4× the CI examples

Timings are printed, never asserted; the machine is shared, so the load average is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
import requests  # noqa: E402
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import select  # noqa: E402
from waitress.server import create_server  # noqa: E402

import engine.service_tasks  # noqa: E402, F401  (the operators build_runtime registers)
from engine.bootstrap import build_runtime  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.db import dispose_engines, session_factory, transaction  # noqa: E402
from engine.runtime import clock, signin  # noqa: E402
from engine.runtime.deploy import deploy  # noqa: E402
from engine.runtime.models import Incident  # noqa: E402
from engine.runtime.script_engine import RegflowScriptEngine  # noqa: E402
from engine.runtime.script_watch import resident_bytes  # noqa: E402
from engine.runtime.serializer import RegflowWorkflow  # noqa: E402
from engine.runtime.services import registry  # noqa: E402
from engine.runtime.users import add_user, issue_token  # noqa: E402
from engine.schema import upgrade  # noqa: E402
from web import create_app  # noqa: E402

WINDOW = timedelta(minutes=15)
#: the two of the issue (C builtins), then a Python loop (the time budget) and a loop growing memory (the watch)
RUNAWAY = {"sum(range(10**9))": "total = sum(range(10**9))", '"x" * 2*10**9': 'blob = "x" * 2*10**9',
           "while True: pass": "while True:\n    pass",
           "loop appending 1 kB": "rows = []\nfor i in range(10**6):\n    rows.append('y' * 1000 + str(i))"}
HEAVY_SCRIPT = ("total = 0\nfor item in items:\n    total += item['amount'] * item['qty']\n"
                "labels = [f\"{i['sku']}:{i['qty'] * 2}\" for i in items]\n"
                "summary = '%d items, %s' % (len(items), total)")
HEAVY_DATA = {"items": [{"sku": f"s{i}", "amount": i, "qty": i % 7} for i in range(50)]}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def database(tmp: Path, name: str) -> str:
    url = f"sqlite:///{tmp / name}"
    upgrade(url)
    return url


# ---------------------------------------------------------------------------------------------- 1. sign-in
def attempts_in_window(url: str, limits: signin.Limits, addresses) -> dict:
    """Attempts at one account allowed in :data:`WINDOW` to an attacker who waits exactly each Retry-After,
    taking the address of each attempt from ``addresses``; then the wait a new browser of the owner meets."""
    factory, t0 = session_factory(url), datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    t, allowed, longest, owner = t0, 0, 0, 0
    while t < t0 + WINDOW:
        with clock.frozen(t), transaction(factory) as s:
            wait = signin.begin(s, limits, "officer", next(addresses)).wait
            # the owner trying from a browser and an address the attacker never used, at that moment
            owner = max(owner, signin.begin(s, limits, "officer", "192.0.2.250", charge=False).wait)
        allowed += not wait
        longest = max(longest, wait)
        t += timedelta(seconds=wait or 1)  # refused: wait as told; allowed: the next try a second later
    return {"allowed": allowed, "longest_wait_s": longest, "owner_new_browser_wait_s": owner}


def signin_figures(tmp: Path, settings) -> dict:
    limits = signin.Limits.from_settings(settings)
    out = {"free": limits.free, "max_delay_s": limits.max_delay_s}
    for key, addresses in (("one_address", iter(lambda: "198.51.100.7", None)),
                           ("many_addresses", (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
                                               for i in range(10 ** 7)))):
        url = database(tmp, f"signin-{key}.db")
        with transaction(session_factory(url)) as s:
            add_user(s, "officer", "a-long-bench-password", ["officer"], ["officers"])
        out[key] = attempts_in_window(url, limits, addresses)
    return out


# ------------------------------------------------------------------------------------- 2. limits per step
def limits_cost(settings, n: int, reps: int) -> dict:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(HERE / "data" / "minimal.bpmn"))
    spec, subs = parser.get_spec("bench_minimal"), parser.get_subprocess_specs("bench_minimal")
    modes = {"on": settings, "off": load_settings(database_url=settings.database_url, script_max_items=0,
                                                  script_max_memory_mb=0)}
    engines = {k: (lambda s=s: RegflowScriptEngine(registry, None, time_budget_s=s.script_time_budget_s,
                                                   runtime=SimpleNamespace(settings=s))) for k, s in modes.items()}

    def instance(make) -> None:
        wf = RegflowWorkflow(spec, subs, script_engine=make())
        wf.do_engine_steps()
        assert wf.get_tasks(state=TaskState.READY, manual=True)
        RegflowWorkflow.release(wf)

    def heavy(make) -> None:
        env = make().environment
        for _ in range(20):
            env.execute(HEAVY_SCRIPT, dict(HEAVY_DATA))

    timings = {(what, k): [] for what in ("instance", "heavy") for k in modes}
    for rep in range(reps + 1):  # the first repetition warms up
        for k, make in engines.items():
            for what, fn, count in (("instance", instance, n), ("heavy", heavy, max(1, n // 20))):
                t0 = time.perf_counter()
                for _ in range(count):
                    fn(make)
                if rep:
                    timings[(what, k)].append((time.perf_counter() - t0) / (count * (20 if what == "heavy" else 1)))
    us = {key: min(v) * 1e6 for key, v in timings.items()}  # the best repetition: the least disturbed
    return {what: {"off_us": us[(what, "off")], "on_us": us[(what, "on")],
                   "cost_us": us[(what, "on")] - us[(what, "off")]} for what in ("instance", "heavy")} | {
        "n": n, "reps": reps, "max_items": settings.script_max_items, "max_memory_mb": settings.script_max_memory_mb}


# ------------------------------------------------------------------------------------ 3. runaway on a server
def process_xml(pid: str, script: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_{pid}" targetNamespace="http://x">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="startableBy" value="officers"/></spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="run"/>
    <bpmn:scriptTask id="run"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script.replace('"', "&quot;")}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="run" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


def sample(stop: threading.Event, fn, out: list, every: float) -> threading.Thread:
    def loop():
        while not stop.is_set():
            out.append(fn())
            time.sleep(every)
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return th


def runaway(tmp: Path, settings) -> dict:
    url = database(tmp, "runaway.db")
    settings = load_settings(database_url=url, secret_key="bench-security", upload_dir=str(tmp / "uploads"))
    files = {f"runaway_{i}.bpmn": process_xml(f"runaway_{i}", s) for i, s in enumerate(RUNAWAY.values())}
    with transaction(session_factory(url)) as s:
        add_user(s, "officer", "a-long-bench-password", ["officer"], ["officers"])
        deploy(build_runtime(settings), s, files, "designer")
        headers = {"Authorization": "Bearer " + issue_token(s, "officer", "bench", actor="bench")}
    server = create_server(create_app(settings=settings), host="127.0.0.1", port=0, threads=4, ident="bench")
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    requests.get(base + "/healthz", timeout=5)
    rows = []
    for i, label in enumerate(RUNAWAY):
        stop, health, rss = threading.Event(), [], []
        base_rss = resident_bytes()

        def ping():
            t0 = time.perf_counter()
            try:
                ok = requests.get(base + "/healthz", timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            return (time.perf_counter() - t0) * 1000 if ok else float("inf")
        threads = [sample(stop, ping, health, 0.05), sample(stop, resident_bytes, rss, 0.01)]
        t0 = time.perf_counter()
        r = requests.post(base + "/api/v1/instances", json={"process_id": f"runaway_{i}"}, headers=headers,
                          timeout=120)
        elapsed = time.perf_counter() - t0
        stop.set()
        for th in threads:
            th.join()
        body = r.json()
        with transaction(session_factory(url)) as s:
            inc = s.scalars(select(Incident).where(Incident.instance_id == body.get("instance_id"))).first()
            incident = inc.message[:80] if inc else f"no incident (HTTP {r.status_code}, {body.get('status')})"
        rows.append({"expression": label, "seconds": elapsed, "status": r.status_code, "incident": incident,
                     "rss_growth_mb": (max(rss) - base_rss) / 2 ** 20, "healthz_n": len(health),
                     "healthz_p50_ms": statistics.median(health), "healthz_max_ms": max(health)})
    server.close()
    dispose_engines()
    return {"budget_s": settings.script_time_budget_s, "rows": rows}


# -------------------------------------------------------------------------------------------------- 4. fuzz
def fuzz(tmp: Path, scale: float) -> dict:
    report = tmp / "fuzz.json"
    env = {**os.environ, "REGFLOW_FUZZ_REPORT": str(report), "REGFLOW_FUZZ_SCALE": str(scale)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/fuzz", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    tests = json.loads(report.read_text(encoding="utf-8"))["tests"] if report.exists() else {}
    return {"wall_s": time.perf_counter() - t0, "exit": proc.returncode, "tests": tests,
            "summary": (proc.stdout.strip().splitlines() or ["(no output)"])[-1]}


# ------------------------------------------------------------------------------------------------- report
def print_report(res: dict) -> None:
    print(f"regflow security benchmark — {os.cpu_count()} CPUs shared, load average {res['load']}")
    si = res["signin"]
    print(f"\n1. Sign-in attempts at one account in 15 min (REGFLOW_SIGNIN_FREE_ATTEMPTS={si['free']}, "
          f"REGFLOW_SIGNIN_MAX_DELAY_S={si['max_delay_s']:g}), the attacker waiting out each Retry-After")
    for key, label in (("one_address", "from one address"), ("many_addresses", "from a new address each time")):
        r = si[key]
        print(f"   {label:<30} {r['allowed']:>4} allowed   longest Retry-After {r['longest_wait_s']:>4} s   "
              f"owner on a new browser waits ≤ {r['owner_new_browser_wait_s']} s")
    lim = res["limits"]
    print(f"\n2. Script resource limits per engine step: limits of the settings (items {lim['max_items']:,}, "
          f"memory {lim['max_memory_mb']:g} MB) vs off (0 / 0); best of {lim['reps']} interleaved repetitions")
    for key, label, steps in (("instance", "bench process instance (2 steps)", 2), ("heavy", "script-heavy step", 1)):
        r = lim[key]
        print(f"   {label:<34} off {r['off_us']:8.2f} µs   on {r['on_us']:8.2f} µs   cost per step "
              f"{r['cost_us'] / steps:+6.2f} µs ({100 * r['cost_us'] / r['off_us']:+.1f} %)")
    print("   (off lifts the bounds and the memory watch; the size checks still run, unbounded: their own cost, "
          "against code compiled without them, is section 6 of bench/engine.py)")
    ra = res["runaway"]
    print(f"\n3. Runaway expressions started by POST /api/v1/instances on a live server (waitress, 4 threads; "
          f"time budget {ra['budget_s']:g} s)")
    for r in ra["rows"]:
        print(f"   {r['expression']:<20} incident after {r['seconds']:6.3f} s   RSS +{r['rss_growth_mb']:6.1f} MB   "
              f"/healthz p50 {r['healthz_p50_ms']:5.1f} ms, max {r['healthz_max_ms']:6.1f} ms "
              f"({r['healthz_n']} polls)   {r['incident']}")
    fz = res.get("fuzz")
    if fz is None:
        return
    print(f"\n4. Fuzz run (pytest tests/fuzz, scale {res['scale']:g}): {fz['summary']}; wall {fz['wall_s']:.0f} s")
    cases = fails = 0
    for nodeid, t in fz["tests"].items():
        if "operations" in t:
            continue
        cases += t.get("cases", 0)
        fails += t.get("outcome") == "failed"
        if "cases" in t:
            print(f"   {nodeid.split('::')[1][:64]:<64} {t['cases']:>5} cases  {t.get('outcome', '?'):<7} "
                  f"{json.dumps(t['answers'])}")
    print(f"   fuzz cases run: {cases}; failures: {fails}")
    for t in fz["tests"].values():
        if "operations" in t:
            print(f"   schemathesis: {t['operations']} operations × {t['cases']} cases "
                  f"(positive and negative, {t['cases'] / t['operations']:.0f} per operation); "
                  f"server errors: {t['server_errors']}; other check failures: {t['check_failures']}; "
                  f"{t.get('outcome')}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="instances per repetition for the limits' cost")
    ap.add_argument("--reps", type=int, default=7, help="repetitions for the limits' cost")
    ap.add_argument("--skip-fuzz", action="store_true", help="do not run tests/fuzz")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the fuzz tests' examples")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args(argv)
    res = {"load": [round(x, 2) for x in os.getloadavg()], "scale": args.scale}
    with tempfile.TemporaryDirectory(prefix="regflow-bench-security-") as d:
        tmp = Path(d)
        settings = load_settings(database_url=f"sqlite:///{tmp / 'none.db'}")
        log("sign-in throttle…")
        res["signin"] = signin_figures(tmp, settings)
        log("resource limits per step…")
        res["limits"] = limits_cost(settings, args.n, args.reps)
        log("runaway expressions on a live server…")
        res["runaway"] = runaway(tmp, settings)
        if not args.skip_fuzz:
            log("fuzz run (pytest tests/fuzz)…")
            res["fuzz"] = fuzz(tmp, args.scale)
    res["load_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
