"""Timer event definitions that read regflow's clock, and the parser/serializer wiring for them.

SpiffWorkflow 3.2.0 calls ``datetime.now(timezone.utc)`` inside its timer definitions. We subclass
the three of them, re-implement the two methods that read the clock, make the spiff event parsers
create our subclasses, and register the subclasses with the serializer under their own names.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.util.task import TaskState

from . import clock


def _remember_deadline(my_task, value) -> None:
    """A deadline helper's result (e.g. ``workdays(10)``) says how it was computed; keep that beside the
    timer so the timer can be recomputed later (e.g. once a provisional calendar year is loaded)."""
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None and hasattr(value, "provisional"):
        my_task._set_internal_data(deadline=to_dict())


def _to_text(value) -> str:
    """A timer expression may evaluate to an ISO string, a datetime or a timedelta."""
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        if value.tzinfo is None:
            raise ValueError(f"timer date {value!r} has no timezone")
        return value.isoformat()
    if isinstance(value, timedelta):
        return (clock.now() + value).isoformat()
    return str(value)


class ClockTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            _remember_deadline(my_task, value)
            event_value = _to_text(value)
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.parse_time_or_duration(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            if isinstance(value, timedelta):
                event_value = (clock.now() + value).isoformat()
            elif hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
                # A deadline helper (e.g. workdays(5)) may give the due date itself.
                _remember_deadline(my_task, value)
                event_value = _to_text(value)
            else:
                parsed = TimerEventDefinition.parse_iso_duration(str(value))
                start = clock.now()
                event_value = (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = _to_text(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            cycles, start, duration = _parse_cycle(expression)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= clock.now():
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _parse_cycle(expression: str):
    """Like the library's recurring-interval parser, but an open start means "now" on our clock."""
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2:
        first = TimerEventDefinition.parse_time_or_duration(components[1])
        if isinstance(first, dict):
            cycles = int(components[0]) if components[0] else -1
            start = clock.now()
            duration = TimerEventDefinition.get_timedelta_from_start(dict(first), start)
            return cycles, start + duration, duration
    return TimerEventDefinition.parse_iso_recurring_interval(expression)


CLOCK_TIMERS = {
    TimeDateEventDefinition: ClockTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockCycleTimerEventDefinition,
}


class _ClockTimerParserMixin:
    def parse_timer_event(self, event):
        definition = super().parse_timer_event(event)
        ours = CLOCK_TIMERS.get(type(definition))
        if ours is None:
            return definition
        return ours(definition.name, definition.expression, description=definition.description)


class ClockStartEventParser(_ClockTimerParserMixin, SpiffStartEventParser):
    pass


class ClockBoundaryEventParser(_ClockTimerParserMixin, SpiffBoundaryEventParser):
    pass


class ClockIntermediateCatchEventParser(_ClockTimerParserMixin, SpiffIntermediateCatchEventParser):
    pass


def serializer_config() -> dict:
    """Converters for our timer classes (each stored under its own class name)."""
    return {cls: TimerConditionalEventDefinitionConverter for cls in CLOCK_TIMERS.values()}


def move_waiting_timers(task: Any, new_times: dict[str, datetime]) -> list[dict]:
    """From inside a step (a service operator's ``ServiceContext.task``): make the waiting timer events of
    ``task``'s instance whose BPMN ids are keys of ``new_times`` fire at the given (aware) times instead. The
    step's save sees the changed times and rewrites their job rows; returns ``{"bpmn_id", "old", "new"}`` for each
    timer moved. A remembered deadline (``workdays(n)``) is forgotten: the new time no longer derives from it."""
    workflow = getattr(task.workflow, "top_workflow", None) or task.workflow
    moved = []
    for waiting in workflow.get_tasks(state=TaskState.WAITING):
        at = new_times.get(waiting.task_spec.bpmn_id)
        if at is None or "event_value" not in waiting.internal_data:
            continue
        if at.tzinfo is None:
            raise ValueError(f"timer time {at!r} has no timezone")
        old, new = waiting.internal_data["event_value"], at.isoformat()
        if old != new:
            waiting.internal_data["event_value"] = new
            waiting.internal_data.pop("deadline", None)
            moved.append({"bpmn_id": waiting.task_spec.bpmn_id, "old": old, "new": new})
    return moved
