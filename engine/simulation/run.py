"""A simulated run: setting up the registry, the model and the process library (:func:`prepare_run`), the
run day by day on a simulated clock (:func:`simulate`) and its summary (:func:`summarise`).
"""
from __future__ import annotations

import io
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from engine.bootstrap import build_runtime, form_hasher
from engine.config import PROJECT_ROOT, load_settings
from engine.db import dispose_engines, session_factory, transaction
from engine.demo import DEMO_DATA, demo_inspectors_csv
from engine.runtime import audit, clock
from engine.runtime.continuations import CONTINUE_JOB
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import Incident, ProcessInstance
from engine.runtime.users import add_user
from engine.runtime.worker import run_due, run_jobs
from engine.schema import upgrade
from engine.supervision import agencies, document_files, importer, lists, signing, transfers
from engine.supervision import calendar as cal
from engine.supervision.campaign_models import Campaign, DrawResult
from engine.supervision.inspection import VIOLATION_CODES
from engine.supervision.loop_models import EnforcementCase, Hazard, Publication, RectificationOrder
from engine.supervision.registry_models import Inspector
from scoring import registry, service
from scoring.generator import generate
from scoring.train import train_synthetic

from .officers import OFFICE, Officers, OutcomeMix, work_day
from .options import Options, campaign_plan, library_with


def prepare_run(url: str, opts: Options, runtime) -> tuple[dict, dict]:
    """Registries, users, entities with their ground truth, the model, the process library."""
    factory = session_factory(url)
    now = clock.now()
    with transaction(factory) as s:
        cal.seed_from_chinese_calendar(s)
        importer.import_departments(s, DEMO_DATA / "departments.csv")
        importer.import_skills(s, DEMO_DATA / "skills.csv")
        importer.import_inspectors(s, io.StringIO(demo_inspectors_csv()), today=now.date(), now=now)
        importer.import_items(s, DEMO_DATA / "items.csv", now=now)
        # the simulated office's accounts have no password: nobody signs in to them (hashing 55 passwords took 15 s)
        for name, roles, groups in OFFICE:
            add_user(s, name, None, roles, groups, actor="simulator")
        for username, in s.execute(select(Inspector.username).where(Inspector.username.is_not(None))):
            add_user(s, username, None, "team_leader,officer", "officers,team_leaders", actor="simulator")
        agencies.load_agency_folder(s, DEMO_DATA)  # the bureau and its stations issue the documents
        signing.ensure_demo_keys(runtime.settings.keys_dir, [(a["code"], a["name"]) for a in agencies.list_agencies(s)])
    result, _ = train_synthetic(opts.training_entities, seed=opts.seed)
    region = generate(opts.entities, seed=opts.seed + 1, history=False)
    truth_p = region.bayes_probability(region.entities)
    truth = {str(u): float(p) for u, p in zip(region.entities["uscc"], truth_p)}
    with transaction(factory) as s:
        registry.store_version(s, result.model, result.metrics, result.metadata, activate=True)
        service.load_entities(s, region.entities)
    with transaction(factory) as s:
        service.score_all(s, progress=False, reasons=False)
    settings = load_settings()
    with transaction(factory) as s:
        deploy(runtime, s, library_with(read_paths([PROJECT_ROOT / "processes"]), opts.decision_files), "simulator",
               form_hash=form_hasher(settings))
    with transaction(factory) as s:
        cal.refresh(s)
    return truth, {"model_version": None}


def simulate(opts: Options, progress: Callable[[dict], None] | None = None) -> dict:
    """The run; ``progress(doc)``, if given, hears of each phase and of each simulated day (the instances
    started, completed and open so far), as a background job's page shows it."""
    report = progress or (lambda doc: None)
    t_start = time.perf_counter()
    tmp = None
    url = opts.database_url
    # the run's own demo signing keys; a kept database (--database-url) is signed with the installation's keys
    # (REGFLOW_KEYS_DIR, demo keys created there when missing), so `regflow documents verify` checks it afterwards
    keys = tempfile.TemporaryDirectory(prefix="regflow-sim-keys-")
    keys_dir = keys.name if url is None else load_settings().keys_dir
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="regflow-sim-")
        url = f"sqlite:///{Path(tmp.name) / 'simulation.db'}"
    try:
        upgrade(url)
        runtime = build_runtime(load_settings(database_url=url, keys_dir=keys_dir))
        rng = random.Random(opts.seed)
        report({"phase": "preparing"})
        with clock.frozen(opts.start):
            truth, _ = prepare_run(url, opts, runtime)
        factory = session_factory(url)
        officers = Officers(runtime, factory, truth, rng)
        officers.mix = OutcomeMix.from_options(opts)
        officers.letter_signed = opts.letter_signed
        now = opts.start
        plan = campaign_plan(f"模拟抽查 simulated campaign seed {opts.seed}", now, ratios=opts.ratios,
                             control_share=opts.control_share, capacity=opts.entities, lookback_months=12)
        with clock.frozen(now), transaction(factory) as s:
            campaign_iid = runtime.start(s, "inspection_campaign", business_key=f"SIM-{opts.seed}",
                                         actor="planner").instance.id
        extra = {"__plan__": plan, "__public_value__": f"{opts.seed:02d} 07 13 21 28 33 + 09"}
        days = 0
        while True:
            with clock.frozen(now):
                work_day(runtime, factory, officers, now, extra)
                # what the day's work queued for the worker (the campaign's launch: ``async`` = ``before``) runs the
                # same day, through the worker's job loop, and its tasks are worked that day as before
                while run_jobs(runtime, factory, kinds=(CONTINUE_JOB,)).jobs_run:
                    work_day(runtime, factory, officers, now, extra)
            with transaction(factory) as s:
                counts = dict(s.execute(select(ProcessInstance.status, func.count())
                                        .group_by(ProcessInstance.status)).all())
            running = counts.get("running", 0) + counts.get("suspended", 0)
            report({"phase": "running", "day": days, "started": sum(counts.values()),
                    "completed": counts.get("completed", 0), "open": running})
            if not running or days >= opts.max_days:
                break
            days += 1
            now = now + timedelta(days=1)
            run_due(runtime, factory, now=now, background=False)
        with transaction(factory) as s:
            summary = summarise(s, opts, campaign_iid, now)
        with transaction(factory) as s:
            summary.update(document_files.summary(s, keys_dir))  # documents (per kind), documents_verified
        summary["elapsed_s"] = round(time.perf_counter() - t_start, 2)
        summary["simulated_days"] = days
        return summary
    finally:
        dispose_engines()
        keys.cleanup()
        if tmp is not None:
            tmp.cleanup()


def summarise(s, opts: Options, campaign_iid: int, now=None) -> dict:
    """The run's summary (the keys are fixed by the issues; ``now``: the simulated moment the run ended, against
    which unpublished records are overdue)."""
    camp = s.scalars(select(Campaign).order_by(Campaign.id.desc())).first()
    drawn = {k: 0 for k in ("A", "B", "C", "D", "control")}
    stratum_of = {}
    for uscc, stratum in s.execute(select(DrawResult.uscc, DrawResult.stratum)
                                   .where(DrawResult.campaign_id == camp.id)):
        drawn[stratum] += 1
        stratum_of[uscc] = stratum
    statuses = dict(s.execute(select(ProcessInstance.status, func.count()).group_by(ProcessInstance.status)).all())
    started = sum(statuses.values())
    results = [p for p in s.scalars(select(Publication).where(Publication.kind == "result",
                                                              Publication.uscc.is_not(None)))]
    paths = {"standard": 0, "heavy": 0}
    codes: dict[str, int] = {}
    hits = {k: [0, 0] for k in drawn}
    path_by_class: dict[str, dict[str, int]] = {}
    for p in results:
        pay = p.payload
        paths[pay["path"]] = paths.get(pay["path"], 0) + 1
        codes[pay["result_code"]] = codes.get(pay["result_code"], 0) + 1
        st = stratum_of.get(p.uscc)
        if st is not None:
            hits[st][1] += 1
            hits[st][0] += pay["result_code"] in VIOLATION_CODES
        pc = path_by_class.setdefault(pay["risk_class"], {})
        pc[pay["path"]] = pc.get(pay["path"], 0) + 1
    hz = dict(s.execute(select(Hazard.status, func.count()).group_by(Hazard.status)).all())
    orders = dict(s.execute(select(RectificationOrder.status, func.count()).group_by(RectificationOrder.status)).all())
    cases = dict(s.execute(select(EnforcementCase.status, func.count()).group_by(EnforcementCase.status)).all())
    provisional = (s.scalar(select(func.count()).select_from(Publication).where(Publication.due_provisional.is_(True)))
                   + s.scalar(select(func.count()).select_from(RectificationOrder)
                              .where(RectificationOrder.provisional.is_(True))))
    return {
        "entities": opts.entities,
        "drawn": drawn,
        "instances": {"started": started, "completed": statuses.get("completed", 0),
                      "open": statuses.get("running", 0) + statuses.get("suspended", 0)},
        "paths": paths,
        "inspections": dict(sorted(codes.items())),
        "hazards": {"opened": sum(hz.values()), "removed": hz.get("removed", 0),
                    "closed_other": hz.get("closed_other", 0),
                    "open": sum(hz.values()) - hz.get("removed", 0) - hz.get("closed_other", 0)},
        "rectifications": {"ordered": sum(orders.values()), "verified": orders.get("verified", 0),
                           "escalated": orders.get("escalated", 0)},
        "enforcement_cases": {"opened": sum(cases.values()),
                              "closed": sum(cases.get(k, 0) for k in ("closed", "not_filed", "terminated"))},
        "summary_procedures": s.scalar(select(func.count()).select_from(EnforcementCase)
                                       .where(EnforcementCase.procedure == "summary")),
        "decision_clock_pauses": sum(1 for (history,) in s.execute(select(EnforcementCase.history))
                                     for e in history or [] if e.get("event") == "clock_paused"),
        "published": s.scalar(select(func.count()).select_from(Publication)
                              .where(Publication.published_at.is_not(None))),
        "provisional_deadlines": provisional,
        # records published after their 20 working days, or still unpublished past them when the run ended
        "publication_overdue": s.scalar(select(func.count()).select_from(Publication).where(
            ((Publication.published_at.is_(None)) & (Publication.due_by < (now or clock.now())))
            | (Publication.published_at > Publication.due_by))),
        "lists": lists.counts(s),
        "transfers": transfers.counts(s)["total"],
        "incidents": s.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")),
        "hit_rate": {k: round(h / n, 4) if n else None for k, (h, n) in hits.items()},
        "path_by_class": path_by_class,
        "audit_chain_ok": audit.verify(s).ok,
    }
