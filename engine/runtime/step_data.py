"""The plain data one step of the runtime works with (``engine.runtime.runtime``).

An instance's row as the step sees it (:class:`InstanceRow`), what the step returns (:class:`StepOutcome`),
what it collects while it runs (:class:`StepState`, :class:`Snapshot`) and a deployed definition as the
runtime caches it (:class:`Definition`). Nothing here touches the database or the workflow.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from . import audit
from .audit import Event
from .models import ProcessInstance

#: the actor of what the engine does on its own (starts by the system, message correlation, ...)
SYSTEM_ACTOR = "system"
_PI = ProcessInstance.__table__


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
#: the process_instance columns an :class:`InstanceRow` is read from, in its fields' order
INSTANCE_COLUMNS = [_PI.c[name] for name in _INSTANCE_FIELDS]


@dataclass
class StepOutcome:
    instance: InstanceRow
    failure: dict | None = None
    #: the tasks this step held for an asynchronous continuation (``engine.runtime.continuations``): each
    #: ``{"process_id", "bpmn_id", "task_guid", "name"}``, run by a worker's ``continue`` job after the commit
    queued: list[dict] = field(default_factory=list)


@dataclass
class Snapshot:
    """The projections a workflow implies: READY manual tasks, waiting timers, message waits, held tasks."""

    ready: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    subs: dict[str, tuple[str, str, str, dict]] = field(default_factory=dict)
    #: READY tasks held for an asynchronous continuation: guid -> (bpmn_id, attempts its job carries, task)
    held: dict[str, tuple[str, int, Any]] = field(default_factory=dict)


@dataclass
class StepState:
    """What one step collects while it runs, turned into audit rows and projections at the end."""

    events: list[Event] = field(default_factory=list)
    completed_human_guids: set[str] = field(default_factory=set)
    before: Snapshot = field(default_factory=Snapshot)
    #: the tasks held by this step (:attr:`StepOutcome.queued`)
    queued: list[dict] = field(default_factory=list)


@dataclass
class Definition:
    """A deployed process definition as the runtime caches it: its parsed specs and what a step looks up."""

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
