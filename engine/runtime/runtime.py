"""The runtime: every change to an instance is one atomic step (ARCHITECTURE.md, *The data path of a task
completion*).

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

:class:`Runtime` is the one public entry. This module holds its constructor, definitions, instance locking
and loading, and starts (one, or a batch: ``start_many``); the rest is mixed in from

- :mod:`engine.runtime.human_tasks` — claim, unclaim, delegate, complete a task; the generic task guard;
- :mod:`engine.runtime.lifecycle` — messages, suspend / resume / terminate, jobs (timers, retries),
  rescheduled timers, incident retries;
- :mod:`engine.runtime.steps` — the step's second half (``_advance``: engine steps, failures, state save,
  projections, audit) and the :class:`~engine.runtime.steps.Batch` of rows it writes;

and the plain data they share is in :mod:`engine.runtime.step_data`.
"""
from __future__ import annotations

import gc
import logging
import threading
from datetime import datetime
from functools import partial
from typing import Any, Callable

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from engine.config import Settings, load_settings
from engine.db import DeferredWriteError, IdAllocator, deferred_writes, held_back_groups, hold_back
from engine.errors import InvalidInput, NotFound

from . import audit, clock, parallel
from .audit import Event
from .human_tasks import HumanTaskMixin
from .lifecycle import LifecycleMixin
from .models import ProcessDefinition, ProcessInstance
from .script_engine import RegflowScriptEngine, Replay, StepContext
from .scripting import HelperRegistry, helper_registry
from .serializer import LIBRARY_VERSION, SERIALIZER_VERSION, RegflowWorkflow, StateSerializer
from .services import ServiceRegistry
from .services import registry as default_registry
from .step_data import INSTANCE_COLUMNS, SYSTEM_ACTOR, Definition, InstanceRow, StepOutcome, StepState
from .steps import Batch, StepMixin, is_timer, message_names

__all__ = ["FormValidator", "InstanceRow", "Runtime", "StepOutcome", "SYSTEM_ACTOR", "TaskGuard"]

log = logging.getLogger(__name__)

#: ``form_validator(form_id, data, task_data, lang) -> (clean data, {field: message})``: validates and coerces a
#: task's input once; the engine stores the clean data. The forms package plugs in here.
FormValidator = Callable[..., tuple[dict, dict]]
#: ``task_guard(session, user, task, action)`` raises :class:`NotAllowed` unless ``user`` (a user name, or the
#: actor object an edge passes) may ``action`` (claim, unclaim, delegate, complete) the locked ``task``. The
#: application's authorization policy plugs in here; without one, the generic rule applies
#: (``_generic_guard`` in :mod:`engine.runtime.human_tasks`).
TaskGuard = Callable[[Session, Any, Any, str], None]

_PI = ProcessInstance.__table__
_LOCK_PI = select(*INSTANCE_COLUMNS).where(_PI.c.id == bindparam("instance_id"))
_LOCK_PI_PG = _LOCK_PI.with_for_update()
_LATEST_PG = text("select (select id from process_definition where process_id = :p order by version desc limit 1), "
                  "nextval(:s) from generate_series(1, :n)")
_LATEST_SQLITE = text("select (select id from process_definition where process_id = :p order by version desc "
                      "limit 1), (select coalesce(max(id), 0) from process_instance)")


# Tuning of batches of starts, read by ``start_many`` and its helpers below (tests tune them on this module).
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


class Runtime(HumanTaskMixin, LifecycleMixin, StepMixin):
    """Deploys definitions and runs instances. One per process; thread-safe (no per-step state)."""

    def __init__(self, settings: Settings | None = None, services: ServiceRegistry | None = None,
                 form_validator: FormValidator | None = None, helpers: HelperRegistry | dict | None = None,
                 task_guard: TaskGuard | None = None,
                 before_step: list[Callable[[Session], None]] | None = None,
                 serializer_hooks: list[Callable] | None = None,
                 terminate_hooks: list[Callable[[Session, int, str, datetime], dict | None]] | None = None):
        self.settings = settings or load_settings()
        #: batches of starts at least this long are computed in two processes (0: never)
        self._split_from = self.settings.parallel_start_from
        # per thread: one Runtime serves every request thread of a web process
        self._thread_state = threading.local()
        self.services = services or default_registry
        self.form_validator = form_validator
        self.task_guard = task_guard or self._generic_guard
        #: the helper functions this runtime's scripts and expressions may call (``workdays`` …): its own registry
        #: (given, or a new one holding the given mapping); register more with ``runtime.helpers.register``
        self.helpers: HelperRegistry = helper_registry(helpers)
        #: called with the session before every step (e.g. reload a calendar another process changed)
        self.before_step = list(before_step or [])
        #: called with (session, instance id, reason, now) when an administrator terminates an instance, in
        #: the same transaction: domain clean-up the process can no longer do (e.g. release its team). What
        #: they return (a dict) is recorded in a ``termination_cleanup`` audit event.
        self.terminate_hooks = list(terminate_hooks or [])
        self._defs: dict[int, Definition] = {}
        self._lock = threading.Lock()
        self._ids = _IdAllocator()
        self.serializer = StateSerializer(self._resolve_spec, serializer_hooks or [])

    @property
    def last_split(self) -> list[dict] | None:
        """What the calling thread's last batch computed in two processes did, window by window (diagnostics,
        ``bench/loop.py``); ``None`` when it ran in one process. Per thread, so the shared runtime stays
        thread-safe."""
        return getattr(self._thread_state, "last_split", None)

    @last_split.setter
    def last_split(self, value: list[dict] | None) -> None:
        self._thread_state.last_split = value

    def _run_before_step(self, session: Session) -> None:
        for hook in self.before_step:
            hook(session)

    # ------------------------------------------------------------------ definitions and specs
    def _resolve_spec(self, definition_id: int):
        d = self._defs[definition_id]
        return d.spec, d.subs

    def definition(self, session: Session, definition_id: int) -> Definition:
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
                has_timers = has_timers or is_timer(ed)
                has_messages = has_messages or bool(message_names(ed))
        d = Definition(row.id, row.process_id, row.version, spec, subs, row.flow_index or {}, row.forms or {},
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
        row = session.execute(select(*INSTANCE_COLUMNS).where(_PI.c.id == instance_id)).first()
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
        batch = Batch()
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
                     parent_instance_id: int | None, engine, batch: "Batch", outcomes: list) -> None:
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
            child_batch, child_outcomes = Batch(), []
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
                    parent_instance_id: int | None, engine, batch: "Batch", outcomes: list, *,
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
            st = StepState()
            st.events.append(Event("instance_started", actor, iid, detail={
                "process_id": process_id, "version": d.version, "definition_id": d.id, "business_key": key},
                data_diff={k: {"new": v} for k, v in data.items()}))
            outcomes.append(self._advance(session, inst, wf, st, actor, batch=batch, now=now))
