"""The demo data set that ``./run`` loads: one user per role and the process library.

Idempotent: users that exist are kept, and deploying unchanged definitions creates no new version.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AppUser
from engine.runtime.users import add_user

#: (user name, roles, groups) — every demo password is ``DEMO_PASSWORD``.
DEMO_USERS = [
    ("designer", "designer", ""),
    ("officer", "officer", "officers,market_dept"),
    ("officer2", "officer", "officers,market_dept"),
    ("leader", "team_leader,officer", "officers,team_leaders"),
    ("supervisor", "supervisor", "supervisors"),
    ("auditor", "auditor", ""),
    ("admin", "admin", "admins"),
]
DEMO_PASSWORD = "regflow-demo"


def load_demo(runtime, session: Session, settings: Settings) -> dict:
    created_users = []
    for name, roles, groups in DEMO_USERS:
        if session.scalars(select(AppUser).where(AppUser.username == name)).first() is None:
            add_user(session, name, DEMO_PASSWORD, roles, groups, actor="demo")
            created_users.append(name)
    deployed = []
    processes = Path(settings.processes_dir)
    if processes.is_dir() and any(processes.glob("*.bpmn")):
        from engine.bootstrap import form_hasher

        results = deploy(runtime, session, read_paths([processes]), "demo", form_hash=form_hasher(settings))
        deployed = [r.to_dict() for r in results]
    return {"users_created": created_users, "definitions": deployed}
