"""The second half of every step of the runtime (``engine.runtime.runtime``), and the rows it writes.

After a step has acted on the workflow (started it, completed a task, delivered a message, fired a timer),
:meth:`StepMixin._advance` runs the engine steps, records a failure (a retry job or an incident), audits the
completed elements, saves the state with ``rev + 1`` and rewrites the projections (human tasks, timer jobs,
the continue jobs of tasks held for an asynchronous continuation, message subscriptions) by diffing the
workflow's :meth:`~StepMixin._snapshot` before and after the step, never by re-reading them. The rows of one
step, or of a whole batch of starts, gather in a :class:`Batch` that writes each table with one statement
(``Batch.flush``).
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.db import DeferredWriteError, IdAllocator, JsonText, RowInserter
from engine.errors import Conflict

from . import audit, clock
from .audit import Event
from .continuations import CONTINUE_JOB, attempts_of, held
from .models import NO_DUE, HumanTask, HumanTaskCandidate, Incident, Job, MessageSubscription, ProcessInstance
from .script_engine import UnknownOperator
from .scripting import ScriptTimeout
from .serializer import RegflowWorkflow, StateSerializer
from .services import BpmnError
from .step_data import INSTANCE_COLUMNS, Definition, InstanceRow, Snapshot, StepOutcome, StepState

log = logging.getLogger(__name__)

_PI = ProcessInstance.__table__
_HT = HumanTask.__table__
_HTC = HumanTaskCandidate.__table__
_JOB = Job.__table__
_SUB = MessageSubscription.__table__
# Hot-path statements are built once: SQLAlchemy memoizes a statement object's cache key, so reusing
# the object skips re-building and re-keying it on every step.
_INS_JOB = insert(_JOB)
_INS_SUB = insert(_SUB)
_SAVE_PI = (update(_PI).where(_PI.c.id == bindparam("b_id"), _PI.c.rev == bindparam("b_rev"))
            .values(state=bindparam("state"), rev=bindparam("rev"), updated_at=bindparam("updated_at"),
                    status=bindparam("status"), ended_at=bindparam("ended_at"), audit_seq=bindparam("audit_seq"),
                    audit_head=bindparam("audit_head")))
# the three tables every start writes go through the driver's executemany (no txcache entry reads them)
_INS_PI = RowInserter(_PI, [c.name for c in INSTANCE_COLUMNS])
_INS_HT = RowInserter(_HT, ["id", "instance_id", "task_guid", "bpmn_id", "name", "process_id", "business_key",
                            "form_id", "form_hash", "candidate_groups", "assignee", "priority", "due_at", "status",
                            "created_at", "claimed_at", "completed_at", "completed_by"])
_INS_HTC = RowInserter(_HTC, ["task_id", "group_name", "due_key", "claimed"])


def _previous_element(task):
    """The nearest ancestor task that is a BPMN element (SpiffWorkflow adds tasks that are not)."""
    parent = task.parent
    while parent is not None and parent.task_spec.bpmn_id is None:
        parent = parent.parent
    return parent


def is_timer(definition) -> bool:
    """Whether an event definition is a timer, or a multiple one with a timer."""
    if isinstance(definition, TimerEventDefinition):
        return True
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return False


def message_names(definition) -> list[str]:
    """The names of the messages an event definition (a message or a multiple one) waits for."""
    if isinstance(definition, MessageEventDefinition):
        return [definition.name]
    if isinstance(definition, MultipleEventDefinition):
        return [d.name for d in definition.event_definitions if isinstance(d, MessageEventDefinition)]
    return []


def _deferred_write_error(exc: BaseException) -> DeferredWriteError | None:
    """The :class:`DeferredWriteError` behind ``exc`` (SpiffWorkflow wraps what a task raises), if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DeferredWriteError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def shallow_diff(before: dict, after: dict) -> dict:
    """The top-level keys ``after`` added, changed or deleted, as an audit event's ``data_diff``."""
    diff: dict[str, Any] = {}
    for key, value in after.items():
        if key not in before:
            diff[key] = {"new": value}
        elif before[key] is not value and before[key] != value:
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
    if isinstance(value, dict) and "at" in value:  # the calendar's deadline_info()
        return clock.parse_iso(value["at"])
    text_value = str(value)
    if text_value.upper().startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text_value)
        return base + TimerEventDefinition.get_timedelta_from_start(parsed, base)
    return clock.parse_iso(text_value)


class StepMixin:
    """The step's second half, for :class:`engine.runtime.runtime.Runtime` (which sets these attributes)."""

    settings: Settings
    serializer: StateSerializer
    _defs: dict[int, Definition]
    _ids: IdAllocator

    def _ensure_persisted(self, session: Session, inst: InstanceRow) -> None:
        """A service task is about to run in a new instance: write the row so domain rows may refer to it."""
        if not inst.persisted:
            _INS_PI.insert(session, [inst.values()])
            inst.persisted = True

    # ------------------------------------------------------------------ the step's second half
    def _advance(self, session: Session, inst: InstanceRow, wf: RegflowWorkflow, st: StepState,
                 actor: str, *, attempts: int = 0, batch: "Batch | None" = None,
                 now: datetime | None = None) -> StepOutcome:
        completed: list = []
        failure: dict | None = None
        try:
            wf.do_engine_steps(did_complete_task=completed.append)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is lost
            held_back = _deferred_write_error(exc)
            if held_back is not None:  # another instance's held-back write: the batch runs again (start_many)
                raise held_back from exc
            self._ensure_persisted(session, inst)
            failure = self._record_failure(session, inst, wf, st, exc, actor, attempts)
        handed = getattr(wf.script_engine, "step", None)  # events the service calls handed over (ServiceContext)
        if handed is not None and handed.events:
            st.events.extend(handed.events)
            handed.events.clear()
        for task in completed:
            spec = task.task_spec
            if spec.bpmn_id is None or task.state != TaskState.COMPLETED:
                continue
            parent = task.parent
            flow_ids, detail = self._completed_texts(inst.definition_id, task)
            st.events.append(Event("element_completed", actor, inst.id, spec.bpmn_id, str(task.id),
                                   flow_ids=flow_ids,
                                   data_diff=shallow_diff(parent.data if parent is not None else {}, task.data),
                                   detail=detail))
        now = now or clock.now()  # a batch of starts gives each instance's start time
        if wf.completed and failure is None:
            inst.status, inst.ended_at = "completed", now
            st.events.append(Event("instance_completed", actor, inst.id, detail={"data_keys": sorted(wf.data)}))
        inst.state = self.serializer.dumps(wf)
        inst.rev += 1
        inst.updated_at = now
        own_batch = batch is None
        batch = batch or Batch()
        self._project(inst, wf, st, actor, now, batch)
        rows, (inst.audit_seq, inst.audit_head) = audit.build_rows(
            audit.instance_chain(inst.id), st.events, (inst.audit_seq, inst.audit_head), now)
        batch.audit.extend(rows)
        if inst.persisted:
            save = {"b_id": inst.id, "b_rev": inst.rev - 1, "state": inst.state, "rev": inst.rev, "updated_at": now,
                    "status": inst.status, "ended_at": inst.ended_at, "audit_seq": inst.audit_seq,
                    "audit_head": inst.audit_head}
            if inst.new and not own_batch:
                # a new instance whose row a service task needed early: saved with the batch's other new ones
                batch.saves.append(save)
            else:
                result = session.execute(_SAVE_PI, save)
                if result.rowcount != 1:
                    raise Conflict(f"instance {inst.id} changed under this step; retry")
        else:
            batch.instances.append(inst.values())
            inst.persisted = True
        if own_batch:
            batch.flush(session, self._ids)
        wf.release()  # the step is done with it (callers return the outcome, never the workflow)
        return StepOutcome(inst, failure, st.queued)

    def _incoming_flow(self, definition_id: int, task) -> list[str]:
        d = self._defs.get(definition_id)
        parent = _previous_element(task)
        if parent is None or d is None:
            return []
        flow = d.flows.get(task.workflow.spec.name, {}).get(f"{parent.task_spec.bpmn_id}|{task.task_spec.bpmn_id}")
        return [flow] if flow else []

    def _completed_texts(self, definition_id: int, task) -> tuple[JsonText, JsonText]:
        """The flow ids and detail of an ``element_completed`` event, encoded for the audit row."""
        spec, process = task.task_spec, task.workflow.spec.name
        d = self._defs.get(definition_id)
        parent = _previous_element(task)
        key = (process, parent.task_spec.bpmn_id if parent is not None else None, spec.bpmn_id)
        texts = d.completed_texts.get(key) if d is not None else None
        if texts is None:
            texts = (audit.encoded(self._incoming_flow(definition_id, task)),
                     audit.encoded({"type": type(spec).__name__, "name": spec.bpmn_name, "process": process}))
            if d is not None:
                d.completed_texts[key] = texts
        return texts

    def _record_failure(self, session, inst: InstanceRow, wf, st, exc, actor, attempts) -> dict:
        errored = list(wf.get_tasks(state=TaskState.ERROR))
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
            session.execute(insert(_JOB), [{"kind": "retry", "instance_id": inst.id, "task_guid": guid,
                                            "bpmn_id": bpmn_id, "due_at": now + timedelta(seconds=delay),
                                            "attempts": attempts, "last_error": message, "created_at": now}])
            return {"retry_in_s": delay, "error": message, "bpmn_id": bpmn_id}
        (incident_id,) = self._ids.take(session, "incident", 1)
        session.execute(insert(Incident.__table__), [{
            "id": incident_id, "instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id,
            "error_type": type(root).__name__, "message": message, "stack": stack, "attempts": attempts + 1,
            "status": "open", "created_at": now}])
        st.events.append(Event("incident_opened", actor, inst.id, bpmn_id, guid,
                               detail={"incident_id": incident_id, "error": message}))
        log.warning("incident %s on instance %s at %s: %s", incident_id, inst.id, bpmn_id, message)
        return {"incident_id": incident_id, "error": message, "bpmn_id": bpmn_id}

    # ------------------------------------------------------------------ projections
    def _snapshot(self, wf: RegflowWorkflow, inst: InstanceRow) -> Snapshot:
        snap = Snapshot()
        if inst.status != "running":
            return snap
        d = self._defs.get(inst.definition_id)
        want_waiting = d is None or d.has_timers or d.has_messages
        for task in wf.get_tasks(state=TaskState.READY | TaskState.WAITING if want_waiting else TaskState.READY):
            spec = task.task_spec
            if task.state == TaskState.READY:
                if spec.manual:
                    snap.ready[str(task.id)] = task
                elif held(task):  # left for its continue job (engine.runtime.continuations)
                    snap.held[str(task.id)] = (spec.bpmn_id, attempts_of(task), task)
                continue
            definition = getattr(spec, "event_definition", None)
            if definition is None:
                continue
            if is_timer(definition):
                value = definition.details(task).value
                if isinstance(definition, MultipleEventDefinition):
                    value = next((x.details(task).value for x in definition.event_definitions
                                  if isinstance(x, TimerEventDefinition)), value)
                if value:
                    snap.timers[str(task.id)] = (spec.bpmn_id, TimerEventDefinition.get_datetime(value))
            for name in message_names(definition):
                pending = definition.details(task)
                corr: dict = {}
                for props in (pending.correlations or {}).values():
                    if isinstance(props, dict):
                        corr.update(props)
                snap.subs[f"{task.id}|{name}"] = (str(task.id), spec.bpmn_id, name, corr)
        return snap

    def _project(self, inst: InstanceRow, wf: RegflowWorkflow, st: StepState, actor: str, now: datetime,
                 batch: "Batch") -> None:
        after = self._snapshot(wf, inst)
        before = st.before
        gone = [g for g in before.ready if g not in after.ready and g not in st.completed_human_guids]
        if gone:
            batch.cancel_tasks.extend(gone)
            for guid in gone:
                task = before.ready[guid]
                st.events.append(Event("task_cancelled", actor, inst.id, task.task_spec.bpmn_id, guid))
        for guid, task in after.ready.items():
            if guid in before.ready:
                continue
            row = self._new_human_task(inst, wf, task, now)
            batch.tasks.append(row)
            st.events.append(Event("task_created", actor, inst.id, row["bpmn_id"], guid,
                                   flow_ids=self._incoming_flow(inst.definition_id, task), detail={
                                       "assignee": row["assignee"], "candidate_groups": row["candidate_groups"],
                                       "due_at": row["due_at"].isoformat() if row["due_at"] else None,
                                       "form_id": row["form_id"]}))
        for guid, (bpmn_id, _attempts, task) in before.held.items():
            if guid not in after.held:  # cancelled before its job ran (its own job pops it from ``before``)
                batch.drop_jobs.append((inst.id, guid, CONTINUE_JOB))
                st.events.append(Event("async_continuation_cancelled", actor, inst.id, bpmn_id, guid))
        for guid, (bpmn_id, attempts, task) in after.held.items():
            if guid in before.held:
                continue
            batch.jobs.append({"kind": CONTINUE_JOB, "instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id,
                               "due_at": now, "attempts": attempts, "created_at": now})
            process_id = task.workflow.spec.name
            st.queued.append({"process_id": process_id, "bpmn_id": bpmn_id, "task_guid": guid,
                              "name": task.task_spec.bpmn_name})
            st.events.append(Event("async_continuation_queued", actor, inst.id, bpmn_id, guid,
                                   flow_ids=self._incoming_flow(inst.definition_id, task),
                                   detail={"job": CONTINUE_JOB, "process": process_id, "attempts": attempts}))
        for guid, (bpmn_id, due) in before.timers.items():
            if after.timers.get(guid, (None, None))[1] != due:
                batch.drop_jobs.append((inst.id, guid, "timer"))
        for guid, (bpmn_id, due) in after.timers.items():
            if before.timers.get(guid, (None, None))[1] != due:
                batch.jobs.append({"kind": "timer", "instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id,
                                   "due_at": due, "attempts": 0, "created_at": now})
        for key in before.subs:
            if key not in after.subs:
                guid, _b, name, _c = before.subs[key]
                batch.drop_subs.append((inst.id, guid, name))
        for key, (guid, bpmn_id, name, corr) in after.subs.items():
            if key not in before.subs:
                batch.subs.append({"instance_id": inst.id, "task_guid": guid, "bpmn_id": bpmn_id,
                                   "message_name": name, "correlations": corr, "created_at": now})

    def _new_human_task(self, inst: InstanceRow, wf: RegflowWorkflow, task, now: datetime) -> dict:
        spec = task.task_spec
        props = (getattr(spec, "extensions", None) or {}).get("properties", {})
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
        form_id = props.get("formId")
        d = self._defs.get(inst.definition_id)
        return {"instance_id": inst.id, "task_guid": str(task.id), "bpmn_id": spec.bpmn_id, "name": spec.bpmn_name,
                "process_id": inst.process_id, "business_key": inst.business_key, "form_id": form_id,
                "form_hash": (d.forms.get(form_id) if d and form_id else None), "candidate_groups": groups,
                "assignee": assignee, "priority": int(props.get("priority", 50) or 50), "due_at": due_at,
                "status": "open", "created_at": now, "claimed_at": None, "completed_at": None,
                "completed_by": None}


@dataclass
class Batch:
    """Rows of one or many steps, written with one statement per table."""

    instances: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    cancel_tasks: list[str] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    #: (instance id, task guid, job kind)
    drop_jobs: list[tuple[int, str, str]] = field(default_factory=list)
    subs: list[dict] = field(default_factory=list)
    drop_subs: list[tuple[int, str, str]] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    #: state saves of new instances whose rows were inserted early (``_SAVE_PI`` parameters)
    saves: list[dict] = field(default_factory=list)

    def clear(self) -> None:
        for f in fields(self):
            getattr(self, f.name).clear()

    def extend(self, other: "Batch") -> None:
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))

    def flush(self, session: Session, ids: IdAllocator) -> None:
        _INS_PI.insert(session, self.instances)
        if self.saves:
            result = session.execute(_SAVE_PI, self.saves)
            if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(self.saves):
                raise Conflict("an instance started in this batch changed under it; retry")
        if self.cancel_tasks:
            now = clock.now()
            cancelled = select(_HT.c.id).where(_HT.c.task_guid.in_(self.cancel_tasks))
            session.execute(delete(_HTC).where(_HTC.c.task_id.in_(cancelled)))
            session.execute(update(_HT).where(_HT.c.task_guid.in_(self.cancel_tasks), _HT.c.status == "open")
                            .values(status="cancelled", completed_at=now))
        if self.tasks:
            for task_id, row in zip(ids.take(session, "human_task", len(self.tasks)), self.tasks):
                row["id"] = task_id
            _INS_HT.insert(session, self.tasks)
            _INS_HTC.insert(session, [{"task_id": r["id"], "group_name": g, "due_key": r["due_at"] or NO_DUE,
                                       "claimed": r["assignee"] is not None}
                                      for r in self.tasks for g in r["candidate_groups"]])
        for instance_id, guid, kind in self.drop_jobs:
            session.execute(delete(_JOB).where(_JOB.c.instance_id == instance_id, _JOB.c.task_guid == guid,
                                               _JOB.c.kind == kind))
        if self.jobs:
            session.execute(_INS_JOB, self.jobs)
        for instance_id, guid, name in self.drop_subs:
            session.execute(delete(_SUB).where(_SUB.c.instance_id == instance_id, _SUB.c.task_guid == guid,
                                               _SUB.c.message_name == name))
        if self.subs:
            session.execute(_INS_SUB, self.subs)
        audit.insert_rows(session, self.audit)
