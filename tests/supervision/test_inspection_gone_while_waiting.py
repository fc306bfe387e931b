"""Edge cases through ``entity_inspection`` on the real engine (SQLite and PostgreSQL): the entity ceases to exist
(message ``entity_deregistered``, correlated by USCC) while its inspection waits somewhere other than the
inspection or its review —

* at the supervisor's ``resolve_staffing`` task (no qualified inspector, so no team was ever formed),
* at ``await_publicity`` (result_B, the team already released),
* at ``await_letter`` (result_6, the team already released) —

and the inspection still closes as the gone path does for the inspection and review: the result code for the
reason (result_9-12) recorded and published, nothing left open for the instance (human tasks, jobs, message
subscriptions, incidents), the entity not put on the abnormal operations list by a wait that can no longer end."""
from __future__ import annotations

from datetime import timedelta

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, update

from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Incident, Job, MessageSubscription, ProcessInstance
from engine.runtime.worker import run_due
from engine.supervision.loop_models import Publication
from engine.supervision.registry_models import Inspector, TeamAssignment
from scoring.models import Entity
from tests.supervision.test_inspection_process import T0, open_tasks, start
from tests.supervision.test_result_codes import end_events, inspected

GONE_AT = T0 + timedelta(days=4)


def entities(db, n: int) -> list[Entity]:
    with db.tx() as s:
        return list(s.scalars(select(Entity).where(
            Entity.risk_class.in_(["A", "B"]), Entity.status == "active", Entity.abnormal_list.is_(False))
            .order_by(Entity.id).limit(n)))


def deregistered(runtime, db, uscc: str, reason: str) -> None:
    with clock.frozen(GONE_AT), db.tx() as s:
        runtime.correlate_message(s, "entity_deregistered", {"reason": reason}, {"uscc": uscc})


def nothing_open(db, iid: int) -> None:
    with db.tx() as s:
        assert s.get(ProcessInstance, iid).status == "completed"
        for model in (Job, MessageSubscription, Incident):
            assert s.scalar(select(func.count()).select_from(model).where(model.instance_id == iid)) == 0, model
        assert s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == iid, HumanTask.status == "open")) == 0


def result_codes(db, iid: int) -> list[tuple[str, str, bool]]:
    """The instance's published results, oldest first: (result code, outcome, published)."""
    with db.tx() as s:
        return [(p.payload["result_code"], p.payload["outcome"], p.published_at is not None)
                for p in s.scalars(select(Publication).where(Publication.source_instance_id == iid,
                                                             Publication.kind == "result").order_by(Publication.id))]


def completed_ids(runtime, db, iid: int) -> list[str]:
    with db.tx() as s:
        wf = runtime.load_workflow(s, iid)
    return [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED)
            if t.workflow is wf and t.task_spec.bpmn_id]


def test_entity_ceases_to_exist_while_the_supervisor_resolves_the_staffing(env):
    runtime, db = env
    with db.tx() as s:
        keep = s.scalars(select(Inspector.id).order_by(Inspector.id).limit(1)).all()
        s.execute(update(Inspector).where(Inspector.id.not_in(keep)).values(active=False))
    (e,) = entities(db, 1)
    iid = start(runtime, db, e)
    assert [t.bpmn_id for t in open_tasks(db, iid)] == ["resolve_staffing"]

    deregistered(runtime, db, e.uscc, "status_cancelled")
    nothing_open(db, iid)
    assert result_codes(db, iid) == [("result_11", "close", True)]
    assert end_events(runtime, db, iid) == ["end"]
    done = completed_ids(runtime, db, iid)
    assert "gone_at_staffing" in done and "release_team" not in done  # no team was formed: nothing to release
    with db.tx() as s:
        assert s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid)).all() == []
        assert s.get(Entity, e.id).abnormal_list is False
        assert audit.verify(s).ok


def test_entity_ceases_to_exist_while_ordered_to_publicise_or_sent_a_registered_letter(env):
    runtime, db = env
    publicise, letter = entities(db, 2)
    b_iid = inspected(runtime, db, publicise, "result_B")
    six_iid = inspected(runtime, db, letter, "result_6")
    with db.tx() as s:
        for iid, message in ((b_iid, "information_publicised"), (six_iid, "registered_letter_signed")):
            assert s.get(ProcessInstance, iid).status == "running"
            assert message in s.scalars(select(MessageSubscription.message_name)
                                        .where(MessageSubscription.instance_id == iid)).all()
        due = max(s.scalars(select(Job.due_at).where(Job.instance_id.in_([b_iid, six_iid]))).all())

    deregistered(runtime, db, publicise.uscc, "status_deregistered")
    deregistered(runtime, db, letter.uscc, "status_revoked")
    run_due(runtime, db.factory, now=due + timedelta(days=1))  # no deadline is left to list either entity

    for iid, e, first, code, gone_at in ((b_iid, publicise, "result_B", "result_9", "gone_at_publicity"),
                                         (six_iid, letter, "result_6", "result_10", "gone_at_letter")):
        nothing_open(db, iid)
        outcome = "order_to_publicise" if first == "result_B" else "registered_letter"
        assert result_codes(db, iid) == [(first, outcome, True), (code, "close", True)], first
        assert end_events(runtime, db, iid) == ["end"], first
        done = completed_ids(runtime, db, iid)
        assert gone_at in done and done.count("release_team") == 1, first  # released once, after the result
        assert "list_abnormal" not in done and "list_unreachable" not in done, first
        with db.tx() as s:
            team = s.scalars(select(TeamAssignment).where(TeamAssignment.instance_id == iid)).all()
            assert team and all(a.released_at is not None for a in team), first
            assert s.get(Entity, e.id).abnormal_list is False, first
    with db.tx() as s:
        assert audit.verify(s).ok
