"""What moves an instance besides a person's task, for the runtime (``engine.runtime.runtime``): a message
delivered to the one instance waiting for it, an administrator's suspend / resume / terminate, the jobs a
worker runs (timers that fall due, retries of failed service tasks, the continuations of tasks held for the
worker, :mod:`engine.runtime.continuations`), timers rescheduled when their deadline
is computed again, and the manual retry of an incident.

Each of these is one step under the instance's lock; those that run the workflow end in the step's second
half (:mod:`engine.runtime.steps`).
"""
from __future__ import annotations

from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import TaskNotFoundException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.errors import Conflict, InvalidInput, NotFound

from . import audit, clock, continuations
from .audit import Event
from .continuations import CONTINUE_JOB
from .models import HumanTask, HumanTaskCandidate, Incident, Job, MessageSubscription, ProcessInstance
from .script_engine import StepContext
from .serializer import StateSerializer
from .step_data import SYSTEM_ACTOR, InstanceRow, StepOutcome, StepState

_PI = ProcessInstance.__table__
_HT = HumanTask.__table__
_HTC = HumanTaskCandidate.__table__
_JOB = Job.__table__
_SUB = MessageSubscription.__table__


def _task_or_none(wf, guid: str | None):
    """The workflow's task ``guid`` (a sub-workflow's too), or None when it is gone (or never was)."""
    if not guid:
        return None
    try:
        return wf.get_task_from_id(UUID(guid))
    except (TaskNotFoundException, ValueError):
        return None


class LifecycleMixin:
    """Messages, lifecycle, jobs and incidents, for :class:`engine.runtime.runtime.Runtime`: relies on its
    ``terminate_hooks``, instance locking and loading, and on the step's second half (``StepMixin``)."""

    settings: Settings
    serializer: StateSerializer
    terminate_hooks: list[Callable]

    # ------------------------------------------------------------------ messages
    def correlate_message(self, session: Session, name: str, payload: Any = None,
                          correlation: dict | None = None, business_key: str | None = None,
                          actor: str = SYSTEM_ACTOR) -> StepOutcome:
        q = select(MessageSubscription).where(MessageSubscription.message_name == name)
        if business_key is not None:
            q = q.join(ProcessInstance, ProcessInstance.id == MessageSubscription.instance_id).where(
                ProcessInstance.business_key == business_key)
        subs = session.scalars(q).all()
        wanted = correlation or {}
        matches = [s for s in subs if all(s.correlations.get(k) == v for k, v in wanted.items())]
        instance_ids = sorted({s.instance_id for s in matches})
        if not instance_ids:
            raise NotFound(f"no instance waits for message {name!r} with {wanted or 'no correlation'}")
        if len(instance_ids) > 1:
            raise Conflict(f"message {name!r} matches {len(instance_ids)} instances {instance_ids}: "
                           "give a correlation that names one")
        self._run_before_step(session)
        inst = self._lock_instance(session, instance_ids[0])
        if inst.status != "running":
            raise Conflict(f"instance {inst.id} is {inst.status}")
        wf = self._load(session, inst, StepContext(session, inst.id, inst.business_key, actor))
        st = StepState(before=self._snapshot(wf, inst))
        sub = next(s for s in matches if s.instance_id == inst.id)
        task = wf.get_task_from_id(UUID(sub.task_guid))
        definition = next(d for d in ([task.task_spec.event_definition] +
                                      list(getattr(task.task_spec.event_definition, "event_definitions", [])))
                          if isinstance(d, MessageEventDefinition) and d.name == name)
        correlations: dict[str, dict] = {}
        for prop in definition.correlation_properties:
            value = (wanted.get(prop.name) if prop.name in wanted else
                     (payload or {}).get(prop.name) if isinstance(payload, dict) else None)
            for key in prop.correlation_keys:
                correlations.setdefault(key, {})[prop.name] = value
        if isinstance(payload, dict) or payload is None:
            # the catch re-reads the correlation properties from the payload
            payload = {**{p.name: correlations.get(k, {}).get(p.name) for p in definition.correlation_properties
                          for k in p.correlation_keys}, **(payload or {})}
        try:
            # the event definition must be of the catching definition's own class to match it
            wf.send_event(BpmnEvent(type(definition)(name, definition.correlation_properties),
                                    payload, correlations=correlations))
        except WorkflowException as exc:
            raise Conflict(f"instance {inst.id} does not accept message {name!r}: {exc}") from exc
        st.events.append(Event("message_received", actor, inst.id, sub.bpmn_id, sub.task_guid,
                               detail={"message": name, "correlation": wanted, "payload": payload}))
        return self._advance(session, inst, wf, st, actor)

    # ------------------------------------------------------------------ lifecycle
    def suspend(self, session: Session, instance_id: int, user: str, reason: str) -> InstanceRow:
        return self._set_status(session, instance_id, user, reason, "suspended", {"running"})

    def resume(self, session: Session, instance_id: int, user: str, reason: str) -> InstanceRow:
        return self._set_status(session, instance_id, user, reason, "running", {"suspended"})

    def terminate(self, session: Session, instance_id: int, user: str, reason: str) -> InstanceRow:
        inst = self._set_status(session, instance_id, user, reason, "terminated", {"running", "suspended"})
        now = clock.now()
        open_ids = select(_HT.c.id).where(_HT.c.instance_id == inst.id, _HT.c.status == "open")
        session.execute(delete(_HTC).where(_HTC.c.task_id.in_(open_ids)))
        session.execute(update(_HT).where(_HT.c.instance_id == inst.id, _HT.c.status == "open")
                        .values(status="cancelled", completed_at=now))
        session.execute(delete(_JOB).where(_JOB.c.instance_id == inst.id))
        session.execute(delete(_SUB).where(_SUB.c.instance_id == inst.id))
        session.execute(update(Incident).where(Incident.instance_id == inst.id, Incident.status == "open")
                        .values(status="resolved", resolved_at=now, resolved_by=user))
        inst.ended_at = now
        session.execute(update(_PI).where(_PI.c.id == inst.id).values(ended_at=now))
        cleanup: dict = {}
        for hook in self.terminate_hooks:
            cleanup.update(hook(session, inst.id, reason, now) or {})
        if cleanup:
            self._append_events(session, inst, [Event("termination_cleanup", user, inst.id, detail=cleanup)])
            self._save_instance_head(session, inst)
        return inst

    def _set_status(self, session, instance_id, user, reason, new_status, allowed) -> InstanceRow:
        if not reason or not reason.strip():
            raise InvalidInput("a reason is required")
        self._check_user(session, user)
        inst = self._lock_instance(session, instance_id)
        if inst.status not in allowed:
            raise Conflict(f"instance {instance_id} is {inst.status}; cannot become {new_status}")
        old = inst.status
        inst.status, inst.status_reason, inst.updated_at = new_status, f"{user}: {reason}", clock.now()
        inst.rev += 1
        kind = {"suspended": "instance_suspended", "running": "instance_resumed",
                "terminated": "instance_terminated"}[new_status]
        self._append_events(session, inst, [
            Event(kind, user, inst.id, detail={"reason": reason, "from": old, "to": new_status})])
        self._save_instance_head(session, inst, status=inst.status, status_reason=inst.status_reason,
                                 updated_at=inst.updated_at, rev=inst.rev)
        return inst

    # ------------------------------------------------------------------ jobs: timers, retries, continuations
    def run_job(self, session: Session, job: Job, actor: str = "worker") -> StepOutcome | None:
        """Run one claimed job inside the caller's transaction; the job row is consumed."""
        self._run_before_step(session)
        inst = self._lock_instance(session, job.instance_id)
        session.execute(delete(_JOB).where(_JOB.c.id == job.id))
        if inst.status != "running":
            return None
        step = StepContext(session, inst.id, inst.business_key, actor)
        wf = self._load(session, inst, step)
        st = StepState(before=self._snapshot(wf, inst))
        st.before.timers.pop(job.task_guid or "", None)  # its row is gone already
        if job.kind == "timer":
            st.events.append(Event("timer_fired", actor, inst.id, job.bpmn_id, job.task_guid,
                                   detail={"due_at": job.due_at.isoformat()}))
            wf.refresh_timers()
        elif job.kind == "retry":
            task = wf.get_task_from_id(UUID(job.task_guid)) if job.task_guid else None
            if task is None or task.state != TaskState.ERROR:
                return None
            st.events.append(Event("service_retried", actor, inst.id, job.bpmn_id, job.task_guid,
                                   detail={"attempt": job.attempts + 1}))
            wf.reset_from_task_id(task.id)
            continuations.release(task)  # an asynchronous task's retry runs here, in the worker, at once
        elif job.kind == CONTINUE_JOB:
            task = _task_or_none(wf, job.task_guid)
            if task is None or task.state != TaskState.READY:
                return None
            st.before.held.pop(job.task_guid, None)  # its row is gone already
            st.events.append(Event("async_continuation_started", actor, inst.id, job.bpmn_id, job.task_guid,
                                   detail={"queued_at": job.created_at.isoformat()}))
            continuations.release(task)
        else:
            raise InvalidInput(f"unknown job kind {job.kind!r}")
        attempts = {"retry": job.attempts + 1, CONTINUE_JOB: job.attempts}.get(job.kind, 0)
        return self._advance(session, inst, wf, st, actor, attempts=attempts)

    def reschedule_timers(self, session: Session, recompute: Callable[[dict], dict | None], *,
                          actor: str = SYSTEM_ACTOR, reason: str = "") -> list[dict]:
        """Recompute waiting timers that remember how their deadline was computed.

        ``recompute(deadline) -> new deadline dict (with "at") or None`` gets each timer's remembered
        deadline (see :mod:`engine.runtime.timers`); a changed one is rescheduled in one step per
        instance (state, job row and an audited ``timer_rescheduled`` event)."""
        def pick(task) -> tuple[str, dict | None] | None:
            old = task.internal_data.get("deadline")
            if not old:
                return None
            new = recompute(old)
            if not new or new.get("at") == old.get("at"):
                return None
            return new["at"], new

        changed: list[dict] = []
        instance_ids = session.execute(
            select(_JOB.c.instance_id).join(_PI, _PI.c.id == _JOB.c.instance_id)
            .where(_JOB.c.kind == "timer", _PI.c.status.in_(("running", "suspended"))).distinct()).scalars().all()
        for instance_id in instance_ids:
            changed += self._retime_instance(session, instance_id, pick, actor, reason)
        return changed

    def move_timers(self, session: Session, moves: dict[int, dict[str, Any]], *, actor: str = SYSTEM_ACTOR,
                    reason: str = "") -> list[dict]:
        """Make waiting timer events fire at new (aware) times, from outside a step: ``moves`` maps an instance id
        to ``{bpmn_id: datetime}`` — e.g. the timers that read a row's deadline (``order["deadline"]``) after that
        deadline was computed again. One step per instance, as :meth:`reschedule_timers` (state, job row, an
        audited ``timer_rescheduled`` event); instances that are not running or suspended, and timers that are
        not waiting or already at that time, are left alone. A remembered deadline is forgotten, as
        :func:`engine.runtime.timers.move_waiting_timers` does."""
        changed: list[dict] = []
        for instance_id in sorted(moves):
            times = moves[instance_id]
            for at in times.values():
                if getattr(at, "tzinfo", None) is None:
                    raise InvalidInput(f"timer time {at!r} has no timezone")
            status = session.scalar(select(_PI.c.status).where(_PI.c.id == instance_id))
            if status not in ("running", "suspended"):
                continue

            def pick(task, times=times) -> tuple[str, dict | None] | None:
                at = times.get(task.task_spec.bpmn_id)
                if at is None or task.internal_data.get("event_value") == at.isoformat():
                    return None
                return at.isoformat(), None

            changed += self._retime_instance(session, instance_id, pick, actor, reason)
        return changed

    def _retime_instance(self, session: Session, instance_id: int, pick: Callable, actor: str,
                         reason: str) -> list[dict]:
        """One step: each waiting timer of the instance for which ``pick(task)`` gives ``(new ISO time, new
        remembered deadline or None)`` fires at that time instead; audited ``timer_rescheduled``."""
        changed: list[dict] = []
        inst = self._lock_instance(session, instance_id)
        wf = self._load(session, inst, StepContext(session, inst.id, inst.business_key, actor))
        st = StepState(before=self._snapshot(wf, inst))
        for task in wf.get_tasks(state=TaskState.WAITING):
            if "event_value" not in task.internal_data:
                continue
            picked = pick(task)
            if picked is None:
                continue
            new_at, new_deadline = picked
            old_at = (task.internal_data.get("deadline") or {}).get("at") or task.internal_data["event_value"]
            if new_deadline is None:
                task.internal_data.pop("deadline", None)
            else:
                task.internal_data["deadline"] = new_deadline
            task.internal_data["event_value"] = new_at
            entry = {"instance_id": inst.id, "bpmn_id": task.task_spec.bpmn_id, "old": old_at, "new": new_at,
                     "provisional": bool((new_deadline or {}).get("provisional"))}
            changed.append(entry)
            st.events.append(Event("timer_rescheduled", actor, inst.id, task.task_spec.bpmn_id, str(task.id),
                                   detail={**entry, "reason": reason}))
        if st.events:
            if inst.status == "suspended":  # keep it suspended: save the new times without running it
                inst.state, inst.rev = self.serializer.dumps(wf), inst.rev + 1
                rows, (inst.audit_seq, inst.audit_head) = audit.build_rows(
                    audit.instance_chain(inst.id), st.events, (inst.audit_seq, inst.audit_head))
                audit.insert_rows(session, rows)
                self._save_instance_head(session, inst, state=inst.state, rev=inst.rev)
                for ev in st.events:
                    session.execute(update(_JOB).where(_JOB.c.instance_id == inst.id,
                                                       _JOB.c.task_guid == ev.task_guid, _JOB.c.kind == "timer")
                                    .values(due_at=clock.parse_iso(ev.detail["new"])))
            else:
                self._advance(session, inst, wf, st, actor)
        return changed

    def retry_incident(self, session: Session, incident_id: int, user: str) -> StepOutcome:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        if incident.status != "open":
            raise Conflict(f"incident {incident_id} is {incident.status}")
        self._run_before_step(session)
        inst = self._lock_instance(session, incident.instance_id)
        if inst.status != "running":
            raise Conflict(f"instance {inst.id} is {inst.status}; resume it first")
        step = StepContext(session, inst.id, inst.business_key, user)
        wf = self._load(session, inst, step)
        task = wf.get_task_from_id(UUID(incident.task_guid)) if incident.task_guid else None
        if task is None or task.state != TaskState.ERROR:
            raise Conflict(f"task {incident.bpmn_id} of instance {inst.id} is not in error any more")
        st = StepState(before=self._snapshot(wf, inst))
        now = clock.now()
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, user
        audit.system_event(session, "incident_retried", user, incident_id=incident.id, instance_id=inst.id)
        st.events.append(Event("incident_retried", user, inst.id, incident.bpmn_id, incident.task_guid,
                               detail={"incident_id": incident.id}))
        wf.reset_from_task_id(task.id)
        if continuations.is_async_before(task.task_spec):
            # an asynchronous task runs in the worker again, never in the retrying person's request; its continue
            # job carries the attempts, so that failing again opens a new incident at once
            continuations.queue_with_attempts(task, self.settings.service_retries)
        # a manual retry that fails again opens a new incident at once
        return self._advance(session, inst, wf, st, user, attempts=self.settings.service_retries)
