"""The demo data set that ``./run`` loads: users for every role, the registries (departments, skills,
check items, a generated inspector pool), a synthetic entity registry scored by a model trained on
synthetic history, and the process library.

Idempotent: every part that is already there is kept (users, registries by key, entities, the active
model); deploying unchanged definitions creates no new version. All entity data is synthetic.
"""
from __future__ import annotations

import io
import random
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.bootstrap import form_hasher
from engine.config import Settings
from engine.db import transaction
from engine.runtime import clock
from engine.runtime.continuations import CONTINUE_JOB
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AppUser, HumanTask, ProcessInstance
from engine.runtime.users import add_user
from engine.runtime.worker import run_jobs
from engine.supervision import agencies, importer, signing
from engine.supervision.calendar import SHANGHAI
from engine.supervision.registry_models import Inspector
from scoring.models import Entity

#: (user name, roles, groups) — every demo password is ``DEMO_PASSWORD``.
DEMO_USERS = [
    ("designer", "designer", ""),
    ("planner", "officer", "planners"),
    ("approver", "supervisor", "approvers"),
    ("officer", "officer", "officers,market_dept"),
    ("officer2", "officer", "officers,market_dept"),
    ("leader", "team_leader,officer", "officers,team_leaders"),
    ("handler", "officer", "officers,case_handlers"),
    ("handler2", "officer", "officers,case_handlers"),
    ("head", "supervisor", "agency_heads,supervisors"),
    ("legal", "officer", "legal_reviewers"),  # the legal department: legal review (法制审核) of enforcement cases
    ("supervisor", "supervisor", "supervisors"),
    ("auditor", "auditor", ""),
    ("admin", "admin", "admins"),
]
DEMO_PASSWORD = "regflow-demo"
DEMO_DATA = Path(__file__).resolve().parent / "supervision" / "data" / "demo"
DEMO_ENTITIES = 3000
DEMO_TRAINING_ENTITIES = 30_000
DEMO_SEED = 7
#: the two check items (of ``items.csv``) of the demo's and the simulator's campaigns (a joint amr + price check):
#: code, name, department, method
ITEMS = [("AR-01", "年度报告公示信息检查", "amr", "documentary"), ("PRICE-01", "明码标价检查", "price", "on_site")]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英"]


def demo_inspectors_csv(n: int = 48, seed: int = DEMO_SEED) -> str:
    """A deterministic inspector pool for the whole city (region 410100 covers every district)."""
    rng = random.Random(seed)
    skills = ["food_safety", "drug_gsp", "product_quality", "pricing", "advertising"]
    lines = ["code,name,username,department,cert_no,cert_expires,skills,region,is_expert,leader_eligible,seniority,"
             "active"]
    for i in range(1, n + 1):
        dept = "drug" if i % 4 == 0 else "amr"
        own = {"general", rng.choice(skills), rng.choice(skills)}
        if dept == "drug":
            own.add("drug_gsp")
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        lines.append(f"D{i:03d},{name},demo{i:03d},{dept},ZF4101{i:04d},2030-12-31,{';'.join(sorted(own))},"
                     f"410100,false,{'true' if i % 3 == 0 else 'false'},{rng.randint(1, 25)},true")
    return "\n".join(lines) + "\n"


def _load_registries(session: Session) -> dict:
    if session.scalar(select(func.count()).select_from(Inspector)):
        return {"registries": "kept"}
    now = clock.now()
    out = {}
    out["departments"] = importer.import_departments(session, DEMO_DATA / "departments.csv").created
    out["skills"] = importer.import_skills(session, DEMO_DATA / "skills.csv").created
    out["inspectors"] = importer.import_inspectors(session, io.StringIO(demo_inspectors_csv()),
                                                   today=now.date(), now=now).created
    out["check_items"] = importer.import_items(session, DEMO_DATA / "items.csv", now=now).created
    return out


def _inspector_users(session: Session) -> int:
    """Sign-in accounts for the demo inspectors (tasks are assigned to a drawn team's leader by user name)."""
    existing = set(session.scalars(select(AppUser.username)))
    created = 0
    for username in session.scalars(select(Inspector.username).where(Inspector.username.is_not(None))):
        if username not in existing:
            add_user(session, username, DEMO_PASSWORD, "officer,team_leader", "officers", actor="demo")
            created += 1
    return created


def _load_entities_and_model(session: Session, entities: int = DEMO_ENTITIES,
                             training_entities: int = DEMO_TRAINING_ENTITIES) -> dict:
    # deferred: training and scoring load scikit-learn (seconds), which start_demo_campaigns and the CLI's
    # import of this module do not need
    from scoring import registry, service  # noqa: PLC0415
    from scoring.generator import generate  # noqa: PLC0415
    from scoring.train import train_synthetic  # noqa: PLC0415

    out: dict = {}
    if registry.get_active(session, required=False) is None:
        result, _region = train_synthetic(training_entities, seed=DEMO_SEED)
        version = registry.store_version(session, result.model, result.metrics, result.metadata, activate=True)
        out["model_version"] = version.version
    if not session.scalar(select(func.count()).select_from(Entity)):
        region = generate(entities, seed=DEMO_SEED + 1, history=False)
        out["entities"] = service.load_entities(session, region.entities)
        out["scored"] = service.score_all(session, progress=False).n_scored
    return out or {"entities": "kept", "model": "kept"}


def load_demo(runtime, session: Session, settings: Settings, *, entities: int = DEMO_ENTITIES,
              training_entities: int = DEMO_TRAINING_ENTITIES) -> dict:
    created_users = []
    for name, roles, groups in DEMO_USERS:
        if session.scalars(select(AppUser).where(AppUser.username == name)).first() is None:
            add_user(session, name, DEMO_PASSWORD, roles, groups, actor="demo")
            created_users.append(name)
    summary: dict = {"users_created": created_users}
    summary.update(_load_registries(session))
    summary["inspector_users_created"] = _inspector_users(session)
    summary["agencies"] = agencies.load_agency_folder(session, DEMO_DATA)  # the bureau and its stations
    summary["signing_keys"] = signing.ensure_demo_keys(  # the demo PKI: a root and a key per agency
        settings.keys_dir, [(a["code"], a["name"]) for a in agencies.list_agencies(session)])
    summary.update(_load_entities_and_model(session, entities, training_entities))
    processes = Path(settings.processes_dir)
    deployed = []
    if processes.is_dir() and any(processes.glob("*.bpmn")):
        results = deploy(runtime, session, read_paths([processes]), "demo", form_hash=form_hasher(settings))
        deployed = [r.to_dict() for r in results]
    summary["definitions"] = deployed
    return summary


#: the small demo campaign: the simulator's two joint items, low ratios (percent) and a capacity of 8
DEMO_CAMPAIGN_CAPACITY = 8
DEMO_PUBLIC_VALUE = "05 12 17 23 29 31 + 08"


def _demo_plan(name: str, today, capacity: int = DEMO_CAMPAIGN_CAPACITY) -> dict:
    return {"name": name, "year": today.year, "lead_department": "amr", "joint_check": True,
            "joint_departments": "price",
            "items": [{"item_code": c, "item_name": n, "department": d, "method": m} for c, n, d, m in ITEMS],
            "jurisdiction": "410100", "window_start": today.isoformat(),
            "window_end": (today + timedelta(days=60)).isoformat(), "ratio_a": 0.1, "ratio_b": 0.2, "ratio_c": 1,
            "ratio_d": 3, "control_share": 10, "capacity": capacity, "lookback_months": 12}


def _open_task(session: Session, instance_id: int, bpmn_id: str):
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id,
                                                   HumanTask.status == "open")).one()


def start_demo_campaigns(runtime, session_factory, settings: Settings) -> dict:
    """Give a fresh demo real work: when no ``inspection_campaign`` instance exists yet, start one small
    campaign and drive it through its plan (as ``planner``) and approval (as ``approver``), and run the launch the
    approval queued (the worker's job loop, :func:`engine.runtime.worker.run_jobs`), so that its
    entity_inspection instances wait at their inspection tasks (assigned to the drawn team leaders, the
    demo inspectors ``demo0xx``); one inspection is then delegated to the demo ``leader`` account and one
    to ``officer`` (audited ``task_delegated``) so that signing in as either shows an inspection. A second
    campaign is left waiting at the approval task (``approver``). Each step is its own transaction, through
    the runtime. Idempotent: with any campaign instance present nothing is added.

    ``session_factory``: a ``sessionmaker`` for the demo database (``engine.db.session_factory(url)``); the
    campaigns launch their inspections with ``runtime`` (the service task's ``ServiceContext.runtime``).
    """
    del settings  # the runtime already carries them; kept for symmetry with load_demo
    with transaction(session_factory) as s:
        if s.scalars(select(ProcessInstance.id).where(ProcessInstance.process_id == "inspection_campaign")).first():
            return {"campaigns": "kept"}
    today = clock.now().astimezone(SHANGHAI).date()
    ids = []
    for key, name in (("DEMO-CAMPAIGN-1", "演示抽查：年报与明码标价 (demo)"),
                      ("DEMO-CAMPAIGN-2", "演示抽查：待审批计划 (demo)")):
        with transaction(session_factory) as s:
            iid = runtime.start(s, "inspection_campaign", business_key=key, actor="planner").instance.id
        with transaction(session_factory) as s:
            runtime.complete_task(s, _open_task(s, iid, "draft_plan").id, "planner", _demo_plan(name, today))
        ids.append(iid)
    with transaction(session_factory) as s:
        runtime.complete_task(s, _open_task(s, ids[0], "approve").id, "approver", {
            "decision": "approve", "public_random_value": DEMO_PUBLIC_VALUE,
            "public_random_source": "福利彩票双色球 (demo)", "notice_date": today.isoformat()})
    # the approval queued the launch for the worker (``async`` = ``before``): run it here as a worker would, so that
    # the demo starts with its inspections launched
    run_jobs(runtime, session_factory, kinds=(CONTINUE_JOB,))
    with transaction(session_factory) as s:
        tasks = list(s.scalars(select(HumanTask).join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                               .where(ProcessInstance.parent_instance_id == ids[0], HumanTask.status == "open")
                               .order_by(HumanTask.id)))
    inspections = [t for t in tasks if t.bpmn_id == "inspect" and t.assignee]
    delegated = {}
    for t, to_user in zip(inspections, ("leader", "officer")):
        with transaction(session_factory) as s:
            runtime.delegate(s, t.id, t.assignee, to_user, reason="demo: an inspection for the demo account")
        delegated[to_user] = t.id
    with transaction(session_factory) as s:
        waiting = list(s.execute(select(HumanTask.bpmn_id, HumanTask.assignee).join(
            ProcessInstance, ProcessInstance.id == HumanTask.instance_id).where(
            ProcessInstance.parent_instance_id == ids[0], HumanTask.status == "open").order_by(HumanTask.id)))
    return {"campaign_instances": ids, "inspections_launched": len(tasks),
            "tasks": [{"task": b, "assignee": a} for b, a in waiting], "delegated": delegated,
            "awaiting_approval": ids[1]}
