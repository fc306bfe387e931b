"""``start_demo_campaigns`` on a small demo (SQLite and PostgreSQL): one campaign driven through plan and
approval until its inspections wait for officers (one delegated to ``leader``, one to ``officer``), one
left at the approval task; a second call adds nothing."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from engine.config import load_settings
from engine.demo import load_demo, start_demo_campaigns
from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, ProcessInstance
from engine.supervision import calendar as cal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=cal.SHANGHAI)


def test_demo_campaigns_give_officers_real_tasks_once(db, runtime):

    settings = load_settings(database_url=db.url)
    with clock.frozen(T0):
        with db.tx() as s:
            cal.seed_from_chinese_calendar(s)
        with db.tx() as s:
            load_demo(runtime, s, settings, entities=400, training_entities=3000)
        with db.tx() as s:
            cal.refresh(s)
        doc = start_demo_campaigns(runtime, db.factory, settings)
        again = start_demo_campaigns(runtime, db.factory, settings)
    cal.use_calendar(None)
    assert again == {"campaigns": "kept"}
    first, second = doc["campaign_instances"]
    with db.tx() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)
                        .where(ProcessInstance.process_id == "inspection_campaign")) == 2
        children = s.scalar(select(func.count()).select_from(ProcessInstance)
                            .where(ProcessInstance.parent_instance_id == first))
        assert children == doc["inspections_launched"] >= 2
        open_ = list(s.scalars(select(HumanTask).where(HumanTask.status == "open")))
        by_instance = {}
        for t in open_:
            by_instance.setdefault(t.instance_id, []).append(t)
        # the second campaign waits for the approver
        assert [(t.bpmn_id, t.candidate_groups) for t in by_instance[second]] == [("approve", ["approvers"])]
        # the first waits for its children, which wait at their inspection (or a staffing decision)
        assert first not in by_instance
        kids = [t for t in open_ if t.instance_id not in (first, second)]
        assert len(kids) == children and {t.bpmn_id for t in kids} <= {"inspect", "resolve_staffing"}
        inspect = [t for t in kids if t.bpmn_id == "inspect"]
        assert inspect and all(t.assignee for t in inspect)
        assignees = {t.assignee for t in inspect}
        assert {"leader", "officer"} <= assignees
        assert all(a in ("leader", "officer") or a.startswith("demo") for a in assignees)
        assert doc["delegated"] == {"leader": doc["delegated"]["leader"], "officer": doc["delegated"]["officer"]}
        assert audit.verify(s).ok
