"""Reminders before a human task's due date and escalation to the supervisors after it.

``run_reminders(session)`` is one atomic job (the worker runs it in its own transaction):

- an open task due within ``remind_within`` that was not reminded yet gets ``reminded_at`` and an
  audit event ``task_reminder`` on its instance's chain (to its assignee, or to its candidate groups);
- an open task past its due date that was not escalated yet gets ``escalated_at`` and an audit event
  ``task_escalated`` naming the supervisors' group.

Idempotent: each task is reminded and escalated at most once, also when several workers run at once
(each instance is locked and its tasks re-checked under the lock before anything is written).
Candidates are read through ``ix_human_task_status_due`` (open tasks ordered by due date), at most
``limit`` per run; the rest waits for the next run.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit, clock
from .audit import Event
from .models import HumanTask, ProcessInstance

SYSTEM_ACTOR = "system"
DEFAULT_REMIND_WITHIN = timedelta(hours=24)
SUPERVISORS_GROUP = "supervisors"

_HT = HumanTask.__table__
_PI = ProcessInstance.__table__


@dataclass
class ReminderReport:
    reminded: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"reminded": self.reminded, "escalated": self.escalated}


def _candidates(session: Session, now: datetime, remind_within: timedelta, limit: int) -> tuple[list, list]:
    base = select(_HT.c.id, _HT.c.instance_id).where(_HT.c.status == "open")
    overdue = session.execute(base.where(_HT.c.due_at < now, _HT.c.escalated_at.is_(None))
                              .order_by(_HT.c.due_at, _HT.c.id).limit(limit)).all()
    soon = session.execute(base.where(_HT.c.due_at >= now, _HT.c.due_at < now + remind_within,
                                      _HT.c.reminded_at.is_(None))
                           .order_by(_HT.c.due_at, _HT.c.id).limit(limit)).all()
    return overdue, soon


def _lock(session: Session, instance_id: int):
    q = select(_PI.c.id, _PI.c.audit_seq, _PI.c.audit_head).where(_PI.c.id == instance_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    return session.execute(q).first()


def run_reminders(session: Session, *, now: datetime | None = None,
                  remind_within: timedelta = DEFAULT_REMIND_WITHIN, supervisors_group: str = SUPERVISORS_GROUP,
                  limit: int = 500) -> ReminderReport:
    """Remind and escalate due tasks in the caller's transaction (see the module docstring)."""
    now = now or clock.now()
    report = ReminderReport()
    overdue, soon = _candidates(session, now, remind_within, limit)
    by_instance: dict[int, set[int]] = defaultdict(set)
    for task_id, instance_id in [*overdue, *soon]:
        by_instance[instance_id].add(task_id)
    for instance_id in sorted(by_instance):
        head = _lock(session, instance_id)
        if head is None:
            continue
        # re-read under the lock: another worker may have handled them meanwhile
        tasks = session.execute(
            select(_HT.c.id, _HT.c.bpmn_id, _HT.c.task_guid, _HT.c.name, _HT.c.assignee, _HT.c.candidate_groups,
                   _HT.c.due_at, _HT.c.reminded_at, _HT.c.escalated_at)
            .where(_HT.c.id.in_(sorted(by_instance[instance_id])), _HT.c.status == "open")
            .order_by(_HT.c.id)).all()
        events: list[Event] = []
        for t in tasks:
            if t.due_at is None:
                continue
            common = {"task_id": t.id, "task_name": t.name, "due_at": t.due_at.isoformat(),
                      "assignee": t.assignee, "candidate_groups": list(t.candidate_groups or [])}
            if t.due_at < now and t.escalated_at is None:
                overdue_h = round((now - t.due_at).total_seconds() / 3600, 1)
                events.append(Event("task_escalated", SYSTEM_ACTOR, instance_id, t.bpmn_id, t.task_guid,
                                    detail={**common, "to_group": supervisors_group, "overdue_hours": overdue_h}))
                session.execute(update(_HT).where(_HT.c.id == t.id).values(escalated_at=now))
                report.escalated.append(t.id)
            elif now <= t.due_at < now + remind_within and t.reminded_at is None:
                to = {"user": t.assignee} if t.assignee else {"groups": list(t.candidate_groups or [])}
                events.append(Event("task_reminder", SYSTEM_ACTOR, instance_id, t.bpmn_id, t.task_guid,
                                    detail={**common, "to": to}))
                session.execute(update(_HT).where(_HT.c.id == t.id).values(reminded_at=now))
                report.reminded.append(t.id)
        if events:
            rows, (seq, last) = audit.build_rows(audit.instance_chain(instance_id), events,
                                                 (head.audit_seq, head.audit_head))
            audit.insert_rows(session, rows)
            session.execute(update(_PI).where(_PI.c.id == instance_id).values(audit_seq=seq, audit_head=last))
    return report
