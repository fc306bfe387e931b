"""Asynchronous continuations: a task the step that reaches it does not run, handed to the worker instead.

A BPMN element the engine runs (a service or script task, a gateway, an event; never a user or manual task)
carries the property ``async`` = ``before`` (``<spiffworkflow:property name="async" value="before"/>``, as
Camunda's ``asyncBefore``): the step that makes it READY stops there and leaves it READY — it is *held* —
and the step's projection writes a job of kind ``continue`` for it, due at once (``engine.runtime.steps``).
Any worker claims that job as it claims timers and retries (row lock / lease, ``engine.runtime.worker``) and
runs it in a transaction of its own: it *releases* the task (a mark in the task's internal data) and advances
the workflow, so the task runs there, with the usual failure handling (a retry job, then an incident). A held
task that is cancelled before its job ran (an interrupting boundary event, a terminated instance) loses its
job with it. Long work a person's action reaches — a campaign's launch of thousands of inspections — so never
runs in that person's request.

:meth:`engine.runtime.serializer.RegflowWorkflow._do_engine_steps` skips the held tasks; nothing else in
SpiffWorkflow runs a READY engine task on its own.
"""
from __future__ import annotations

from typing import Any

#: the element property that asks for an asynchronous continuation, and the one value it takes
ASYNC_PROPERTY = "async"
ASYNC_BEFORE = "before"
#: the job kind of a held task
CONTINUE_JOB = "continue"
#: the task's internal data: released by its continue job (it runs in the next engine steps)
_RELEASED = "async_released"
#: the task's internal data: the attempts its continue job carries (an incident retried by a person)
_ATTEMPTS = "async_attempts"


def is_async_before(spec: Any) -> bool:
    """Whether a task spec asks to run in the worker (``async`` = ``before``)."""
    extensions = getattr(spec, "extensions", None)
    if not extensions:
        return False
    props = extensions.get("properties")
    return bool(props) and str(props.get(ASYNC_PROPERTY, "")).strip() == ASYNC_BEFORE


def held(task: Any) -> bool:
    """Whether the engine steps must leave this READY task for its continue job."""
    return (not task.task_spec.manual and is_async_before(task.task_spec)
            and not task.internal_data.get(_RELEASED))


def release(task: Any) -> None:
    """Let the next engine steps run the task (its continue job, or a retry, is running it)."""
    task.internal_data[_RELEASED] = True


def queue_with_attempts(task: Any, attempts: int) -> None:
    """Hold the task again (it was reset) with a continue job that carries ``attempts`` (a failure of the
    retried run then counts from there)."""
    task.internal_data.pop(_RELEASED, None)
    task.internal_data[_ATTEMPTS] = attempts


def attempts_of(task: Any) -> int:
    """The attempts the held task's continue job carries."""
    return int(task.internal_data.get(_ATTEMPTS, 0) or 0)


def property_problem(spec: Any) -> str | None:
    """What is wrong with a task spec's ``async`` property, for the deploy's validation; None if nothing."""
    props = (getattr(spec, "extensions", None) or {}).get("properties") or {}
    if ASYNC_PROPERTY not in props:
        return None
    value = str(props.get(ASYNC_PROPERTY) or "").strip()
    element = getattr(spec, "bpmn_id", None) or spec.name
    if value != ASYNC_BEFORE:
        return (f"element {element!r}: property async must be {ASYNC_BEFORE!r} (run the element in the worker, "
                f"not in the step that reaches it), got {value!r}")
    if getattr(spec, "manual", False):
        return (f"element {element!r}: property async applies to elements the engine runs (service, script "
                "and business-rule tasks, gateways, events), not to user or manual tasks, which wait for a "
                "person anyway")
    return None
