"""Who may start which process through the API: every process of the library × every demo role, with the
expected status written out here (the policy: a starter role and one of the process' ``startableBy`` groups;
``rectification`` and ``enforcement`` have none — only the engine starts them). A refused start writes nothing."""
from __future__ import annotations

import requests
from sqlalchemy import func, select

from engine.runtime import users
from engine.runtime.models import AuditEvent, ProcessInstance
from engine.supervision.registry_models import CheckItem
from scoring.models import Entity

#: demo user → the processes they may start (their groups against the library's startableBy)
MAY_START = {
    "planner": {"inspection_campaign", "entity_inspection"},  # officer in planners
    "supervisor": {"entity_inspection"},  # supervisor in supervisors
    "approver": set(),  # supervisor, but approvers start nothing
    "officer": set(),
    "leader": set(),
    "designer": set(),  # no starter role
    "auditor": set(),
    "admin": set(),
}
PROCESSES = ("inspection_campaign", "entity_inspection", "rectification", "enforcement")


def _bodies(web_env) -> dict[str, dict]:
    with web_env.tx() as s:
        e = s.scalars(select(Entity).where(Entity.risk_class.is_not(None)).order_by(Entity.id).limit(1)).one()
        items = list(s.scalars(select(CheckItem.code).order_by(CheckItem.code).limit(2)))
        subject = {"uscc": e.uscc, "entity_id": e.id}
    return {
        "inspection_campaign": {"business_key": "MATRIX-CAMPAIGN"},
        "entity_inspection": {"business_key": subject["uscc"],
                              "data": {**subject, "campaign_id": None, "items": items}},
        "rectification": {"data": {**subject, "findings": [], "risk_class": None, "reinspectors": []}},
        "enforcement": {"data": {**subject, "lead_source": "complaint", "case_hazard_ids": []}},
    }


def _written(web_env) -> tuple[int, int]:
    with web_env.tx() as s:
        return (s.scalar(select(func.count()).select_from(ProcessInstance)),
                s.scalar(select(func.count()).select_from(AuditEvent)))


def test_api_start_matrix(web_env, live):
    bodies = _bodies(web_env)
    wrong = []
    for username, allowed in MAY_START.items():
        with web_env.tx() as s:
            token = users.issue_token(s, username, "matrix", actor="admin")
        for process_id in PROCESSES:
            before = _written(web_env)
            r = requests.post(live + "/api/v1/instances", headers={"Authorization": f"Bearer {token}"},
                              json={"process_id": process_id, **bodies[process_id]})
            expected = 201 if process_id in allowed else 403
            if r.status_code != expected:
                wrong.append(f"{username} starts {process_id}: {r.status_code}, expected {expected}: {r.text[:200]}")
            elif expected == 403 and _written(web_env) != before:
                wrong.append(f"{username} starts {process_id}: refused but something was written")
    assert not wrong, "\n".join(wrong)
