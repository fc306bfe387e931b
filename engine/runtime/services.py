"""The service-task registry: BPMN ``serviceTaskOperator id`` -> a Python callable with declared parameters.

A callable takes a :class:`ServiceContext` and keyword parameters and returns JSON-serializable data,
which SpiffWorkflow stores under the task's ``resultVariable``. Domain writes go through
``ctx.session``: they join the step's transaction inside a savepoint, so a failing call leaves no
trace and a retry never duplicates them (an operator registered with ``writes=False`` only reads, and
runs without one). ``ctx.idempotency_key`` (instance and task) names the call for
anything outside the database.

To route a business failure to an error boundary event, raise :class:`BpmnError` with the code the
boundary catches, or declare ``errors={ExceptionClass: "code"}`` when registering.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session


class BpmnError(Exception):
    """A business error with a BPMN error code, catchable by an error boundary event."""

    def __init__(self, code: str, message: str = "", payload: Any = None):
        super().__init__(message or code)
        self.code = code
        self.payload = payload if payload is not None else {"code": code, "message": message or code}


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "any"  # str | int | float | number | bool | dict | list | any
    required: bool = True
    description: str = ""


@dataclass
class Operator:
    id: str
    fn: Callable[..., Any]
    params: tuple[Param, ...]
    description: str = ""
    errors: dict[type, str] = field(default_factory=dict)
    #: False for an operator that only reads: it runs without a savepoint (nothing to take back when it
    #: fails); with ``REGFLOW_ENGINE_CROSS_CHECK=1`` (tests) a write from it is an error
    writes: bool = True
    #: False for an operator that neither reads the calling instance's own row nor writes a row that refers
    #: to it by foreign key (``team.form``, ``risk.score``, ...): a new instance's row need not be written before
    #: it runs, so a batch of starts writes all of them in one statement afterwards. True (the default) writes
    #: the row of an instance created by this step before the call.
    instance_row: bool = True

    def describe(self) -> dict:
        return {
            "id": self.id,
            "description": self.description,
            "parameters": [{"id": p.name, "type": p.type, "required": p.required, "description": p.description}
                           for p in self.params],
        }


@dataclass
class ServiceContext:
    session: Session
    instance_id: int
    task_guid: str
    bpmn_id: str
    business_key: str | None
    actor: str
    now: datetime
    data: dict = field(default_factory=dict)
    #: the instance was created by this step: nothing can have been written under its idempotency key
    #: before (an operator may skip looking for an earlier call's effect)
    new_instance: bool = False
    #: the runtime running the step (an operator that starts instances starts them with it, and its settings)
    runtime: Any = None
    #: the SpiffWorkflow task of the service task (e.g. for :func:`engine.runtime.timers.move_waiting_timers`)
    task: Any = None
    #: audit events (:class:`engine.runtime.audit.Event`) for the instance's own chain: the step appends them to
    #: its events when the call succeeds (a failed call's are dropped with its savepoint) — an operator must not
    #: write to the chain of the instance whose step is running, whose head the step holds in memory
    events: list = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return f"{self.instance_id}:{self.task_guid}"


_TYPES = {
    "str": (str,), "string": (str,), "int": (int,), "integer": (int,), "float": (int, float),
    "number": (int, float), "bool": (bool,), "boolean": (bool,), "dict": (dict,), "list": (list, tuple),
}


class ServiceRegistry:
    def __init__(self) -> None:
        self._ops: dict[str, Operator] = {}

    def register(self, op_id: str, *, params: list[Param] | tuple[Param, ...] = (), description: str = "",
                 errors: dict[type, str] | None = None, writes: bool = True, instance_row: bool = True):
        """Decorator: ``@registry.register("risk.score", params=[Param("entity_id", "int")])``; ``writes=False``
        declares an operator that only reads, ``instance_row=False`` one that does not need the calling
        instance's row (:attr:`Operator.instance_row`)."""

        def deco(fn):
            self.add(Operator(op_id, fn, tuple(params), description or (inspect.getdoc(fn) or "").split("\n")[0],
                              dict(errors or {}), writes, instance_row))
            return fn

        return deco

    def add(self, op: Operator) -> None:
        if op.id in self._ops and self._ops[op.id].fn is not op.fn:
            raise ValueError(f"service operator {op.id!r} is already registered")
        self._ops[op.id] = op

    def get(self, op_id: str) -> Operator | None:
        return self._ops.get(op_id)

    def ids(self) -> list[str]:
        return sorted(self._ops)

    def describe(self) -> list[dict]:
        return [self._ops[k].describe() for k in sorted(self._ops)]

    def check_call_site(self, op_id: str, param_names: list[str]) -> list[str]:
        """Deploy-time check of a service task: problems as messages (empty if fine)."""
        op = self._ops.get(op_id)
        if op is None:
            known = ", ".join(self.ids()) or "none registered"
            return [f"unknown service operator {op_id!r} (known: {known})"]
        problems = []
        declared = {p.name for p in op.params}
        for p in op.params:
            if p.required and p.name not in param_names:
                problems.append(f"operator {op_id!r} needs parameter {p.name!r}")
        for name in param_names:
            if name not in declared:
                problems.append(f"operator {op_id!r} has no parameter {name!r} (declared: {sorted(declared)})")
        return problems

    def check_values(self, op: Operator, values: dict[str, Any]) -> None:
        for p in op.params:
            if p.name not in values:
                if p.required:
                    raise TypeError(f"service {op.id}: missing parameter {p.name!r}")
                continue
            expected = _TYPES.get(p.type)
            v = values[p.name]
            if expected and v is not None and (not isinstance(v, expected) or
                                               (isinstance(v, bool) and bool not in expected)):
                raise TypeError(f"service {op.id}: parameter {p.name!r} should be {p.type}, got {type(v).__name__}")


#: The process-wide registry that BPMN service tasks dispatch to.
registry = ServiceRegistry()
