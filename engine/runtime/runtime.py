"""The runtime: every change to an instance is one atomic step (DESIGN.md §3).

    lock the instance and check its rev -> load its state -> act -> do_engine_steps ->
    save with rev + 1 -> rewrite projections (human_task, job, incident, message_subscription) ->
    append audit events -> (the caller) commits.

Service tasks run inside the engine steps; their database writes join the transaction in a
savepoint (none for an operator registered as only reading). When one raises after a person's completion
was accepted, the completion and everything before the failing task are kept; the task waits in ERROR for a
retry job (with backoff) and after ``service_retries`` failures an open incident names it. A failure before
anything was accepted rolls back the whole step. A batch of starts (``start_many``) runs optimistically
with one savepoint around all its service calls; if one fails, the batch goes back to that savepoint and
runs again with a savepoint per call, which gives exactly those semantics. Functions here take a
``Session`` and never commit.

The step's hot path writes one statement per table: new instance, task, candidate and audit rows through
the driver (``engine.db.RowInserter``: ``executemany``, or ``COPY`` for PostgreSQL batches), updates and
deletes with SQLAlchemy Core. Projections are computed by diffing the workflow before and after the step,
never by re-reading them. When a step is done with its workflow it breaks the workflow's reference cycles
(``RegflowWorkflow.release``) so that its memory returns at once.
"""
from __future__ import annotations

import gc
import logging
import threading
import traceback
from dataclasses import dataclass, field, fields
from functools import partial
from datetime import datetime, timedelta
from typing import Any, Callable
from uuid import UUID

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.config import Settings, load_settings
from engine.db import (DeferredWriteError, IdAllocator, JsonText, RowInserter, deferred_writes, hold_back,
                       held_back_groups)
from engine.errors import Conflict, FormValidationError, InvalidInput, NotAllowed, NotFound

from . import audit, clock, parallel
from .audit import Event
from .models import (
    AppGroup,
    AppUser,
    HumanTask,
    HumanTaskCandidate,
    Incident,
    Job,
    NO_DUE,
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    UserGroup,
)
from .script_engine import RegflowScriptEngine, Replay, StepContext, UnknownOperator
from .scripting import ScriptTimeout
from .serializer import LIBRARY_VERSION, SERIALIZER_VERSION, RegflowWorkflow, StateSerializer
from .services import BpmnError, ServiceRegistry, registry as default_registry

log = logging.getLogger(__name__)

#: ``form_validator(form_id, data, task_data) -> {field: message}``; the forms package plugs in here.
FormValidator = Callable[[str, dict, dict], dict]

SYSTEM_ACTOR = "system"
_PI = ProcessInstance.__table__
_HT = HumanTask.__table__
_HTC = HumanTaskCandidate.__table__
_JOB = Job.__table__
_SUB = MessageSubscription.__table__
_U, _G, _UG = AppUser.__table__, AppGroup.__table__, UserGroup.__table__
# Hot-path statements are built once: SQLAlchemy memoizes a statement object's cache key, so reusing
# the object skips re-building and re-keying it on every step.
_INS_JOB = insert(_JOB)
_INS_SUB = insert(_SUB)
_SAVE_PI = (update(_PI).where(_PI.c.id == bindparam("b_id"), _PI.c.rev == bindparam("b_rev"))
            .values(state=bindparam("state"), rev=bindparam("rev"), updated_at=bindparam("updated_at"),
                    status=bindparam("status"), ended_at=bindparam("ended_at"), audit_seq=bindparam("audit_seq"),
                    audit_head=bindparam("audit_head")))
_COMPLETE_HT = (update(_HT).where(_HT.c.id == bindparam("b_id"))
                .values(status="completed", completed_at=bindparam("completed_at"),
                        completed_by=bindparam("completed_by"), assignee=bindparam("assignee")))
_DEL_HTC = delete(_HTC).where(_HTC.c.task_id == bindparam("b_task_id"))
_MARK_HTC = update(_HTC).where(_HTC.c.task_id == bindparam("b_task_id")).values(claimed=bindparam("claimed"))
#: (active, group name) rows of one user, built once (Core, so no ORM compile per call)
_USER_GROUPS = (select(_U.c.active, _G.c.name)
                .select_from(_U.outerjoin(_UG, _UG.c.user_id == _U.c.id).outerjoin(_G, _G.c.id == _UG.c.group_id))
                .where(_U.c.username == bindparam("username")))


@dataclass
class InstanceRow:
    """A process_instance row as one step sees it (plain data; written back with Core statements)."""

    id: int
    definition_id: int
    process_id: str
    business_key: str | None
    status: str
    state: str
    serializer_version: str
    library_version: str
    rev: int
    parent_instance_id: int | None
    started_by: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    status_reason: str | None
    audit_seq: int = 0
    audit_head: str = audit.GENESIS
    audit_anchored_seq: int = 0
    persisted: bool = True
    #: created by the running step: no other step can have seen or changed its row
    new: bool = False

    @classmethod
    def from_row(cls, row) -> "InstanceRow":
        m = row._mapping
        return cls(**{name: m[name] for name in _INSTANCE_FIELDS})

    def values(self) -> dict:
        return {name: getattr(self, name) for name in _INSTANCE_FIELDS}


_INSTANCE_FIELDS = tuple(f.name for f in fields(InstanceRow) if f.name not in ("persisted", "new"))
_INSTANCE_COLUMNS = [_PI.c[name] for name in _INSTANCE_FIELDS]
# the three tables every start writes go through the driver's executemany (no txcache entry reads them)
_INS_PI = RowInserter(_PI, [c.name for c in _INSTANCE_COLUMNS])
_INS_HT = RowInserter(_HT, ["id", "instance_id", "task_guid", "bpmn_id", "name", "process_id", "business_key",
                            "form_id", "form_hash", "candidate_groups", "assignee", "priority", "due_at", "status",
                            "created_at", "claimed_at", "completed_at", "completed_by"])
_INS_HTC = RowInserter(_HTC, ["task_id", "group_name", "due_key", "claimed"])
_TASK_AND_INSTANCE = (
    select(_HT.c.id.label("ht_id"), _HT.c.task_guid, _HT.c.bpmn_id.label("ht_bpmn_id"),
           _HT.c.status.label("ht_status"), _HT.c.assignee, _HT.c.candidate_groups, _HT.c.form_id,
           _HT.c.completed_by, *_INSTANCE_COLUMNS)
    .join(_PI, _PI.c.id == _HT.c.instance_id).where(_HT.c.id == bindparam("task_id")))
#: PostgreSQL: lock the task and its instance; a waiter re-reads both once the lock is free
_TASK_AND_INSTANCE_LOCKED = _TASK_AND_INSTANCE.with_for_update()
_LOCK_PI = select(*_INSTANCE_COLUMNS).where(_PI.c.id == bindparam("instance_id"))
_LOCK_PI_PG = _LOCK_PI.with_for_update()
_LATEST_PG = text("select (select id from process_definition where process_id = :p order by version desc limit 1), "
                  "nextval(:s) from generate_series(1, :n)")
_LATEST_SQLITE = text("select (select id from process_definition where process_id = :p order by version desc "
                      "limit 1), (select coalesce(max(id), 0) from process_instance)")


@dataclass
class StepOutcome:
    instance: InstanceRow
    failure: dict | None = None


@dataclass
class _Snapshot:
    """The projections a workflow implies: READY manual tasks, waiting timers, message waits."""

    ready: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    subs: dict[str, tuple[str, str, str, dict]] = field(default_factory=dict)


@dataclass
class _StepState:
    """What one step collects while it runs, turned into audit rows and projections at the end."""

    events: list[Event] = field(default_factory=list)
    completed_human_guids: set[str] = field(default_factory=set)
    before: _Snapshot = field(default_factory=_Snapshot)


@dataclass
class _Definition:
    id: int
    process_id: str
    version: int
    spec: Any
    subs: dict
    flows: dict
    forms: dict
    has_timers: bool
    has_messages: bool
    #: (process, previous element, element) -> the encoded flow ids and detail of its ``element_completed``
    #: event: the same for every instance that passes there, so encoded once
    completed_texts: dict = field(default_factory=dict)


def _previous_element(task):
    """The nearest ancestor task that is a BPMN element (SpiffWorkflow adds tasks that are not)."""
    parent = task.parent
    while parent is not None and parent.task_spec.bpmn_id is None:
        parent = parent.parent
    return parent


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


def _deferred_write_error(exc: BaseException) -> DeferredWriteError | None:
    """The :class:`DeferredWriteError` behind ``exc`` (SpiffWorkflow wraps what a task raises), if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DeferredWriteError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _shallow_diff(before: dict, after: dict) -> dict:
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


#: batches of starts at least this long run with the objects alive before them frozen (``gc.freeze``)
_FREEZE_FROM = 1000
#: a batch of starts writes its rows every this many instances
_FLUSH_EVERY = 1000
#: batches of starts at least this long run optimistically (one savepoint for all their service calls)
_OPTIMISTIC_FROM = 2
#: the share of a split batch (``Settings.parallel_start_from``) this process computes (it also reads and writes
#: the other process's rows, while the other pickles them: about even, measured with ``bench/loop.py``)
_SPLIT_PARENT_SHARE = 0.5
#: a split batch longer than this is split window by window
_SPLIT_WINDOW = 10_000
#: a window shorter than this runs in one process
_SPLIT_MIN = 4


class _IdAllocator(IdAllocator):
    """The engine's ids: human-task ids pooled on PostgreSQL (a step needs them after its engine steps, one
    more round trip per step otherwise), and the latest definition with new instance ids in one query."""

    _POOLED = frozenset({"human_task"})

    def take_with_definition(self, session: Session, process_id: str, n: int) -> tuple[int | None, list[int]]:
        """The latest definition id of ``process_id`` and ``n`` new instance ids, in one round trip."""
        if session.get_bind().dialect.name == "postgresql":
            seq = self._sequence(session, "process_instance")
            rows = session.execute(_LATEST_PG, {"p": process_id, "s": seq, "n": max(n, 1)}).all()
            return rows[0][0], [r[1] for r in rows][:n]
        def_id, top = session.execute(_LATEST_SQLITE, {"p": process_id}).one()
        nxt = self._counted(session, "process_instance") or top + 1
        self._count(session, "process_instance", nxt + n)
        return def_id, list(range(nxt, nxt + n))


class Runtime:
    """Deploys definitions and runs instances. One per process; thread-safe (no per-step state)."""

    def __init__(self, settings: Settings | None = None, services: ServiceRegistry | None = None,
                 form_validator: FormValidator | None = None, helpers: dict | None = None,
                 before_step: list[Callable[[Session], None]] | None = None,
                 serializer_hooks: list[Callable] | None = None,
                 terminate_hooks: list[Callable[[Session, int, str, datetime], dict | None]] | None = None):
        self.settings = settings or load_settings()
        #: batches of starts at least this long are computed in two processes (0: never)
        self._split_from = self.settings.parallel_start_from
        #: what the last batch computed in two processes did, window by window (diagnostics: ``bench/loop.py``)
        self.last_split: list[dict] | None = None
        self.services = services or default_registry
        self.form_validator = form_validator
        self.helpers = dict(helpers or {})
        #: called with the session before every step (e.g. reload a calendar another process changed)
        self.before_step = list(before_step or [])
        #: called with (session, instance id, reason, now) when an administrator terminates an instance, in
        #: the same transaction: domain clean-up the process can no longer do (e.g. release its team). What
        #: they return (a dict) is recorded in a ``termination_cleanup`` audit event.
        self.terminate_hooks = list(terminate_hooks or [])
        self._defs: dict[int, _Definition] = {}
        self._lock = threading.Lock()
        self._ids = _IdAllocator()
        self.serializer = StateSerializer(self._resolve_spec, serializer_hooks or [])

    def _run_before_step(self, session: Session) -> None:
        for hook in self.before_step:
            hook(session)

    # ------------------------------------------------------------------ definitions and specs
    def _resolve_spec(self, definition_id: int):
        d = self._defs[definition_id]
        return d.spec, d.subs

    def definition(self, session: Session, definition_id: int) -> _Definition:
        d = self._defs.get(definition_id)
        if d is not None:
            return d
        row = session.get(ProcessDefinition, definition_id)
        if row is None:
            raise NotFound(f"process definition {definition_id} not found")
        spec, subs = self.serializer.spec_from_json(row.spec_json)
        has_timers = has_messages = False
        for s in [spec, *subs.values()]:
            for ts in s.task_specs.values():
                ed = getattr(ts, "event_definition", None)
                has_timers = has_timers or _is_timer(ed)
                has_messages = has_messages or bool(_message_names(ed))
        d = _Definition(row.id, row.process_id, row.version, spec, subs, row.flow_index or {}, row.forms or {},
                        has_timers, has_messages)
        with self._lock:
            self._defs[definition_id] = d
        return d

    def script_engine(self, step: StepContext | None) -> RegflowScriptEngine:
        return RegflowScriptEngine(self.services, step, time_budget_s=self.settings.script_time_budget_s,
                                   helpers=self.helpers, runtime=self)

    # ------------------------------------------------------------------ instances: lock / load / save
    def _lock_instance(self, session: Session, instance_id: int) -> InstanceRow:
        # SQLite: every transaction starts with BEGIN IMMEDIATE, which already holds the write lock.
        q = _LOCK_PI_PG if session.get_bind().dialect.name == "postgresql" else _LOCK_PI
        row = session.execute(q, {"instance_id": instance_id}).first()
        if row is None:
            raise NotFound(f"instance {instance_id} not found")
        return InstanceRow.from_row(row)

    def _load(self, session: Session, inst: InstanceRow, step: StepContext) -> RegflowWorkflow:
        self.definition(session, inst.definition_id)
        wf = self.serializer.loads(inst.state, inst.serializer_version)
        wf.script_engine = self.script_engine(step)
        return wf

    def load_workflow(self, session: Session, instance_id: int) -> RegflowWorkflow:
        """Read-only view of an instance's workflow (no lock, nothing saved)."""
        row = session.execute(select(*_INSTANCE_COLUMNS).where(_PI.c.id == instance_id)).first()
        if row is None:
            raise NotFound(f"instance {instance_id} not found")
        inst = InstanceRow.from_row(row)
        return self._load(session, inst, StepContext(session, inst.id, inst.business_key, SYSTEM_ACTOR))

    def _append_events(self, session: Session, inst: InstanceRow, events: list[Event]) -> None:
        """Append to the instance's chain outside a full step (claim, suspend, ...)."""
        rows, (inst.audit_seq, inst.audit_head) = audit.build_rows(
            audit.instance_chain(inst.id), events, (inst.audit_seq, inst.audit_head))
        audit.insert_rows(session, rows)

    def append_event(self, session: Session, instance_id: int, kind: str, actor: str, *,
                     bpmn_id: str | None = None, task_guid: str | None = None, detail: dict | None = None) -> int:
        """Record a domain event that is not a step of the workflow (evidence attached, say) in the instance's
        hash chain, under the instance's lock like every step. Returns the event's seq."""
        inst = self._lock_instance(session, instance_id)
        self._append_events(session, inst, [Event(kind, actor, inst.id, bpmn_id, task_guid, detail=detail or {})])
        self._save_instance_head(session, inst)
        return inst.audit_seq

    def _save_instance_head(self, session: Session, inst: InstanceRow, **extra) -> None:
        session.execute(update(_PI).where(_PI.c.id == inst.id).values(
            audit_seq=inst.audit_seq, audit_head=inst.audit_head, **extra))

    # ------------------------------------------------------------------ start
    def start(self, session: Session, process_id: str, *, business_key: str | None = None,
              data: dict | None = None, actor: str = SYSTEM_ACTOR,
              parent_instance_id: int | None = None) -> StepOutcome:
        return self.start_many(session, process_id, [{"business_key": business_key, "data": data}],
                               actor=actor, parent_instance_id=parent_instance_id)[0]

    def start_many(self, session: Session, process_id: str, items: list[dict], *, actor: str = SYSTEM_ACTOR,
                   parent_instance_id: int | None = None) -> list[StepOutcome]:
        """Start one instance per item (``{"business_key": …, "data": {…}}``) in the caller's transaction,
        writing each table once per ``_FLUSH_EVERY`` instances."""
        for item in items:
            if item.get("data") is not None and not isinstance(item["data"], dict):
                raise InvalidInput("start data must be a JSON object")
        self._run_before_step(session)
        def_id, ids = self._ids.take_with_definition(session, process_id, len(items))
        if def_id is None:
            raise NotFound(f"process {process_id!r} is not deployed")
        d = self.definition(session, def_id)
        batch = _Batch()
        outcomes = []
        # one script engine for the batch: the instances run one after the other, each with its own step
        engine = self.script_engine(None)
        # a long batch (a campaign launch) keeps what it already holds out of the cyclic collector's full
        # passes, which otherwise rescan every object alive (the loaded registry rows, the batch's rows) again
        # and again; the objects go back to it when the batch ends
        frozen = len(items) >= _FREEZE_FROM
        if frozen:
            gc.freeze()
        try:
            if len(items) >= _OPTIMISTIC_FROM:
                # optimistic: one savepoint for the whole batch instead of one per writing service call; a
                # call that fails (rare in a launch) takes the batch back to it and the batch runs again the
                # careful way, each call in its own savepoint, so that the failure is recorded for its
                # instance alone
                # (the optimistic run also holds back the rows its services write one at a time — entity scores,
                # team draws — and writes them together: ``engine.db.deferred_writes``)
                savepoint = session.begin_nested()
                try:
                    with deferred_writes(session):
                        if self._split_from and len(items) >= self._split_from and parallel.available(session):
                            # in windows: what the child sends back (about 20 KB per instance) stays bounded
                            self.last_split = []
                            for lo in range(0, len(items), _SPLIT_WINDOW):
                                if lo:
                                    batch.flush(session, self._ids)
                                    batch.clear()
                                hi = lo + _SPLIT_WINDOW
                                self._start_split(session, d, process_id, ids[lo:hi], items[lo:hi], actor,
                                                  parent_instance_id, engine, batch, outcomes)
                            # the children gave objects they had loaded committed values (scoring does) that
                            # this process's copies lack: read again when next used (not between windows,
                            # whose children need the loaded objects)
                            if session.new or session.dirty or session.deleted:
                                session.flush()
                            session.expire_all()
                        else:
                            self._start_each(session, d, process_id, ids, items, actor, parent_instance_id,
                                             engine, batch, outcomes, optimistic=True)
                        batch.flush(session, self._ids)
                    savepoint.commit()
                    return outcomes
                except (Replay, DeferredWriteError) as replay:
                    log.info("batch of %d starts replayed with a savepoint per service call: %s", len(items), replay)
                    savepoint.rollback()
                    session.expire_all()
                    batch.clear()
                    outcomes.clear()
            self._start_each(session, d, process_id, ids, items, actor, parent_instance_id, engine, batch, outcomes)
        finally:
            if frozen:
                gc.unfreeze()
        batch.flush(session, self._ids)
        return outcomes

    def _start_split(self, session: Session, d, process_id: str, ids: list[int], items: list[dict], actor: str,
                     parent_instance_id: int | None, engine, batch: "_Batch", outcomes: list) -> None:
        """An optimistic batch of starts computed in two processes (:mod:`engine.runtime.parallel`): the first
        instance here (it reads what all of them read into the transaction's cache), then the last part
        in a forked child with no database, the rest here meanwhile; the child's rows are written here, in
        this transaction, as if this process had made them. If the child's part fails, it runs here."""
        start = partial(self._start_each, session, d, process_id, actor=actor, parent_instance_id=parent_instance_id,
                        engine=engine, optimistic=True)
        if len(items) < _SPLIT_MIN:  # (a batch's last window may be this short): nothing to share
            start(ids, items, batch=batch, outcomes=outcomes)
            return
        start(ids[:1], items[:1], batch=batch, outcomes=outcomes)
        cut = 1 + round((len(items) - 1) * _SPLIT_PARENT_SHARE)

        def child():
            child_batch, child_outcomes = _Batch(), []
            start(ids[cut:], items[cut:], batch=child_batch, outcomes=child_outcomes, flush_every=0)
            return child_batch, held_back_groups(session), child_outcomes

        result = parallel.run_split(session, lambda: start(ids[1:cut], items[1:cut], batch=batch, outcomes=outcomes),
                                    child)
        if result.failure is not None:
            self.last_split.append({"instances": len(items), "second_process_failed": result.failure})
            log.warning("batch of %d starts: the second process's %d failed (%s); started here instead",
                        len(items), len(items) - cut, result.failure)
            start(ids[cut:], items[cut:], batch=batch, outcomes=outcomes)
            return
        child_batch, groups, child_outcomes = result.value
        self.last_split.append({"instances": len(items), "second_process": len(items) - cut,
                                "second_process_s": round(result.child_s, 2), "here": cut,
                                "here_s": round(result.parent_s, 2),
                                "then_waiting_and_reading_s": round(result.wait_s, 2)})
        log.info("batch of %d starts: %d computed by a second process in %.1f s, %d here in %.1f s (then %.1f s "
                 "waiting for and reading the second's)", len(items), len(items) - cut, result.child_s, cut,
                 result.parent_s, result.wait_s)
        batch.extend(child_batch)
        hold_back(session, groups)
        outcomes.extend(child_outcomes)

    def _start_each(self, session: Session, d, process_id: str, ids: list[int], items: list[dict], actor: str,
                    parent_instance_id: int | None, engine, batch: "_Batch", outcomes: list, *,
                    optimistic: bool = False, flush_every: int | None = None) -> None:
        flush_every = _FLUSH_EVERY if flush_every is None else flush_every
        for n, (iid, item) in enumerate(zip(ids, items), 1):
            if flush_every and n % flush_every == 0:  # written as they come: the rows do not pile up in memory
                batch.flush(session, self._ids)
                batch.clear()
            now = clock.now()
            key, data = item.get("business_key"), item.get("data") or {}
            inst = InstanceRow(id=iid, definition_id=d.id, process_id=process_id, business_key=key,
                               status="running", state="", serializer_version=SERIALIZER_VERSION,
                               library_version=LIBRARY_VERSION, rev=0, parent_instance_id=parent_instance_id,
                               started_by=actor, started_at=now, updated_at=now, ended_at=None,
                               status_reason=None, persisted=False, new=True)
            engine.step = StepContext(session, iid, key, actor, new_instance=True, optimistic=optimistic,
                                      ensure_instance=lambda inst=inst: self._ensure_persisted(session, inst))
            wf = RegflowWorkflow(d.spec, d.subs, script_engine=engine, spec_ref=d.id)
            if data:
                wf.get_tasks(state=TaskState.READY)[0].set_data(**data)
            st = _StepState()
            st.events.append(Event("instance_started", actor, iid, detail={
                "process_id": process_id, "version": d.version, "definition_id": d.id, "business_key": key},
                data_diff={k: {"new": v} for k, v in data.items()}))
            outcomes.append(self._advance(session, inst, wf, st, actor, batch=batch, now=now))

    def _ensure_persisted(self, session: Session, inst: InstanceRow) -> None:
        """A service task is about to run in a new instance: write the row so domain rows may refer to it."""
        if not inst.persisted:
            _INS_PI.insert(session, [inst.values()])
            inst.persisted = True

    # ------------------------------------------------------------------ human tasks
    def _get_human_task(self, session: Session, task_id: int) -> HumanTask:
        ht = session.get(HumanTask, task_id, populate_existing=True)
        if ht is None:
            raise NotFound(f"task {task_id} not found")
        return ht

    def user_groups(self, session: Session, username: str) -> set[str]:
        return self._user(session, username)[1]

    def _user(self, session: Session, username: str) -> tuple[bool, set[str]]:
        """(exists and active, groups) in one query."""
        rows = session.execute(_USER_GROUPS, {"username": username}).all()
        if not rows:
            return False, set()
        return bool(rows[0][0]), {g for _a, g in rows if g}

    def _check_user(self, session: Session, username: str) -> set[str]:
        active, groups = self._user(session, username)
        if not active:
            raise NotAllowed(f"unknown or inactive user {username!r}")
        return groups

    def may_work_on(self, session: Session, ht, username: str, groups: set[str] | None = None) -> bool:
        if ht.assignee:
            return ht.assignee == username
        groups = self.user_groups(session, username) if groups is None else groups
        return bool(set(ht.candidate_groups or []) & groups)

    def _locked_task(self, session: Session, task_id: int) -> tuple[HumanTask, InstanceRow]:
        instance_id = session.execute(select(_HT.c.instance_id).where(_HT.c.id == task_id)).scalar()
        if instance_id is None:
            raise NotFound(f"task {task_id} not found")
        inst = self._lock_instance(session, instance_id)
        return self._get_human_task(session, task_id), inst

    def claim(self, session: Session, task_id: int, user: str) -> HumanTask:
        ht, inst = self._locked_task(session, task_id)
        groups = self._check_user(session, user)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        if ht.assignee == user:
            return ht
        if not set(ht.candidate_groups or []) & groups:
            raise NotAllowed(f"{user} is not in any candidate group of task {task_id} "
                             f"({', '.join(ht.candidate_groups or []) or 'none'})")
        if ht.assignee:
            raise Conflict(f"task {task_id} is already claimed by {ht.assignee}")
        ht.assignee, ht.claimed_at = user, clock.now()
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": True})
        self._append_events(session, inst, [
            Event("task_claimed", user, inst.id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        self._save_instance_head(session, inst)
        return ht

    def unclaim(self, session: Session, task_id: int, user: str) -> HumanTask:
        ht, inst = self._locked_task(session, task_id)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        if ht.assignee != user:
            raise NotAllowed(f"task {task_id} is not claimed by {user}")
        ht.assignee, ht.claimed_at = None, None
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": False})
        self._append_events(session, inst, [
            Event("task_unclaimed", user, inst.id, ht.bpmn_id, ht.task_guid, detail={"task_id": ht.id})])
        self._save_instance_head(session, inst)
        return ht

    def delegate(self, session: Session, task_id: int, user: str, to_user: str, reason: str = "") -> HumanTask:
        """Hand an open task to a colleague: ``user`` must be its assignee (or may work on it), and
        ``to_user`` must be allowed to work on it (in a candidate group, or the task has none)."""
        ht, inst = self._locked_task(session, task_id)
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}")
        groups = self._check_user(session, user)
        if ht.assignee != user and not (ht.assignee is None and set(ht.candidate_groups or []) & groups):
            raise NotAllowed(f"{user} may not delegate task {task_id} (assignee: {ht.assignee or 'none'})")
        if to_user == user:
            raise InvalidInput("delegate: choose a colleague, not yourself")
        to_groups = self._check_user(session, to_user)
        if ht.candidate_groups and not set(ht.candidate_groups) & to_groups:
            raise InvalidInput(f"delegate: {to_user} is not in any candidate group of task {task_id} "
                               f"({', '.join(ht.candidate_groups)})")
        before = ht.assignee
        ht.assignee, ht.claimed_at = to_user, clock.now()
        session.execute(_MARK_HTC, {"b_task_id": ht.id, "claimed": True})
        self._append_events(session, inst, [
            Event("task_delegated", user, inst.id, ht.bpmn_id, ht.task_guid,
                  detail={"task_id": ht.id, "from": before, "to": to_user, "reason": reason})])
        self._save_instance_head(session, inst)
        return ht

    def complete_task(self, session: Session, task_id: int, user: str, data: dict | None = None,
                      rev: int | None = None) -> StepOutcome:
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidInput("task data must be a JSON object")
        self._run_before_step(session)
        q = _TASK_AND_INSTANCE_LOCKED if session.get_bind().dialect.name == "postgresql" else _TASK_AND_INSTANCE
        row = session.execute(q, {"task_id": task_id}).first()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        m = row._mapping
        inst = InstanceRow.from_row(row)
        ht = _TaskView(m["ht_id"], m["task_guid"], m["ht_bpmn_id"], m["ht_status"], m["assignee"],
                       m["candidate_groups"] or [], m["form_id"], m["completed_by"])
        if rev is not None and rev != inst.rev:
            raise Conflict(f"instance {inst.id} is at rev {inst.rev}, not {rev}: reload and retry")
        if ht.status != "open":
            raise Conflict(f"task {task_id} is already {ht.status}"
                           + (f" (by {ht.completed_by})" if ht.completed_by else ""))
        if inst.status != "running":
            raise Conflict(f"instance {inst.id} is {inst.status}")
        groups = self._check_user(session, user)
        if not self.may_work_on(session, ht, user, groups):
            who = f"assigned to {ht.assignee}" if ht.assignee else \
                f"for groups {', '.join(ht.candidate_groups) or '(none)'}"
            raise NotAllowed(f"task {task_id} is {who}; {user} may not complete it")
        step = StepContext(session, inst.id, inst.business_key, user)
        wf = self._load(session, inst, step)
        task = wf.get_task_from_id(UUID(ht.task_guid))
        if task is None or task.state != TaskState.READY:
            raise Conflict(f"task {task_id} is no longer ready in instance {inst.id}")
        if ht.form_id and self.form_validator is not None:
            # the task's data lets the form bind runtime parts (e.g. the merged checklist's clauses)
            errors = self.form_validator(ht.form_id, data, task.data)
            if errors:
                raise FormValidationError(f"form {ht.form_id} is not valid", errors)
        st = _StepState(before=self._snapshot(wf, inst))
        before = dict(task.data)
        task.data.update(data)
        task.run()
        st.completed_human_guids.add(ht.task_guid)
        now = clock.now()
        session.execute(_COMPLETE_HT, {"b_id": ht.id, "completed_at": now, "completed_by": user,
                                       "assignee": ht.assignee or user})
        session.execute(_DEL_HTC, {"b_task_id": ht.id})
        st.events.append(Event("task_completed", user, inst.id, ht.bpmn_id, ht.task_guid,
                               flow_ids=self._incoming_flow(inst.definition_id, task),
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
        st = _StepState(before=self._snapshot(wf, inst))
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

    # ------------------------------------------------------------------ jobs: timers and retries
    def run_job(self, session: Session, job: Job, actor: str = "worker") -> StepOutcome | None:
        """Run one claimed job inside the caller's transaction; the job row is consumed."""
        self._run_before_step(session)
        inst = self._lock_instance(session, job.instance_id)
        session.execute(delete(_JOB).where(_JOB.c.id == job.id))
        if inst.status != "running":
            return None
        step = StepContext(session, inst.id, inst.business_key, actor)
        wf = self._load(session, inst, step)
        st = _StepState(before=self._snapshot(wf, inst))
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
        else:
            raise InvalidInput(f"unknown job kind {job.kind!r}")
        return self._advance(session, inst, wf, st, actor, attempts=job.attempts + 1 if job.kind == "retry" else 0)

    def reschedule_timers(self, session: Session, recompute: Callable[[dict], dict | None], *,
                          actor: str = SYSTEM_ACTOR, reason: str = "") -> list[dict]:
        """Recompute waiting timers that remember how their deadline was computed.

        ``recompute(deadline) -> new deadline dict (with "at") or None`` gets each timer's remembered
        deadline (see :mod:`engine.runtime.timers`); a changed one is rescheduled in one step per
        instance (state, job row and an audited ``timer_rescheduled`` event)."""
        changed: list[dict] = []
        instance_ids = session.execute(
            select(_JOB.c.instance_id).join(_PI, _PI.c.id == _JOB.c.instance_id)
            .where(_JOB.c.kind == "timer", _PI.c.status.in_(("running", "suspended"))).distinct()).scalars().all()
        for instance_id in instance_ids:
            inst = self._lock_instance(session, instance_id)
            wf = self._load(session, inst, StepContext(session, inst.id, inst.business_key, actor))
            st = _StepState(before=self._snapshot(wf, inst))
            for task in wf.get_tasks(state=TaskState.WAITING):
                old = task.internal_data.get("deadline")
                if not old or "event_value" not in task.internal_data:
                    continue
                new = recompute(old)
                if not new or new.get("at") == old.get("at"):
                    continue
                task.internal_data["deadline"] = new
                task.internal_data["event_value"] = new["at"]
                entry = {"instance_id": inst.id, "bpmn_id": task.task_spec.bpmn_id, "old": old["at"],
                         "new": new["at"], "provisional": bool(new.get("provisional"))}
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
        st = _StepState(before=self._snapshot(wf, inst))
        now = clock.now()
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, user
        audit.system_event(session, "incident_retried", user, incident_id=incident.id, instance_id=inst.id)
        st.events.append(Event("incident_retried", user, inst.id, incident.bpmn_id, incident.task_guid,
                               detail={"incident_id": incident.id}))
        wf.reset_from_task_id(task.id)
        # a manual retry that fails again opens a new incident at once
        return self._advance(session, inst, wf, st, user, attempts=self.settings.service_retries)

    # ------------------------------------------------------------------ the step's second half
    def _advance(self, session: Session, inst: InstanceRow, wf: RegflowWorkflow, st: _StepState,
                 actor: str, *, attempts: int = 0, batch: "_Batch | None" = None,
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
        for task in completed:
            spec = task.task_spec
            if spec.bpmn_id is None or task.state != TaskState.COMPLETED:
                continue
            parent = task.parent
            flow_ids, detail = self._completed_texts(inst.definition_id, task)
            st.events.append(Event("element_completed", actor, inst.id, spec.bpmn_id, str(task.id),
                                   flow_ids=flow_ids,
                                   data_diff=_shallow_diff(parent.data if parent is not None else {}, task.data),
                                   detail=detail))
        now = now or clock.now()  # a batch of starts gives each instance's start time
        if wf.completed and failure is None:
            inst.status, inst.ended_at = "completed", now
            st.events.append(Event("instance_completed", actor, inst.id, detail={"data_keys": sorted(wf.data)}))
        inst.state = self.serializer.dumps(wf)
        inst.rev += 1
        inst.updated_at = now
        own_batch = batch is None
        batch = batch or _Batch()
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
        return StepOutcome(inst, failure)

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
    def _snapshot(self, wf: RegflowWorkflow, inst: InstanceRow) -> _Snapshot:
        snap = _Snapshot()
        if inst.status != "running":
            return snap
        d = self._defs.get(inst.definition_id)
        want_waiting = d is None or d.has_timers or d.has_messages
        for task in wf.get_tasks(state=TaskState.READY | TaskState.WAITING if want_waiting else TaskState.READY):
            spec = task.task_spec
            if task.state == TaskState.READY:
                if spec.manual:
                    snap.ready[str(task.id)] = task
                continue
            definition = getattr(spec, "event_definition", None)
            if definition is None:
                continue
            if _is_timer(definition):
                value = definition.details(task).value
                if isinstance(definition, MultipleEventDefinition):
                    value = next((x.details(task).value for x in definition.event_definitions
                                  if isinstance(x, TimerEventDefinition)), value)
                if value:
                    snap.timers[str(task.id)] = (spec.bpmn_id, TimerEventDefinition.get_datetime(value))
            for name in _message_names(definition):
                pending = definition.details(task)
                corr: dict = {}
                for props in (pending.correlations or {}).values():
                    if isinstance(props, dict):
                        corr.update(props)
                snap.subs[f"{task.id}|{name}"] = (str(task.id), spec.bpmn_id, name, corr)
        return snap

    def _project(self, inst: InstanceRow, wf: RegflowWorkflow, st: _StepState, actor: str, now: datetime,
                 batch: "_Batch") -> None:
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
        for guid, (bpmn_id, due) in before.timers.items():
            if after.timers.get(guid, (None, None))[1] != due:
                batch.drop_jobs.append((inst.id, guid))
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
class _TaskView:
    id: int
    task_guid: str
    bpmn_id: str
    status: str
    assignee: str | None
    candidate_groups: list[str]
    form_id: str | None
    completed_by: str | None


@dataclass
class _Batch:
    """Rows of one or many steps, written with one statement per table."""

    instances: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    cancel_tasks: list[str] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    drop_jobs: list[tuple[int, str]] = field(default_factory=list)
    subs: list[dict] = field(default_factory=list)
    drop_subs: list[tuple[int, str, str]] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    #: state saves of new instances whose rows were inserted early (``_SAVE_PI`` parameters)
    saves: list[dict] = field(default_factory=list)

    def clear(self) -> None:
        for f in fields(self):
            getattr(self, f.name).clear()

    def extend(self, other: "_Batch") -> None:
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))

    def flush(self, session: Session, ids: _IdAllocator) -> None:
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
        for instance_id, guid in self.drop_jobs:
            session.execute(delete(_JOB).where(_JOB.c.instance_id == instance_id, _JOB.c.task_guid == guid,
                                               _JOB.c.kind == "timer"))
        if self.jobs:
            session.execute(_INS_JOB, self.jobs)
        for instance_id, guid, name in self.drop_subs:
            session.execute(delete(_SUB).where(_SUB.c.instance_id == instance_id, _SUB.c.task_guid == guid,
                                               _SUB.c.message_name == name))
        if self.subs:
            session.execute(_INS_SUB, self.subs)
        audit.insert_rows(session, self.audit)

