"""Delegating a task hands it to someone who could work on it (engine.policy.check_delegate_to): a task about an
entity in one district cannot go to an officer whose jurisdiction excludes that district, nor to a user without
a task role — 400 naming the receiver, nothing written — and the task page offers only those who could receive it."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.commands import tasks as task_commands
from engine.errors import InvalidInput, NotAllowed
from engine.policy import load_actor
from engine.runtime import clock
from engine.runtime.models import AuditEvent, HumanTask
from engine.runtime.users import set_jurisdiction, set_roles_and_groups
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes, start_task


@pytest.fixture
def claimed_task(web_env) -> dict:
    """An open task of the officers' group about a demo entity, claimed by ``officer``; ``officer2`` limited to
    another district."""
    rt = web_env.runtime
    with web_env.tx() as s:
        deploy_task_processes(rt, s, ("delegation_task", {"form_id": "extension_request"}))
        entity = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        other = s.scalar(select(Entity.district).where(Entity.district != entity.district).limit(1))
        ht = start_task(rt, s, "delegation_task", key=entity.uscc, due=clock.now() + timedelta(days=3))
        rt.claim(s, ht.id, "officer")
        set_jurisdiction(s, "officer2", [other], actor="admin")
        return {"task": ht.id, "instance": ht.instance_id, "district": entity.district, "other": other}


def _written(web_env, t: dict) -> tuple:
    with web_env.tx() as s:
        ht = s.get(HumanTask, t["task"])
        return ht.assignee, s.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.instance_id == t["instance"]))


def test_delegating_to_an_officer_outside_the_district_is_refused(http, web_env, claimed_task):
    t = claimed_task
    officer = http("officer")
    page = officer.get(f"/inbox/tasks/{t['task']}").text
    assert 'value="officer2"' not in page and 'value="handler"' in page  # only who could receive it
    before = _written(web_env, t)
    r = officer.post(f"/inbox/tasks/{t['task']}/delegate", {"to_user": "officer2", "reason": "本人休假"})
    assert r.status_code == 400
    text = re.sub(r"\s+", " ", r.text)
    assert f"辖区 {t['district']}" in text and "不在 officer2 的管辖范围内" in text and "不能委派给该用户" in text
    assert _written(web_env, t) == before == ("officer", before[1])

    # the receiver's jurisdiction now covers the district: the same delegation goes through
    with web_env.tx() as s:
        set_jurisdiction(s, "officer2", [t["other"], t["district"]], actor="admin")
    r = officer.post(f"/inbox/tasks/{t['task']}/delegate", {"to_user": "officer2", "reason": "本人休假"})
    assert r.status_code == 302
    assert _written(web_env, t)[0] == "officer2"


def test_delegating_to_a_user_without_a_task_role_or_unknown_is_refused(http, web_env, claimed_task):
    t = claimed_task
    with web_env.tx() as s:  # the auditor joins the officers' group: the group alone does not make a worker
        set_roles_and_groups(s, "auditor", ["auditor"], ["officers"], actor="admin")
    officer = http("officer")
    before = _written(web_env, t)
    r = officer.post(f"/inbox/tasks/{t['task']}/delegate", {"to_user": "auditor", "reason": "本人休假"})
    assert r.status_code == 400 and "不能委派给 auditor" in r.text
    r = officer.post(f"/inbox/tasks/{t['task']}/delegate", {"to_user": "nobody", "reason": "本人休假"})
    assert r.status_code == 400 and "不能委派给 nobody" in r.text
    assert _written(web_env, t) == before


def test_the_delegator_is_checked_before_the_receiver(web_env, claimed_task):
    """Who may not delegate the task learns nothing about the receiver: 403 first."""
    t = claimed_task
    with web_env.tx() as s:
        outsider = load_actor(s, "officer2")
        with pytest.raises(NotAllowed):
            task_commands.delegate(web_env.runtime, s, outsider, t["task"], "nobody", "x")
        with pytest.raises(InvalidInput, match="officer2"):
            task_commands.delegate(web_env.runtime, s, load_actor(s, "officer"), t["task"], "officer2", "x")
