"""The script engine regflow attaches to every workflow: restricted scripting plus service dispatch.

An engine carries the running step's session and instance (``step``) so that service callables join the
step's transaction (inside a savepoint, unless the operator is registered as only reading) and know their
idempotency key. A batch of starts shares one engine and sets ``step`` before each instance runs.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition
from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.db import held_back
from engine.errors import ScriptError

from . import clock
from .script_budget import limits_for
from .scripting import Helpers, RestrictedScriptEngine
from .services import BpmnError, ServiceContext, ServiceRegistry

#: check that operators registered with ``writes=False`` do not write (the ``engine_cross_check`` setting,
#: given by :func:`set_cross_check`; the test suite turns it on)
CROSS_CHECK = False


def set_cross_check(enabled: bool) -> None:
    global CROSS_CHECK
    CROSS_CHECK = enabled


class UnknownOperator(ScriptError):
    pass


class Replay(BaseException):
    """An optimistic batch of starts (:meth:`Runtime.start_many`) met a failing service call: the batch is
    rolled back to its savepoint and run again with a savepoint around every call. A ``BaseException`` so
    that SpiffWorkflow's task error handling does not turn it into a task error on the way out."""

    def __init__(self, op_id: str, error: Exception):
        super().__init__(f"service {op_id} failed in an optimistic batch: {type(error).__name__}: {error}")
        self.error = error


@dataclass
class StepContext:
    session: Session
    instance_id: int
    business_key: str | None
    actor: str
    #: writes a not-yet-inserted instance row before a service task touches the database
    ensure_instance: Callable[[], None] | None = None
    #: the step creates the instance (``ServiceContext.new_instance``)
    new_instance: bool = False
    #: part of an optimistic batch: writing operators run without their own savepoint, and any failure
    #: raises :class:`Replay` (the batch has one savepoint for all of them)
    optimistic: bool = False
    #: audit events the step's successful service calls handed over (``ServiceContext.events``), taken into the
    #: step's events when its engine steps are done (``StepMixin._advance``)
    events: list = field(default_factory=list)


def _json_default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"service result contains a {type(value).__name__}, which is not JSON data")


class RegflowScriptEngine(RestrictedScriptEngine):
    """``helpers``: the runtime's :class:`~engine.runtime.script_builtins.HelperRegistry` (or a mapping); the
    size and memory limits come from the runtime's settings (``script_max_items``, ``script_max_memory_mb``)."""

    def __init__(self, services: ServiceRegistry, step: StepContext | None, *, time_budget_s: float,
                 helpers: Helpers = None, runtime: Any = None):
        settings = getattr(runtime, "settings", None)
        limits = None if settings is None else limits_for(settings.script_max_items, settings.script_max_memory_mb)
        super().__init__(clock=clock.now, time_budget_s=time_budget_s, helpers=helpers, limits=limits)
        self.services = services
        self.step = step
        #: the runtime running the steps (``ServiceContext.runtime``)
        self.runtime = runtime

    def call_service(self, task, operation_name=None, operation_params=None, **_kw):
        op = self.services.get(operation_name)
        if op is None:
            raise UnknownOperator(f"unknown service operator {operation_name!r}")
        values = {k: v["value"] for k, v in (operation_params or {}).items()}
        self.services.check_values(op, values)
        step = self.step
        if step is None:
            raise RuntimeError("service tasks run only inside a regflow step")
        if step.ensure_instance is not None and op.instance_row:
            step.ensure_instance()
        ctx = ServiceContext(session=step.session, instance_id=step.instance_id, task_guid=str(task.id),
                             bpmn_id=task.task_spec.bpmn_id, business_key=step.business_key, actor=step.actor,
                             now=clock.now(), data=task.data, new_instance=step.new_instance, runtime=self.runtime,
                             task=task)
        if not op.writes:
            return self._call_reading(op, ctx, values, task)
        if step.optimistic:
            try:
                text = _run(op, ctx, values)
            except Exception as exc:
                raise Replay(op.id, exc) from exc
            step.events.extend(ctx.events)
            return text
        savepoint = step.session.begin_nested()
        try:
            text = _run(op, ctx, values)
            savepoint.commit()
            step.events.extend(ctx.events)
            return text
        except Exception as exc:
            if savepoint.is_active:
                savepoint.rollback()
            # the rollback expires what the unit of work wrote; an operator may also have written with Core
            # and set the loaded objects' committed values (scoring does): nothing loaded may keep them
            step.session.expire_all()
            return self._failed(op, exc, task)

    def _call_reading(self, op, ctx: ServiceContext, values: dict, task) -> str:
        """An operator that only reads: no savepoint to open, release or roll back."""
        try:
            if CROSS_CHECK:
                with _no_writes(ctx.session, op.id):
                    return _run(op, ctx, values)
            return _run(op, ctx, values)
        except Exception as exc:
            return self._failed(op, exc, task)

    @staticmethod
    def _failed(op, exc: Exception, task) -> str:
        """``exc`` from a service call: an error boundary that catches its code gets it (the task's result is
        null), a declared business error nobody catches becomes a :class:`BpmnError` (an incident at once),
        anything else propagates (retried, then an incident)."""
        code = exc.code if isinstance(exc, BpmnError) else next(
            (c for cls, c in op.errors.items() if isinstance(exc, cls)), None)
        if code is not None and _error_is_caught(task, code):
            payload = exc.payload if isinstance(exc, BpmnError) else {"code": code, "message": str(exc)}
            caught = BpmnEvent(ErrorEventDefinition(code, code=code), payload, target=task.workflow)
            task.workflow.top_workflow.catch(caught)
            return json.dumps(None)
        if code is not None and not isinstance(exc, BpmnError):
            # a business error nobody catches: retrying cannot help, so it becomes an incident at once
            raise BpmnError(code, f"{type(exc).__name__}: {exc}") from exc
        raise exc


def _run(op, ctx: ServiceContext, values: dict) -> str:
    """The operator's result as the JSON text SpiffWorkflow expects from a service call."""
    return json.dumps(op.fn(ctx, **values), default=_json_default, ensure_ascii=False)


@contextmanager
def _no_writes(session: Session, op_id: str):
    """``CROSS_CHECK``: an operator registered with ``writes=False`` must not write (it runs without a
    savepoint, so a failure after a write would leave the write behind)."""
    def check(_conn, _cursor, statement, *_a):
        if not statement.lstrip().upper().startswith(("SELECT", "WITH", "PRAGMA")):
            raise AssertionError(f"service {op_id} is registered with writes=False but ran: {statement[:80]}")

    conn = session.connection()
    event.listen(conn, "before_cursor_execute", check)
    held = held_back(session, since_start=True)
    try:
        yield
        if session.new or session.dirty or session.deleted:
            raise AssertionError(f"service {op_id} is registered with writes=False but changed ORM objects")
        if held_back(session, since_start=True) != held:
            raise AssertionError(f"service {op_id} is registered with writes=False but held back a write")
    finally:
        event.remove(conn, "before_cursor_execute", check)


def _error_is_caught(task, code: str) -> bool:
    """Is there a waiting error boundary event on this task (or an enclosing activity) for ``code``?"""
    manager = task.workflow.top_workflow.event_manager
    for waiting in manager.tasks.values():
        definition = getattr(waiting.task_spec, "event_definition", None)
        if isinstance(definition, ErrorEventDefinition) and definition.code in (None, code):
            anc = waiting.parent
            # a boundary event hangs under a BoundaryEventSplit whose first child is the activity
            if anc is not None and any(c is task or _is_ancestor(c, task) for c in anc.children):
                return True
    return False


def _is_ancestor(candidate, task) -> bool:
    wf = task.workflow
    # tasks inside a call activity: walk up through the subprocess' parent task
    while wf is not None and wf.parent_task_id is not None:
        parent_task = wf.top_workflow.get_task_from_id(wf.parent_task_id)
        if parent_task is candidate:
            return True
        wf = parent_task.workflow
    return False
