"""regflow web benchmark: the officers' inbox over HTTP with a million open tasks, and an instance's
history page (issue: web workbench, "Must show").

Seeds a database (SQLite file, and a PostgreSQL schema of its own) with bulk inserts:

* the bench process (``bench/data/minimal.bpmn``) deployed with regflow's ``deploy``;
* ``--entities`` market entities (the inbox shows their names; the entity search finds them through the
  bigram index of their names, which the schema's triggers (SQLite) or GIN index (PostgreSQL) fill as
  they are loaded);
* ``--campaigns`` campaign instances and one process instance per ``--tasks-per-instance`` tasks, each
  with a valid two-event hash chain (``--audit-per-instance``), so the audit table is not empty;
* ``--tasks`` open human tasks in ``GROUPS`` candidate groups (a skewed mix: the largest group holds
  about a fifth of the tasks; a fifth of the tasks have two groups), 30 % claimed by one of
  ``OFFICERS`` officers, due dates spread over ±60 days (10 % without one), and the candidate rows
  (group, claimed, due key) consistent with each task; the database's triggers give each candidate row
  its entity's district as it is loaded, as they do for the runtime's rows;
* one instance started through ``Runtime.start`` and brought to ``--history-events`` audit events
  with ``engine.runtime.audit.build_rows`` (``verify`` is checked);
* signed-in users created with ``engine.runtime.users.add_user``: ``bench_officer`` (officer in the
  three largest groups), ``bench_district`` (the same, with a two-district jurisdiction) and
  ``bench_auditor`` (auditor, supervisor).

Then serves ``web.create_app`` with waitress in a thread on a free port, signs in through the login
form (a real HTTP session), warms up, and times ``--requests`` sequential GETs per case (and, with
``--clients``, the default inbox view from concurrent clients), printing p50/p95/max per case and
backend. The goal is p95 ≤ 50 ms for the inbox. ``--explain`` prints the query plans of the inbox
service's statements instead of timing.

    .venv/bin/python bench/web.py                         # 1,000,000 tasks on SQLite and PostgreSQL
    .venv/bin/python bench/web.py --skip-pg --json        # SQLite only, one JSON document
    .venv/bin/python bench/web.py --reuse var/bench-web.db --reuse-pg bench_web   # keep the seeded data

``--reuse PATH`` keeps the SQLite file (seeded on the first run, reused while the sizes match) and
``--reuse-pg SCHEMA`` keeps the PostgreSQL schema; without them both are temporary and dropped. Reused
data seeded by an older schema is first upgraded to the head revision (timed and printed).
The machine is shared: the load average is printed with the numbers; run-to-run noise is ±30 % or more.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is called web.py: keep ``import web`` pointing at the regflow package, not at us.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, event, func, inspect, select, text  # noqa: E402
from waitress.server import create_server  # noqa: E402

from engine.bootstrap import build_runtime  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.db import dispose_engines, get_engine, session_factory, transaction  # noqa: E402
from engine.runtime import audit  # noqa: E402
from engine.runtime.deploy import deploy  # noqa: E402
from engine.runtime.models import NO_DUE, ProcessDefinition, ProcessInstance  # noqa: E402
from engine.runtime.users import add_user, set_jurisdiction  # noqa: E402
from engine.schema import heads, upgrade  # noqa: E402
from engine.supervision.inbox import TaskQuery, Viewer, list_tasks  # noqa: E402
from web import create_app  # noqa: E402

BPMN_FILE = HERE / "data" / "minimal.bpmn"
PROCESS_ID = "bench_minimal"
PG_BASE = os.environ.get("REGFLOW_BENCH_PG_URL",
                         os.environ.get("REGFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
PASSWORD = "bench-web-pass"
GOAL_P95_MS = 50.0
SEED = 20260301
#: the reference "now" of the seeded data: due dates are spread around it
NOW = datetime.now(timezone.utc).replace(microsecond=0)

GROUPS = [f"group_{i:02d}" for i in range(1, 21)]
OFFICERS = 3000
OFFICER = "bench_officer"
DISTRICT_OFFICER = "bench_district"
AUDITOR = "bench_auditor"
OFFICER_GROUPS = GROUPS[:3]
DISTRICTS = ["410102", "410103", "410104", "410105", "410106", "410108", "410122", "410181", "410182",
             "410183", "410184", "410185"]
JURISDICTION = DISTRICTS[:2]
TASK_NAMES = ["现场检查", "检查结果录入", "整改复查", "案件审核", "结果公示", "风险核查"]
_W1 = list("恒通信达华宏盛兴永安长天鑫隆昌泰金源广汇德丰瑞祥新宇中联博远佳和富嘉美辰星创")
_W2 = list("科贸建商电食药医器材农机网汽能物服务饮酒茶纺印包装化工钢铁木艺")
_KINDS = ["商贸", "科技", "食品", "药房", "餐饮", "建材", "电子", "物流"]
_DISTRICT_NAMES = ["中原", "二七", "管城", "金水", "上街", "惠济", "中牟", "巩义", "荥阳", "新密", "新郑", "登封"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ------------------------------------------------------------------------------------------- targets
class Target:
    """A database to seed and serve: a SQLite file or a PostgreSQL schema (kept only when reused)."""

    def __init__(self, kind: str, url: str, cleanup, label: str):
        self.kind, self.url, self._cleanup, self.label = kind, url, cleanup, label

    def close(self) -> None:
        dispose_engines()
        self._cleanup()


def sqlite_target(path: Path | None, tmp: Path) -> Target:
    if path is None:
        return Target("sqlite", f"sqlite:///{tmp / 'bench-web.db'}", lambda: None, "sqlite:///<tempdir>/bench-web.db")
    path = path.resolve()
    return Target("sqlite", f"sqlite:///{path}", lambda: None, f"sqlite:///{path} (kept)")


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


def pg_target(schema: str | None) -> Target:
    keep = schema is not None
    schema = schema or f"bench_web_{uuid.uuid4().hex[:10]}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,50}", schema):
        raise SystemExit(f"--reuse-pg: {schema!r} is not a plain lower-case schema name")
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    sep = "&" if "?" in PG_BASE else "?"
    url = f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"

    def drop():
        if not keep:
            with admin.connect() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return Target("postgresql", url, drop, f"{PG_BASE} schema {schema} ({'kept' if keep else 'dropped afterwards'})")


# -------------------------------------------------------------------------------------------- seeding
def _sizes(args) -> dict:
    return {"tasks": args.tasks, "entities": args.entities, "tasks_per_instance": args.tasks_per_instance,
            "campaigns": args.campaigns, "audit_per_instance": args.audit_per_instance,
            "history_events": args.history_events, "seed": SEED}


def _read_meta(url: str) -> dict | None:
    eng = get_engine(url)
    if "bench_web_meta" not in inspect(eng).get_table_names():
        return None
    with eng.connect() as c:
        doc = c.execute(text("SELECT doc FROM bench_web_meta")).scalar()
    return json.loads(doc) if doc else None


def _write_meta(url: str, meta: dict) -> None:
    with get_engine(url).begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_web_meta (doc TEXT)"))
        c.execute(text("DELETE FROM bench_web_meta"))
        c.execute(text("INSERT INTO bench_web_meta (doc) VALUES (:d)"), {"d": json.dumps(meta)})


def _ts(values: np.ndarray, kind: str) -> list:
    """datetime64[us] (UTC) → the text each backend stores: SQLAlchemy's SQLite format, ISO with +00 on PG."""
    text = np.datetime_as_string(values, unit="us")
    mask = np.isnat(values)
    out = np.char.replace(text, "T", " ")
    if kind == "postgresql":
        out = np.char.add(out, "+00")
    out = out.astype(object)
    out[mask] = None
    return out.tolist()


class _Loader:
    """Bulk rows into one table: DB-API executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, kind: str, dbapi_conn):
        self.kind, self.conn = kind, dbapi_conn

    def load(self, table: str, columns: dict[str, list], chunk: int = 50_000) -> int:
        names = list(columns)
        rows = list(zip(*columns.values()))
        cur = self.conn.cursor()
        if self.kind == "sqlite":
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            for lo in range(0, len(rows), chunk):
                cur.executemany(sql, rows[lo:lo + chunk])
        else:
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        cur.close()
        return len(rows)


def _entities(rng, n: int, kind: str) -> tuple[dict, list[str]]:
    ids = np.arange(1, n + 1)
    usccs = [f"914101{i:011d}X" for i in ids]
    d = rng.integers(0, len(DISTRICTS), n)
    w1, w2, k = rng.integers(0, len(_W1), n), rng.integers(0, len(_W2), n), rng.integers(0, len(_KINDS), n)
    names = [f"郑州市{_DISTRICT_NAMES[a]}区{_W1[b]}{_W2[c]}{_KINDS[e]}有限公司" for a, b, c, e in zip(d, w1, w2, k)]
    cols = {"id": ids.tolist(), "uscc": usccs, "name": names,
            "industry_section": rng.choice(list("CFGHIM"), n).tolist(),
            "district": [DISTRICTS[i] for i in d], "entity_type": ["company"] * n, "status": ["active"] * n}
    if kind == "sqlite":
        cols["abnormal_list"], cols["serious_list"] = [0] * n, [0] * n
    else:
        cols["abnormal_list"], cols["serious_list"] = [False] * n, [False] * n
    return cols, usccs


def seed(target: Target, args) -> dict:
    """Create and fill the bench database; returns seeding times and the ids the cases need."""
    kind = target.kind
    times: dict[str, float] = {}
    t_all = t = time.perf_counter()
    upgrade(target.url)
    factory = session_factory(target.url)
    settings = load_settings(database_url=target.url, secret_key="bench-web-secret")
    runtime = build_runtime(settings)
    with transaction(factory) as s:
        if s.scalar(select(func.count()).select_from(ProcessInstance)):
            raise SystemExit(f"{target.label} already holds instances but no bench metadata: use an empty one")
        deploy(runtime, s, {BPMN_FILE.name: BPMN_FILE.read_text(encoding="utf-8")}, "bench")
        def_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == PROCESS_ID))
        add_user(s, OFFICER, PASSWORD, "officer", OFFICER_GROUPS, actor="bench")
        add_user(s, DISTRICT_OFFICER, PASSWORD, "officer", OFFICER_GROUPS, actor="bench")
        set_jurisdiction(s, DISTRICT_OFFICER, JURISDICTION, actor="bench")
        add_user(s, AUDITOR, PASSWORD, "auditor,supervisor", "", actor="bench")
    times["schema_deploy_users_s"] = time.perf_counter() - t

    rng = np.random.default_rng(SEED)
    n_tasks, n_ent, n_camp = args.tasks, args.entities, args.campaigns
    n_inst = -(-n_tasks // args.tasks_per_instance)
    now64 = np.datetime64(NOW.replace(tzinfo=None), "us")
    day_us = 86_400_000_000

    # tasks: due dates over ±60 days (10 % none), created 1–90 days ago, groups skewed, 30 % claimed
    due = now64 + (rng.uniform(-60, 60, n_tasks) * day_us).astype("timedelta64[us]")
    due[rng.random(n_tasks) < 0.10] = np.datetime64("NaT")
    created = now64 - (rng.uniform(1, 90, n_tasks) * day_us).astype("timedelta64[us]")
    weights = 1.0 / np.arange(1, len(GROUPS) + 1) ** 0.6
    g1 = rng.choice(len(GROUPS), n_tasks, p=weights / weights.sum())
    g2 = np.where(rng.random(n_tasks) < 0.2, (g1 + rng.integers(1, len(GROUPS), n_tasks)) % len(GROUPS), -1)
    claimed = rng.random(n_tasks) < 0.30
    officer_names = [OFFICER] + [f"officer_{i:04d}" for i in range(1, OFFICERS)]
    assignee_idx = rng.integers(0, OFFICERS, n_tasks)
    entity_idx = rng.integers(0, n_ent, n_tasks)
    priority = rng.choice([30, 50, 50, 50, 70, 90], n_tasks)
    inst_of_task = np.arange(n_tasks) // args.tasks_per_instance  # 0-based instance number

    t = time.perf_counter()
    eng = get_engine(target.url)
    raw = eng.raw_connection()
    try:
        dbapi = raw.driver_connection
        cur = dbapi.cursor()
        if kind == "sqlite":
            cur.execute("PRAGMA cache_size=-400000")
            cur.execute("BEGIN IMMEDIATE")
        loader = _Loader(kind, dbapi)
        ent_cols, usccs = _entities(rng, n_ent, kind)
        loader.load("entity", ent_cols)
        times["entities_s"] = time.perf_counter() - t

        # campaign instances (ids 1..C), then task instances (C+1..), each with a hash chain of its own
        t = time.perf_counter()
        inst_ids = np.arange(n_camp + 1, n_camp + n_inst + 1)
        first_task = np.arange(0, n_tasks, args.tasks_per_instance)
        inst_created = created[first_task]
        parents = rng.integers(1, n_camp + 1, n_inst) if n_camp else np.zeros(n_inst, int)
        task_ids = np.arange(1, n_tasks + 1)
        guids = [str(uuid.UUID(int=int(x), version=4)) for x in rng.integers(0, 2**63, n_tasks)]
        heads_seq = [0] * n_inst
        heads_hash = [audit.GENESIS] * n_inst
        ev_cols: dict[str, list] = {k: [] for k in ("chain", "seq", "at", "actor", "kind", "instance_id", "bpmn_id",
                                                    "task_guid", "flow_ids", "data_diff", "detail", "prev_hash",
                                                    "hash")}
        if args.audit_per_instance:
            starts = inst_created.astype("datetime64[us]").tolist()
            for i in range(n_inst):
                iid = int(inst_ids[i])
                at = starts[i].replace(tzinfo=timezone.utc)
                tix = int(first_task[i])
                evs = [audit.Event("instance_started", "bench", iid, "start", None, ["f_start"],
                                   {"business_key": {"new": usccs[entity_idx[tix]]}}, {}, at),
                       audit.Event("task_created", "bench", iid, "review", guids[tix], ["f_high"], {},
                                   {"task_id": tix + 1}, at + timedelta(milliseconds=40))][:args.audit_per_instance]
                rows, (heads_seq[i], heads_hash[i]) = audit.build_rows(audit.instance_chain(iid), evs,
                                                                       (0, audit.GENESIS))
                for r in rows:
                    for k in ev_cols:
                        ev_cols[k].append(r[k])
        times["audit_chains_built_s"] = time.perf_counter() - t
        t = time.perf_counter()
        camp_created = np.full(n_camp, now64 - np.timedelta64(120 * day_us, "us"))
        all_started = np.concatenate([camp_created, inst_created])
        n_all = n_camp + n_inst
        loader.load("process_instance", {
            "id": np.arange(1, n_all + 1).tolist(), "definition_id": [def_id] * n_all,
            "process_id": [PROCESS_ID] * n_all,
            "business_key": [f"BENCH-2026-{i:03d}" for i in range(1, n_camp + 1)]
                            + [usccs[entity_idx[j]] for j in first_task],
            "status": ["running"] * n_all, "state": ['{"bench": "seeded row; no workflow state"}'] * n_all,
            "serializer_version": ["bench"] * n_all, "library_version": ["bench"] * n_all, "rev": [0] * n_all,
            "parent_instance_id": [None] * n_camp + parents.tolist(), "started_by": ["bench"] * n_all,
            "started_at": _ts(all_started, kind), "updated_at": _ts(all_started, kind),
            "audit_seq": [0] * n_camp + heads_seq, "audit_head": [audit.GENESIS] * n_camp + heads_hash,
            "audit_anchored_seq": [0] * n_all,
        })
        times["instances_s"] = time.perf_counter() - t

        t = time.perf_counter()
        cand_groups = [json.dumps([GROUPS[a]] if b < 0 else sorted([GROUPS[a], GROUPS[b]])) for a, b in zip(g1, g2)]
        assignees = np.array(officer_names, dtype=object)[assignee_idx]
        assignees[~claimed] = None
        claimed_at = created + (rng.uniform(0, 1, n_tasks) * day_us).astype("timedelta64[us]")
        claimed_at[~claimed] = np.datetime64("NaT")
        loader.load("human_task", {
            "id": task_ids.tolist(), "instance_id": (inst_ids[inst_of_task]).tolist(), "task_guid": guids,
            "bpmn_id": ["review"] * n_tasks, "name": [TASK_NAMES[i % len(TASK_NAMES)] for i in range(n_tasks)],
            "process_id": [PROCESS_ID] * n_tasks, "business_key": [usccs[i] for i in entity_idx],
            "candidate_groups": cand_groups, "assignee": assignees.tolist(), "priority": priority.tolist(),
            "due_at": _ts(due, kind), "status": ["open"] * n_tasks, "created_at": _ts(created, kind),
            "claimed_at": _ts(claimed_at, kind),
        })
        times["tasks_s"] = time.perf_counter() - t

        t = time.perf_counter()
        due_key = due.copy()
        due_key[np.isnat(due_key)] = np.datetime64(NO_DUE.replace(tzinfo=None), "us")
        two = g2 >= 0
        c_task = np.concatenate([task_ids, task_ids[two]])
        c_group = np.concatenate([g1, g2[two]])
        c_claimed = np.concatenate([claimed, claimed[two]])
        loader.load("human_task_candidate", {
            "task_id": c_task.tolist(), "group_name": [GROUPS[i] for i in c_group],
            "due_key": _ts(np.concatenate([due_key, due_key[two]]), kind),
            "claimed": (c_claimed.astype(int).tolist() if kind == "sqlite" else c_claimed.tolist()),
        })
        times["candidates_s"] = time.perf_counter() - t

        t = time.perf_counter()
        if ev_cols["chain"]:
            for k in ("flow_ids", "data_diff", "detail"):
                # already encoded (engine.db.JsonText, the exact text that was hashed) or a value to encode
                ev_cols[k] = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in ev_cols[k]]
            ev_cols["at"] = [a.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
                             + ("+00" if kind == "postgresql" else "") for a in ev_cols["at"]]
            loader.load("audit_event", ev_cols)
        times["audit_events_s"] = time.perf_counter() - t
        if kind == "postgresql":
            for table in ("entity", "process_instance", "human_task"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        dbapi.commit()
        cur.close()
    finally:
        raw.close()

    # one instance with --history-events audit events (the history page), through the runtime + audit
    t = time.perf_counter()
    with transaction(factory) as s:
        history_id = runtime.start(s, PROCESS_ID, business_key=usccs[0], actor=OFFICER).instance.id
    with transaction(factory) as s:
        inst = s.get(ProcessInstance, history_id)
        guid, task_id = s.execute(text("SELECT task_guid, id FROM human_task WHERE instance_id = :i"),
                                  {"i": history_id}).first()
        events = []
        kinds = ["task_claimed", "task_unclaimed", "task_reminder", "message_received", "timer_rescheduled"]
        for n in range(max(0, args.history_events - inst.audit_seq)):
            kind_n = kinds[n % len(kinds)]
            events.append(audit.Event(
                kind_n, OFFICER if kind_n.startswith("task_") else "system", history_id, "review", guid,
                [], {f"field_{n % 7}": {"old": n, "new": n + 1}, "note": {"new": f"第 {n} 次检查记录"}}
                if kind_n == "message_received" else {}, {"task_id": task_id, "n": n},
                NOW - timedelta(days=30) + timedelta(minutes=10 * n)))
        rows, (inst.audit_seq, inst.audit_head) = audit.build_rows(audit.instance_chain(history_id), events,
                                                                   (inst.audit_seq, inst.audit_head))
        audit.insert_rows(s, rows)
    with transaction(factory) as s:
        ok_history = audit.verify(s, audit.instance_chain(history_id))
        ok_bulk = audit.verify(s, audit.instance_chain(n_camp + 1)) if args.audit_per_instance else None
    if not ok_history.ok or (ok_bulk is not None and not ok_bulk.ok):
        raise SystemExit(f"audit chains do not verify: {ok_history.problems[:3]} {ok_bulk and ok_bulk.problems[:3]}")
    times["history_instance_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if kind == "postgresql":
        with get_engine(target.url).execution_options(isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    else:
        if args.sqlite_analyze:
            with get_engine(target.url).begin() as c:
                c.exec_driver_sql("ANALYZE")
        raw = get_engine(target.url).raw_connection()  # outside a transaction: fold the bulk load's WAL into the file
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    times["analyze_s"] = time.perf_counter() - t
    times["total_s"] = time.perf_counter() - t_all
    meta = {"sizes": _sizes(args), "history_instance": history_id, "history_events": ok_history.events,
            "search": _search_text(), "uscc": usccs[len(usccs) // 2], "now": NOW.isoformat(),
            "instances": n_all, "candidate_rows": int(len(c_task)), "audit_rows_bulk": len(ev_cols["chain"]),
            "sqlite_analyzed": bool(args.sqlite_analyze) if kind == "sqlite" else None,
            "seed_times_s": {k: round(v, 1) for k, v in times.items()}}
    _write_meta(target.url, meta)
    return meta


def _search_text() -> str:
    """A name fragment that matches about 1/1000 of the entities (an officer typing part of a name)."""
    return f"{_W1[3]}{_W2[5]}"


def prepare(target: Target, args) -> dict:
    """Seed, or reuse a seeded database whose sizes match."""
    meta = _read_meta(target.url) if args.reuse or args.reuse_pg else None
    if meta is not None:
        if meta["sizes"] != _sizes(args):
            raise SystemExit(f"{target.label} was seeded with {meta['sizes']}, not {_sizes(args)}: "
                             "delete it (or the schema) or pass the same sizes")
        log(f"{target.kind}: reusing the seeded data ({meta['sizes']['tasks']:,} tasks)")
        meta["reused"] = True
        meta["upgraded"] = upgrade_reused(target)
        return meta
    log(f"{target.kind}: seeding {args.tasks:,} open tasks, {args.entities:,} entities…")
    meta = seed(target, args)
    meta["reused"] = False
    log(f"{target.kind}: seeded in {meta['seed_times_s']['total_s']} s {meta['seed_times_s']}")
    return meta


def _revision(url: str) -> str | None:
    with get_engine(url).connect() as c:
        return c.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_reused(target: Target) -> dict | None:
    """Bring reused data seeded by an older schema to the head revision (the migrations fill what they add,
    e.g. 0008's district of every queue row and the entity-name bigram index); None when already there."""
    before = _revision(target.url)
    if [before] == heads():
        return None
    log(f"{target.kind}: upgrading the reused data from {before} to {heads()[0]}…")
    t = time.perf_counter()
    upgrade(target.url)
    took = round(time.perf_counter() - t, 1)
    log(f"{target.kind}: upgraded in {took} s")
    return {"from": before, "to": _revision(target.url), "s": took}


def counts(url: str) -> dict:
    with get_engine(url).connect() as c:
        return {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("entity", "process_instance", "human_task", "human_task_candidate", "audit_event")} | {
            "open_tasks": c.execute(text("SELECT count(*) FROM human_task WHERE status = 'open'")).scalar()}


# ----------------------------------------------------------------------------------------------- HTTP
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class Client:
    """A ``requests`` session signed in through the login form (CSRF token from the meta tag)."""

    def __init__(self, base: str, username: str):
        self.base = base
        self.http = requests.Session()
        page = self.http.get(base + "/auth/login")
        m = _CSRF.search(page.text)
        if not m:
            raise SystemExit(f"the sign-in page at {base}/auth/login carries no csrf-token meta tag")
        r = self.http.post(base + "/auth/login", data={"username": username, "password": PASSWORD,
                                                       "csrf_token": m.group(1)}, allow_redirects=False)
        if r.status_code != 302:
            raise SystemExit(f"sign-in of {username} failed: HTTP {r.status_code}")

    def get(self, path: str):
        return self.http.get(self.base + path, allow_redirects=False)

    def close(self) -> None:
        self.http.close()


class Server:
    """``web.create_app`` behind waitress in a daemon thread on a free port."""

    def __init__(self, url: str, threads: int):
        app = create_app(settings=load_settings(database_url=url, secret_key="bench-web-secret"))
        self.server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="regflow-bench")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.effective_port}"

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)


def cases(meta: dict) -> list[tuple[str, str, str, str]]:
    """(name, user, path, what) of each timed page."""
    return [
        ("inbox_default", OFFICER, "/inbox/", "inbox, default view (mine + 3 groups, soonest due)"),
        ("inbox_page2", OFFICER, "/inbox/?page=2", "inbox, page 2"),
        ("inbox_overdue", OFFICER, "/inbox/?due=overdue", "inbox, overdue filter"),
        ("inbox_entity", OFFICER, "/inbox/?entity=" + meta["search"], f"inbox, entity name search “{meta['search']}”"),
        ("inbox_uscc", OFFICER, "/inbox/?entity=" + meta["uscc"], "inbox, entity USCC search"),
        ("inbox_jurisdiction", DISTRICT_OFFICER, "/inbox/",
         "inbox, default view, officer with a 2-district jurisdiction"),
        ("history", AUDITOR, f"/audit/instances/{meta['history_instance']}",
         f"instance history ({meta['history_events']} audit events)"),
    ]


def time_case(client: Client, path: str, n: int, warmup: int) -> dict:
    first = client.get(path)
    if first.status_code != 200:
        return {"status": first.status_code, "missing": True,
                "note": f"HTTP {first.status_code} for {path}" + (" (page not built yet?)"
                                                                  if first.status_code == 404 else "")}
    for _ in range(max(0, warmup - 1)):
        client.get(path)
    samples, size = [], len(first.content)
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            return {"status": r.status_code, "missing": True, "note": f"HTTP {r.status_code} during timing"}
    return {"status": 200, "n": n, "bytes": size, "p50_ms": round(percentile(samples, 50), 2),
            "p95_ms": round(percentile(samples, 95), 2), "max_ms": round(max(samples), 2),
            "mean_ms": round(statistics.fmean(samples), 2),
            # CPU of this process (server thread + client) per request: less sensitive to a busy machine than
            # wall clock; PostgreSQL's own CPU is not in it
            "cpu_ms": round((time.process_time() - cpu0) * 1000 / n, 2)}


def concurrent_default(base: str, clients: int, per_client: int) -> dict:
    users = [Client(base, OFFICER) for _ in range(clients)]
    for u in users:
        u.get("/inbox/")
    samples: list[float] = []
    lock = threading.Lock()

    def run(u: Client):
        mine = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            u.get("/inbox/")
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            samples.extend(mine)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, users))
    wall = time.perf_counter() - t0
    for u in users:
        u.close()
    return {"clients": clients, "n": len(samples), "p50_ms": round(percentile(samples, 50), 2),
            "p95_ms": round(percentile(samples, 95), 2), "max_ms": round(max(samples), 2),
            "requests_per_s": round(len(samples) / wall, 1)}


def run_backend(target: Target, args) -> dict:
    meta = prepare(target, args)
    res = {"url": target.label, "seed": meta, "rows": counts(target.url), "cases": {}}
    if args.explain:
        res["explain"] = explain(target, meta)
        return res
    server = Server(target.url, args.threads)
    sessions: dict[str, Client] = {}
    try:
        for name, user, path, what in cases(meta):
            client = sessions.get(user) or sessions.setdefault(user, Client(server.base, user))
            log(f"{target.kind}: {what}…")
            res["cases"][name] = {"path": path, "what": what, **time_case(client, path, args.requests, args.warmup)}
        if args.clients > 1:
            log(f"{target.kind}: default inbox view, {args.clients} concurrent clients…")
            res["concurrent_default"] = concurrent_default(server.base, args.clients, args.requests)
    finally:
        for client in sessions.values():
            client.close()  # no kept-alive connection left for the server to service while it closes
        server.close()
    return res


# ------------------------------------------------------------------------------------------- explain
def explain(target: Target, meta: dict) -> dict:
    """The query plans of the inbox service's statements for the bench officer's default view."""
    eng = session_factory(target.url).kw["bind"]
    viewers = {"officer": Viewer(OFFICER, frozenset(OFFICER_GROUPS)),
               "district": Viewer(DISTRICT_OFFICER, frozenset(OFFICER_GROUPS), tuple(JURISDICTION))}
    queries = {"default": ("officer", TaskQuery()), "page2": ("officer", TaskQuery(offset=50)),
               "overdue": ("officer", TaskQuery(due="overdue")),
               "entity": ("officer", TaskQuery(entity=meta["search"])),
               "jurisdiction": ("district", TaskQuery())}
    out = {}
    for name, (who, q) in queries.items():
        stmts: list[tuple[str, object, float]] = []

        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["t0"] = time.perf_counter()

        def after(conn, cursor, statement, parameters, context, executemany):
            stmts.append((statement, parameters, (time.perf_counter() - conn.info["t0"]) * 1000))

        event.listen(eng, "before_cursor_execute", before)
        event.listen(eng, "after_cursor_execute", after)
        try:
            with session_factory(target.url)() as s:
                t0 = time.perf_counter()
                list_tasks(s, viewers[who], q)
                total = (time.perf_counter() - t0) * 1000
        finally:
            event.remove(eng, "before_cursor_execute", before)
            event.remove(eng, "after_cursor_execute", after)
        plans = []
        with eng.connect() as c:
            for sql, params, ms in stmts:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                prefix = "EXPLAIN QUERY PLAN " if target.kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
                rows = c.exec_driver_sql(prefix + sql, params).fetchall()
                plan = [" | ".join(str(x) for x in r) for r in rows]
                plans.append({"ms": round(ms, 2), "sql": " ".join(sql.split())[:600], "plan": plan})
        out[name] = {"list_tasks_ms": round(total, 2), "statements": plans}
    return out


# -------------------------------------------------------------------------------------------- report
def environment() -> dict:
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "sqlalchemy": version("sqlalchemy"),
           "psycopg": version("psycopg"), "waitress": version("waitress")}
    try:
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1_000_000, help="open human tasks (default 1,000,000)")
    ap.add_argument("--entities", type=int, default=200_000, help="market entities (default 200,000)")
    ap.add_argument("--tasks-per-instance", type=int, default=1, help="open tasks per process instance (default 1)")
    ap.add_argument("--campaigns", type=int, default=50, help="campaign (parent) instances (default 50)")
    ap.add_argument("--audit-per-instance", type=int, default=2, choices=(0, 1, 2),
                    help="hash-chained audit events per seeded instance (default 2)")
    ap.add_argument("--history-events", type=int, default=200, help="audit events of the history page's instance")
    ap.add_argument("--requests", type=int, default=200, help="timed sequential requests per case (default 200)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed requests per case first (default 10)")
    ap.add_argument("--clients", type=int, default=0,
                    help="also time the default inbox view from this many concurrent clients (default off)")
    ap.add_argument("--threads", type=int, default=8, help="waitress request threads (default 8, as regflow serve)")
    ap.add_argument("--reuse", type=Path, metavar="PATH", help="SQLite file to seed once and reuse")
    ap.add_argument("--reuse-pg", metavar="SCHEMA", help="PostgreSQL schema to seed once and reuse")
    ap.add_argument("--sqlite-analyze", action="store_true",
                    help="run ANALYZE on SQLite after seeding (regflow itself never does; PostgreSQL is always "
                         "VACUUM ANALYZEd, as autovacuum would)")
    ap.add_argument("--explain", action="store_true", help="print the inbox queries' plans instead of timing")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    ap.add_argument("--skip-pg", action="store_true", help="SQLite only")
    ap.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    args = ap.parse_args(argv)


    logging.getLogger("engine").setLevel(logging.ERROR)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    res: dict = {"environment": environment(), "params": {**_sizes(args), "requests": args.requests,
                                                          "warmup": args.warmup, "clients": args.clients,
                                                          "threads": args.threads},
                 "goal_p95_ms": GOAL_P95_MS}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="regflow-bench-web-") as tmp:
        if not args.skip_sqlite:
            target = sqlite_target(args.reuse, Path(tmp))
            try:
                res["sqlite"] = run_backend(target, args)
            finally:
                target.close()
        if args.skip_pg:
            res["pg_skipped"] = "--skip-pg given"
        else:
            why = pg_check()
            if why:
                res["pg_skipped"] = why
            else:
                target = pg_target(args.reuse_pg)
                try:
                    res["postgresql"] = run_backend(target, args)
                finally:
                    target.close()
    try:
        res["environment"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    res["goals"] = goals(res)
    res["wall_s"] = round(time.perf_counter() - t_all, 1)
    if args.json:
        print(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    elif args.explain:
        print_explain(res)
    else:
        print_report(res)
    return 0


def goals(res: dict) -> list[dict]:
    """p95 ≤ GOAL_P95_MS for every inbox case on every backend that ran."""
    out = []
    for kind in ("sqlite", "postgresql"):
        for name, c in ((res.get(kind) or {}).get("cases") or {}).items():
            if name.startswith("inbox_"):
                out.append({"goal": f"{kind} {name} p95 ≤ {GOAL_P95_MS:g} ms", "value": c.get("p95_ms"),
                            "met": None if c.get("missing") else c["p95_ms"] <= GOAL_P95_MS})
    return out


def print_report(res: dict) -> None:
    env, p = res["environment"], res["params"]
    print(f"regflow web benchmark — {p['tasks']:,} open tasks, {p['entities']:,} entities, "
          f"{p['tasks_per_instance']} task(s) per instance, {p['audit_per_instance']} audit events per instance")
    print(f"python {env['python']}, SQLAlchemy {env['sqlalchemy']}, psycopg {env['psycopg']}, waitress "
          f"{env['waitress']} ({p['threads']} threads, in this process); {env['cpus']} CPUs shared with other work: "
          f"load average {env.get('loadavg_at_start')} at start, {env.get('loadavg_at_end')} at end")
    print(f"{p['requests']} sequential timed GETs per case after {p['warmup']} warm-up GETs, one signed-in "
          "requests.Session per user; times are client-side wall clock (request sent → body read); cpu ms = CPU "
          "of this process (server + client, not PostgreSQL) per request")
    for kind in ("sqlite", "postgresql"):
        r = res.get(kind)
        print()
        if r is None:
            print(f"{kind}: skipped — {res.get('pg_skipped')}")
            continue
        seed = r["seed"]
        how = "reused" if seed.get("reused") else f"seeded in {seed['seed_times_s']['total_s']} s"
        if seed.get("upgraded"):
            up = seed["upgraded"]
            how += f" (upgraded from {up['from']} to {up['to']} in {up['s']} s)"
        print(f"{kind}: {r['url']}; {how}; rows {r['rows']}")
        if not seed.get("reused"):
            print(f"   seeding: {seed['seed_times_s']}")
        print(f"   {'case':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms':>8} {'bytes':>8}  what")
        for name, c in r["cases"].items():
            if c.get("missing"):
                print(f"   {name:<20} {'—':>8} {'—':>8} {'—':>8} {'—':>8} {'—':>8}  {c['what']}: {c['note']}")
                continue
            print(f"   {name:<20} {c['p50_ms']:>8.1f} {c['p95_ms']:>8.1f} {c['max_ms']:>8.1f} {c['cpu_ms']:>8.1f} "
                  f"{c['bytes']:>8}  "
                  f"{c['what']}")
        cc = r.get("concurrent_default")
        if cc:
            print(f"   {'default, ' + str(cc['clients']) + ' clients':<20} {cc['p50_ms']:>8.1f} {cc['p95_ms']:>8.1f} "
                  f"{cc['max_ms']:>8.1f} {'':>8} {'':>8}  {cc['requests_per_s']} requests/s aggregate (n={cc['n']})")
    print()
    print("Goals")
    for g in res["goals"]:
        verdict = "n/a" if g["met"] is None else ("MET" if g["met"] else "NOT MET")
        print(f"   [{verdict:^7}] {g['goal']}: {g['value']}")
    print(f"\nwall time {res['wall_s']} s")


def print_explain(res: dict) -> None:
    for kind in ("sqlite", "postgresql"):
        r = res.get(kind)
        if r is None:
            continue
        print(f"=== {kind}: {r['url']}")
        for name, e in r["explain"].items():
            print(f"\n--- {name}: list_tasks {e['list_tasks_ms']} ms")
            for st in e["statements"]:
                print(f"  [{st['ms']} ms] {st['sql']}")
                for line in st["plan"]:
                    print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
