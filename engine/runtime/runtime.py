"""The runtime: every change to an instance is one atomic step (DESIGN.md §3).

    lock the instance and check its rev -> load its state -> act -> do_engine_steps ->
    save with rev + 1 -> rewrite projections (human_task, job, incident, message_subscription) ->
    append audit events -> (the caller) commits.

Service tasks run inside the engine steps; their database writes join the transaction in a
savepoint. When one raises after a person's completion was accepted, the completion and everything
before the failing task are kept; the task waits in ERROR for a retry job (with backoff) and after
``service_retries`` failures an open incident names it. A failure before anything was accepted rolls
back the whole step. Functions here take a ``Session`` and never commit.
"""
from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.config import Settings, load_settings
from engine.errors import Conflict, FormValidationError, InvalidInput, NotAllowed, NotFound

from . import audit, clock
from .audit import Event
from .models import (
    AppGroup,
    AppUser,
    HumanTask,
    HumanTaskCandidate,
    Incident,
    Job,
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    UserGroup,
)
from .script_engine import RegflowScriptEngine, StepContext, UnknownOperator
from .scripting import ScriptTimeout
from .serializer import LIBRARY_VERSION, SERIALIZER_VERSION, RegflowWorkflow, StateSerializer
from .services import BpmnError, ServiceRegistry, registry as default_registry

log = logging.getLogger(__name__)

#: ``form_validator(form_id, data) -> {field: message}``; the forms package plugs in here.
FormValidator = Callable[[str, dict], dict]

SYSTEM_ACTOR = "system"


@dataclass
class StepOutcome:
    instance: ProcessInstance
    failure: dict | None = None


@dataclass
class _StepState:
    """What one step collects while it runs, turned into audit rows and projections at the end."""

    events: list[Event] = field(default_factory=list)
    completed_human_guids: set[str] = field(default_factory=set)


def _is_timer(definition) -> bool:
    if isinstance(definition, TimerEventDefinition):
        return True
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return False


def _message_names(definition) -> list[str]:
    if isinstance(definition, MessageEventDefinition):
        return [definition.name]
    if isinstance(definition, MultipleEventDefinition):
        return [d.name for d in definition.event_definitions if isinstance(d, MessageEventDefinition)]
    return []


def _shallow_diff(before: dict, after: dict) -> dict:
    diff: dict[str, Any] = {}
    for key, value in after.items():
        if key not in before:
            diff[key] = {"new": value}
        elif before[key] != value:
            diff[key] = {"old": before[key], "new": value}
    for key in before:
        if key not in after:
            diff[key] = {"old": before[key], "deleted": True}
    return diff


def _to_datetime(value, base: datetime) -> datetime | None:
    """A dueIn value: timedelta, aware datetime, ISO duration ("P5D") or ISO date-time."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return base + value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"dueIn gave a naive datetime {value!r}")
        return value
    text = str(value)
    if text.upper().startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text)
        return base + TimerEventDefinition.get_timedelta_from_start(parsed, base)
    return clock.parse_iso(text)


class Runtime:
    """Deploys definitions and runs instances. One per process; thread-safe (no per-step state)."""

    def __init__(self, settings: Settings | None = None, services: ServiceRegistry | None = None,
                 form_validator: FormValidator | None = None, helpers: dict | None = None,
                 before_step: list[Callable[[Session], None]] | None = None,
                 serializer_hooks: list[Callable] | None = None):
        self.settings = settings or load_settings()
        self.services = services or default_registry
        self.form_validator = form_validator
        self.helpers = dict(helpers or {})
        #: called with the session before every step (e.g. reload a calendar another process changed)
        self.before_step = list(before_step or [])
        self._specs: dict[int, tuple[Any, dict]] = {}
        self._flows: dict[int, dict] = {}
        self._forms: dict[int, dict] = {}
        self._lock = threading.Lock()
        self.serializer = StateSerializer(self._resolve_spec, serializer_hooks or [])

    def _run_before_step(self, session: Session) -> None:
        for hook in self.before_step:
            hook(session)

    # ------------------------------------------------------------------ definitions and specs
    def _resolve_spec(self, definition_id: int):
        return self._specs[definition_id]

    def load_definition(self, session: Session, definition_id: int) -> ProcessDefinition:
        definition = session.get(ProcessDefinition, definition_id)
        if definition is None:
            raise NotFound(f"process definition {definition_id} not found")
        if definition_id not in self._specs:
            spec, subs = self.serializer.spec_from_json(definition.spec_json)
            with self._lock:
                self._specs[definition_id] = (spec, subs)
                self._flows[definition_id] = definition.flow_index
                self._forms[definition_id] = definition.forms or {}
        return definition

    def latest_definition(self, session: Session, process_id: str) -> ProcessDefinition:
        definition = session.scalars(
            select(ProcessDefinition).where(ProcessDefinition.process_id == process_id)
            .order_by(ProcessDefinition.version.desc()).limit(1)).first()
        if definition is None:
            raise NotFound(f"process {process_id!r} is not deployed")
        return self.load_definition(session, definition.id)

    def script_engine(self, step: StepContext | None) -> RegflowScriptEngine:
        return RegflowScriptEngine(self.services, step, time_budget_s=self.settings.script_time_budget_s,
                                   helpers=self.helpers)

    # ------------------------------------------------------------------ instances: load / save
    def _lock_instance(self, session: Session, instance_id: int) -> ProcessInstance:
        q = select(ProcessInstance).where(ProcessInstance.id == instance_id)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        # SQLite: every transaction starts with BEGIN IMMEDIATE, which already holds the write lock.
        inst = session.scalars(q.execution_options(populate_existing=True)).first()
        if inst is None:
            raise NotFound(f"instance {instance_id} not found")
        return inst

    def _load(self, session: Session, inst: ProcessInstance, step: StepContext) -> RegflowWorkflow:
        self.load_definition(session, inst.definition_id)
        wf = self.serializer.loads(inst.state, inst.serializer_version)
        wf.script_engine = self.script_engine(step)
        return wf

    def load_workflow(self, session: Session, instance_id: int) -> RegflowWorkflow:
        """Read-only view of an instance's workflow (no lock, nothing saved)."""
        inst = session.get(ProcessInstance, instance_id)
        if inst is None:
            raise NotFound(f"instance {instance_id} not found")
        return self._load(session, inst, StepContext(session, inst.id, inst.business_key, SYSTEM_ACTOR))

    # ------------------------------------------------------------------ start
    def start(self, session: Session, process_id: str, *, business_key: str | None = None,
              data: dict | None = None, actor: str = SYSTEM_ACTOR,
              parent_instance_id: int | None = None) -> StepOutcome:
        if data is not None and not isinstance(data, dict):
            raise InvalidInput("start data must be a JSON object")
        self._run_before_step(session)
        definition = self.latest_definition(session, process_id)
        spec, subs = self._specs[definition.id]
        now = clock.now()
        inst = ProcessInstance(definition_id=definition.id, process_id=process_id, business_key=business_key,
                               status="running", state="", serializer_version=SERIALIZER_VERSION,
                               library_version=LIBRARY_VERSION, rev=0, parent_instance_id=parent_instance_id,
                               started_by=actor, started_at=now, updated_at=now)
        session.add(inst)
        session.flush()
        step = StepContext(session, inst.id, business_key, actor)
        wf = RegflowWorkflow(spec, subs, script_engine=self.script_engine(step), spec_ref=definition.id)
        start_tasks = wf.get_tasks(state=TaskState.READY)
        if data:
            start_tasks[0].set_data(**data)
        st = _StepState()
        st.events.append(Event("instance_started", actor, inst.id, detail={
            "process_id": process_id, "version": definition.version, "definition_id": definition.id,
            "business_key": business_key}, data_diff={k: {"new": v} for k, v in (data or {}).items()}))
        return self._advance(session, inst, wf, st, actor, new=True)

    # ------------------------------------------------------------------ human tasks
    def _get_human_task(self, session: Session, task_id: int) -> HumanTask:
        ht = session.get(HumanTask, task_id, populate_existing=True)
        if ht is None:
            raise NotFound(f"task {task_id} not found")
        return ht

    def user_groups(self, session: Session, username: str) -> set[str]:
        rows = session.execute(select(AppGroup.name).join(UserGroup, UserGroup.group_id == AppGroup.id)
                               .join(AppUser, AppUser.id == UserGroup.user_id)
                               .where(AppUser.username == username)).scalars()
        return set(rows)

    def _check_user(self, session: Session, username: str) -> AppUser:
        user = session.scalars(select(AppUser).where(AppUser.username == username)).first()
        if user is None or not user.active:
            raise NotAllowed(f"unknown or inactive user {username!r}")
        return user

    def may_work_on(self, session: Session, ht: HumanTask, username: str) -> bool:
        if ht.assignee:
            return ht.assignee == username
        return bool(set(ht.candidate_groups or []) & self.user_groups(session, username))

    def claim(self, session: Session, task_id: int, user: str) -> HumanTask:
        ht = self._get_human_task(session, task_id)
        self._lock_instance(session, ht.instance_id)
        session.refresh(ht)
        self._check_user(session, user)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        if ht.assignee == user:
            return ht
        if not set(ht.candidate_groups or []) & self.user_groups(session, user):
            raise NotAllowed(f"{user} is not in any candidate group of task {task_id} "
                             f"({', '.join(ht.candidate_groups or []) or 'none'})")
        if ht.assignee:
            raise Conflict(f"task {task_id} is already claimed by {ht.assignee}")
        ht.assignee, ht.claimed_at = user, clock.now()
        audit.append(session, audit.instance_chain(ht.instance_id), [
            Event("task_claimed", user, ht.instance_id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        return ht

    def unclaim(self, session: Session, task_id: int, user: str) -> HumanTask:
        ht = self._get_human_task(session, task_id)
        self._lock_instance(session, ht.instance_id)
        session.refresh(ht)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        if ht.assignee != user:
            raise NotAllowed(f"task {task_id} is not claimed by {user}")
        ht.assignee, ht.claimed_at = None, None
        audit.append(session, audit.instance_chain(ht.instance_id), [
            Event("task_unclaimed", user, ht.instance_id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        return ht

    def delegate(self, session: Session, task_id: int, user: str, to_user: str) -> HumanTask:
        """Hand a claimed task to a colleague (audited). Only the current assignee may delegate."""
        ht = self._get_human_task(session, task_id)
        self._lock_instance(session, ht.instance_id)
        session.refresh(ht)
        self._check_user(session, to_user)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        if ht.assignee != user and not (ht.assignee is None and self.may_work_on(session, ht, user)):
            raise NotAllowed(f"{user} may not delegate task {task_id}")
        ht.assignee, ht.claimed_at = to_user, clock.now()
        audit.append(session, audit.instance_chain(ht.instance_id), [
            Event("task_delegated", user, ht.instance_id, ht.bpmn_id, ht.task_guid,
                  detail={"task_id": ht.id, "to": to_user})])
        return ht

    def complete_task(self, session: Session, task_id: int, user: str, data: dict | None = None,
                      rev: int | None = None) -> StepOutcome:
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidInput("task data must be a JSON object")
        self._run_before_step(session)
        ht = self._get_human_task(session, task_id)
        inst = self._lock_instance(session, ht.instance_id)
        session.refresh(ht)
        if rev is not None and rev != inst.rev:
            raise Conflict(f"instance {inst.id} is at rev {inst.rev}, not {rev}: reload and retry")
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}"
                           + (f" (by {ht.completed_by})" if ht.completed_by else ""))
        if inst.status != "running":
            raise Conflict(f"instance {inst.id} is {inst.status}")
        self._check_user(session, user)
        if not self.may_work_on(session, ht, user):
            who = f"assigned to {ht.assignee}" if ht.assignee else \
                f"for groups {', '.join(ht.candidate_groups or []) or '(none)'}"
            raise NotAllowed(f"task {task_id} is {who}; {user} may not complete it")
        if ht.form_id and self.form_validator is not None:
            errors = self.form_validator(ht.form_id, data)
            if errors:
                raise FormValidationError(f"form {ht.form_id} is not valid", errors)
        step = StepContext(session, inst.id, inst.business_key, user)
        wf = self._load(session, inst, step)
        task = wf.get_task_from_id(UUID(ht.task_guid))
        if task is None or task.state != TaskState.READY:
            raise Conflict(f"task {task_id} is no longer ready in instance {inst.id}")
        before = dict(task.data)
        task.data.update(data)
        task.run()
        st = _StepState()
        st.completed_human_guids.add(ht.task_guid)
        now = clock.now()
        ht.status, ht.completed_at, ht.completed_by = "completed", now, user
        if ht.assignee is None:
            ht.assignee = user
        session.execute(delete(HumanTaskCandidate).where(HumanTaskCandidate.task_id == ht.id))
        st.events.append(Event("task_completed", user, inst.id, ht.bpmn_id, ht.task_guid,
                               flow_ids=self._incoming_flow(wf, inst.definition_id, task),
                               data_diff=_shallow_diff(before, task.data), detail={"task_id": ht.id}))
        return self._advance(session, inst, wf, st, user)

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
        sub = next(s for s in matches if s.instance_id == inst.id)
        task = wf.get_task_from_id(UUID(sub.task_guid))
        definition = next(d for d in ([task.task_spec.event_definition] +
                                      list(getattr(task.task_spec.event_definition, "event_definitions", [])))
                          if isinstance(d, MessageEventDefinition) and d.name == name)
        correlations = {}
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
        st = _StepState()
        st.events.append(Event("message_received", actor, inst.id, sub.bpmn_id, sub.task_guid,
                               detail={"message": name, "correlation": wanted, "payload": payload}))
        return self._advance(session, inst, wf, st, actor)

    # ------------------------------------------------------------------ lifecycle
    def suspend(self, session: Session, instance_id: int, user: str, reason: str) -> ProcessInstance:
        return self._set_status(session, instance_id, user, reason, "suspended", {"running"})

    def resume(self, session: Session, instance_id: int, user: str, reason: str) -> ProcessInstance:
        return self._set_status(session, instance_id, user, reason, "running", {"suspended"})

    def terminate(self, session: Session, instance_id: int, user: str, reason: str) -> ProcessInstance:
        inst = self._set_status(session, instance_id, user, reason, "terminated", {"running", "suspended"})
        now = clock.now()
        open_ids = select(HumanTask.id).where(HumanTask.instance_id == inst.id, HumanTask.status == "open")
        session.execute(delete(HumanTaskCandidate).where(HumanTaskCandidate.task_id.in_(open_ids)))
        session.execute(update(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status == "open")
                        .values(status="cancelled", completed_at=now))
        session.execute(delete(Job).where(Job.instance_id == inst.id))
        session.execute(delete(MessageSubscription).where(MessageSubscription.instance_id == inst.id))
        session.execute(update(Incident).where(Incident.instance_id == inst.id, Incident.status == "open")
                        .values(status="resolved", resolved_at=now, resolved_by=user))
        inst.ended_at = now
        return inst

    def _set_status(self, session, instance_id, user, reason, new_status, allowed) -> ProcessInstance:
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
        audit.append(session, audit.instance_chain(inst.id), [
            Event(kind, user, inst.id, detail={"reason": reason, "from": old, "to": new_status})])
        return inst

    # ------------------------------------------------------------------ jobs: timers and retries
    def run_job(self, session: Session, job: Job, actor: str = "worker") -> StepOutcome | None:
        """Run one claimed job inside the caller's transaction; the job row is consumed."""
        self._run_before_step(session)
        inst = self._lock_instance(session, job.instance_id)
        session.execute(delete(Job).where(Job.id == job.id))
        if inst.status != "running":
            return None
        step = StepContext(session, inst.id, inst.business_key, actor)
        wf = self._load(session, inst, step)
        st = _StepState()
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
        else:
            raise InvalidInput(f"unknown job kind {job.kind!r}")
        return self._advance(session, inst, wf, st, actor, attempts=job.attempts + 1 if job.kind == "retry" else 0)

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
        now = clock.now()
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, user
        audit.system_event(session, "incident_retried", user, incident_id=incident.id, instance_id=inst.id)
        st = _StepState()
        st.events.append(Event("incident_retried", user, inst.id, incident.bpmn_id, incident.task_guid,
                               detail={"incident_id": incident.id}))
        wf.reset_from_task_id(task.id)
        # a manual retry that fails again opens a new incident at once
        return self._advance(session, inst, wf, st, user, attempts=self.settings.service_retries)

    # ------------------------------------------------------------------ the step's second half
    def _advance(self, session: Session, inst: ProcessInstance, wf: RegflowWorkflow, st: _StepState,
                 actor: str, *, new: bool = False, attempts: int = 0) -> StepOutcome:
        completed: list = []
        failure: dict | None = None
        try:
            wf.do_engine_steps(did_complete_task=completed.append)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is lost
            failure = self._record_failure(session, inst, wf, st, exc, actor, attempts)
        flows = self._flows.get(inst.definition_id, {})
        for task in completed:
            spec = task.task_spec
            if spec.bpmn_id is None or task.state != TaskState.COMPLETED:
                continue
            parent = task.parent
            before = parent.data if parent is not None else {}
            st.events.append(Event("element_completed", actor, inst.id, spec.bpmn_id, str(task.id),
                                   flow_ids=self._incoming_flow(wf, inst.definition_id, task, flows),
                                   data_diff=_shallow_diff(before, task.data),
                                   detail={"type": spec.bpmn_name and type(spec).__name__ or type(spec).__name__,
                                           "name": spec.bpmn_name, "process": task.workflow.spec.name}))
        now = clock.now()
        if wf.completed and failure is None:
            inst.status, inst.ended_at = "completed", now
            st.events.append(Event("instance_completed", actor, inst.id, detail={"data_keys": sorted(wf.data)}))
        inst.state = self.serializer.dumps(wf)
        inst.rev += 1
        inst.updated_at = now
        self._project(session, inst, wf, st, actor, new=new)
        audit.append(session, audit.instance_chain(inst.id), st.events, new_chain=new)
        return StepOutcome(inst, failure)

    def _incoming_flow(self, wf, definition_id, task, flows=None) -> list[str]:
        flows = flows if flows is not None else self._flows.get(definition_id, {})
        parent = task.parent
        while parent is not None and parent.task_spec.bpmn_id is None:
            parent = parent.parent
        if parent is None:
            return []
        index = flows.get(task.workflow.spec.name, {})
        flow = index.get(f"{parent.task_spec.bpmn_id}|{task.task_spec.bpmn_id}")
        return [flow] if flow else []

    def _record_failure(self, session, inst, wf, st, exc, actor, attempts) -> dict:
        errored = [t for t in wf.get_tasks(state=TaskState.ERROR)]
        task = errored[0] if errored else None
        root = exc
        while getattr(root, "exception", None) is not None and root.exception is not root:
            root = root.exception  # WorkflowTaskException wraps the original error
        bpmn_id = task.task_spec.bpmn_id if task else None
        guid = str(task.id) if task else None
        message = f"{type(root).__name__}: {root}"
        stack = "".join(traceback.format_exception(exc))
        is_service = task is not None and isinstance(task.task_spec, ServiceTask)
        retryable = is_service and not isinstance(root, (ScriptTimeout, UnknownOperator, BpmnError))
        now = clock.now()
        st.events.append(Event("service_failed" if is_service else "step_failed", actor, inst.id, bpmn_id, guid,
                               detail={"error": message, "attempt": attempts + 1}))
        if retryable and attempts < self.settings.service_retries:
            delay = self.settings.retry_backoff_s * (2 ** attempts)
            session.add(Job(kind="retry", instance_id=inst.id, task_guid=guid, bpmn_id=bpmn_id,
                            due_at=now + timedelta(seconds=delay), attempts=attempts, last_error=message,
                            created_at=now))
            return {"retry_in_s": delay, "error": message, "bpmn_id": bpmn_id}
        incident = Incident(instance_id=inst.id, task_guid=guid, bpmn_id=bpmn_id, error_type=type(root).__name__,
                            message=message, stack=stack, attempts=attempts + 1, status="open", created_at=now)
        session.add(incident)
        session.flush()
        st.events.append(Event("incident_opened", actor, inst.id, bpmn_id, guid,
                               detail={"incident_id": incident.id, "error": message}))
        log.warning("incident %s on instance %s at %s: %s", incident.id, inst.id, bpmn_id, message)
        return {"incident_id": incident.id, "error": message, "bpmn_id": bpmn_id}

    # ------------------------------------------------------------------ projections
    def _project(self, session: Session, inst: ProcessInstance, wf: RegflowWorkflow, st: _StepState, actor: str,
                 *, new: bool) -> None:
        now = clock.now()
        ready = {str(t.id): t for t in wf.get_tasks(state=TaskState.READY, manual=True)} \
            if inst.status == "running" else {}
        existing: dict[str, HumanTask] = {}
        if not new:
            existing = {h.task_guid: h for h in session.scalars(
                select(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status == "open"))}
        for guid, ht in existing.items():
            if guid not in ready and guid not in st.completed_human_guids:
                ht.status, ht.completed_at = "cancelled", now
                session.execute(delete(HumanTaskCandidate).where(HumanTaskCandidate.task_id == ht.id))
                st.events.append(Event("task_cancelled", actor, inst.id, ht.bpmn_id, guid, detail={"task_id": ht.id}))
        for guid, task in ready.items():
            if guid in existing:
                continue
            ht = self._new_human_task(inst, wf, task, now)
            session.add(ht)
            session.flush()
            if ht.candidate_groups:
                session.execute(insert(HumanTaskCandidate),
                                [{"task_id": ht.id, "group_name": g} for g in ht.candidate_groups])
            st.events.append(Event("task_created", actor, inst.id, ht.bpmn_id, guid,
                                   flow_ids=self._incoming_flow(wf, inst.definition_id, task), detail={
                "task_id": ht.id, "assignee": ht.assignee, "candidate_groups": ht.candidate_groups,
                "due_at": ht.due_at.isoformat() if ht.due_at else None, "form_id": ht.form_id}))

        # timers
        desired: dict[str, tuple] = {}
        subscriptions: dict[str, tuple] = {}
        if inst.status == "running":
            for task in wf.get_tasks(state=TaskState.WAITING):
                definition = getattr(task.task_spec, "event_definition", None)
                if definition is None:
                    continue
                if _is_timer(definition):
                    value = definition.details(task).value
                    if isinstance(definition, MultipleEventDefinition):
                        value = next((d.details(task).value for d in definition.event_definitions
                                      if isinstance(d, TimerEventDefinition)), value)
                    if value:
                        desired[str(task.id)] = (task.task_spec.bpmn_id, TimerEventDefinition.get_datetime(value))
                for name in _message_names(definition):
                    pending = definition.details(task)
                    corr = {}
                    for props in (pending.correlations or {}).values():
                        if isinstance(props, dict):
                            corr.update(props)
                    subscriptions[f"{task.id}|{name}"] = (str(task.id), task.task_spec.bpmn_id, name, corr)
        if not new:
            jobs = {j.task_guid: j for j in session.scalars(
                select(Job).where(Job.instance_id == inst.id, Job.kind == "timer"))}
            for guid, job in jobs.items():
                if guid not in desired or desired[guid][1] != job.due_at:
                    session.delete(job)
                else:
                    desired.pop(guid)
            subs = {f"{s.task_guid}|{s.message_name}": s for s in session.scalars(
                select(MessageSubscription).where(MessageSubscription.instance_id == inst.id))}
            for key, sub in subs.items():
                if key not in subscriptions:
                    session.delete(sub)
                else:
                    subscriptions.pop(key)
        if desired:
            session.execute(insert(Job), [
                {"kind": "timer", "instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id, "due_at": due,
                 "attempts": 0, "created_at": now} for guid, (bpmn_id, due) in desired.items()])
        if subscriptions:
            session.execute(insert(MessageSubscription), [
                {"instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id, "message_name": name,
                 "correlations": corr, "created_at": now}
                for guid, bpmn_id, name, corr in subscriptions.values()])

    def _new_human_task(self, inst: ProcessInstance, wf: RegflowWorkflow, task, now: datetime) -> HumanTask:
        spec = task.task_spec
        props = (spec.extensions or {}).get("properties", {}) if hasattr(spec, "extensions") else {}
        groups_text = props.get("candidateGroups") or (spec.lane or "")
        groups = [g.strip() for g in groups_text.split(",") if g.strip()]
        assignee = None
        if props.get("assignee"):
            value = wf.script_engine.evaluate(task, props["assignee"])
            if isinstance(value, (list, tuple)):
                value = value[0] if len(value) == 1 else None
            assignee = str(value) if value else None
        due_at = None
        if props.get("dueIn"):
            due_at = _to_datetime(wf.script_engine.evaluate(task, props["dueIn"]), now)
        priority = int(props.get("priority", 50) or 50)
        form_id = props.get("formId")
        definition_forms = self._forms.get(inst.definition_id, {})
        return HumanTask(instance_id=inst.id, task_guid=str(task.id), bpmn_id=spec.bpmn_id, name=spec.bpmn_name,
                         process_id=inst.process_id, business_key=inst.business_key, form_id=form_id,
                         form_hash=definition_forms.get(form_id), candidate_groups=groups, assignee=assignee,
                         priority=priority, due_at=due_at, status="open", created_at=now)


def open_incidents(session: Session) -> Iterable[Incident]:
    return session.scalars(select(Incident).where(Incident.status == "open").order_by(Incident.id))
