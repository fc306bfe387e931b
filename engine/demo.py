"""The demo data set that ``./run`` loads: users for every role, the registries (departments, skills,
check items, a generated inspector pool), a synthetic entity registry scored by a model trained on
synthetic history, and the process library.

Idempotent: every part that is already there is kept (users, registries by key, entities, the active
model); deploying unchanged definitions creates no new version. All entity data is synthetic.
"""
from __future__ import annotations

import io
import random

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.runtime import clock
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AppUser
from engine.runtime.users import add_user

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
    ("supervisor", "supervisor", "supervisors"),
    ("auditor", "auditor", ""),
    ("admin", "admin", "admins"),
]
DEMO_PASSWORD = "regflow-demo"
DEMO_DATA = Path(__file__).resolve().parent / "supervision" / "data" / "demo"
DEMO_ENTITIES = 3000
DEMO_TRAINING_ENTITIES = 30_000
DEMO_SEED = 7

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英"]


def demo_inspectors_csv(n: int = 48, seed: int = DEMO_SEED) -> str:
    """A deterministic inspector pool for the whole city (region 410100 covers every district)."""
    rng = random.Random(seed)
    skills = ["food_safety", "drug_gsp", "product_quality", "pricing", "advertising"]
    lines = ["code,name,username,department,cert_no,cert_expires,skills,region,is_expert,leader_eligible,seniority,active"]
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
    from engine.supervision import importer
    from engine.supervision.registry_models import Inspector

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
    from engine.supervision.registry_models import Inspector

    existing = set(session.scalars(select(AppUser.username)))
    created = 0
    for username in session.scalars(select(Inspector.username).where(Inspector.username.is_not(None))):
        if username not in existing:
            add_user(session, username, DEMO_PASSWORD, "officer,team_leader", "officers", actor="demo")
            created += 1
    return created


def _load_entities_and_model(session: Session, entities: int = DEMO_ENTITIES,
                             training_entities: int = DEMO_TRAINING_ENTITIES) -> dict:
    from scoring import registry, service
    from scoring.generator import generate
    from scoring.models import Entity
    from scoring.train import train_synthetic

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
    summary.update(_load_entities_and_model(session, entities, training_entities))
    processes = Path(settings.processes_dir)
    deployed = []
    if processes.is_dir() and any(processes.glob("*.bpmn")):
        from engine.bootstrap import form_hasher

        results = deploy(runtime, session, read_paths([processes]), "demo", form_hash=form_hasher(settings))
        deployed = [r.to_dict() for r in results]
    summary["definitions"] = deployed
    return summary


