"""Workflow state (de)serialization with the spec stored by reference.

SpiffWorkflow embeds the whole spec in every serialized state; regflow stores the spec once per
process definition and writes only ``spec_ref`` (the definition id) into each instance's state.
Loading re-attaches the cached spec objects. The serializer version and the library version are
recorded per instance; a state written by any other serializer version is refused, never guessed.

Importing this module changes nothing. The faster ways of this module — :class:`RegflowWorkflow`'s tree
walks, the one-pass task serialization (:func:`tasks_to_dict`) and the orjson encoding of
:meth:`StateSerializer.dumps` — read SpiffWorkflow 3.2.0's private attributes, and run only once
:func:`engine.runtime.spiff_speedups.install` has checked that release and put its replacements in place
(:data:`~engine.runtime.spiff_speedups.ACTIVE`); until then each takes SpiffWorkflow's own way. A
:class:`RegflowWorkflow` installs them when it is made (every workflow the engine builds or loads is one);
``build_runtime`` does so first, through :func:`engine.runtime.patches.install`.
"""
from __future__ import annotations

import json
import logging
from importlib.metadata import version as _dist_version
from types import ModuleType
from typing import Any, Callable
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState

from engine.errors import EngineError

from . import spiff_speedups
from .continuations import held
from .spiff_speedups import FAST_FILTERS, FLAT_STATES, flat_matches, iter_tasks
from .timers import serializer_config as timer_serializer_config

LIBRARY_VERSION = _dist_version("spiffworkflow")
_SPIFF_WORKFLOW_LOG = logging.getLogger("spiff.workflow")

#: check every state written against SpiffWorkflow's own converter and the standard JSON encoder (the
#: ``serializer_cross_check`` setting, given by :func:`set_cross_check`)
CROSS_CHECK = False


def set_cross_check(enabled: bool) -> None:
    global CROSS_CHECK
    CROSS_CHECK = enabled


class StateVersionError(EngineError):
    """A stored state from a serializer version this build cannot read faithfully."""


class RegflowWorkflow(BpmnWorkflow):
    """A BpmnWorkflow that knows which process definition its spec came from, and walks its task tree
    with :func:`~engine.runtime.spiff_speedups.iter_tasks` (the same walk, cheaper); its engine steps leave the
    tasks held for an asynchronous continuation (:mod:`engine.runtime.continuations`) READY. Making one installs
    :mod:`~engine.runtime.spiff_speedups` if nothing has yet (idempotent; raises
    :class:`~engine.runtime.spiff_speedups.UnsupportedSpiffWorkflow` on another SpiffWorkflow release)."""

    def __init__(self, spec, subprocess_specs=None, script_engine=None, spec_ref=None, **kwargs):
        if not spiff_speedups.ACTIVE:
            spiff_speedups.install()
        super().__init__(spec, subprocess_specs, script_engine=script_engine, **kwargs)
        self.spec_ref = spec_ref

    def get_tasks_iterator(self, first_task=None, **kwargs):
        if kwargs.keys() <= FAST_FILTERS and spiff_speedups.ACTIVE:
            state = kwargs.get("state")
            if (first_task is None and len(kwargs) == 1 and state is not None and not state & ~FLAT_STATES
                    and not self.subprocesses):
                # the engine's "what is READY now" and the like: usually one task or none, found without a walk
                found = flat_matches(self.tasks, state)
                if len(found) <= 1:
                    if spiff_speedups.CROSS_CHECK:
                        spiff_speedups.checked(iter(found), super().get_tasks_iterator(None, **kwargs),
                                               f"get_tasks({kwargs}) from the flat mapping")
                    return iter(found)
            root = first_task or self.task_tree
            if spiff_speedups.CROSS_CHECK:
                spiff_speedups.checked(iter_tasks(root, subprocesses=True, **kwargs),
                                       super().get_tasks_iterator(first_task, **kwargs), f"get_tasks({kwargs})")
            return iter_tasks(root, subprocesses=True, **kwargs)
        return super().get_tasks_iterator(first_task, **kwargs)

    def _do_engine_steps(self, will_complete_task=None, did_complete_task=None):
        # BpmnWorkflow._do_engine_steps (3.2.0), except that a READY task held for an asynchronous continuation
        # (engine.runtime.continuations) is left READY for its continue job instead of being run
        def update_workflow(wf) -> int:
            count = 0
            for task in wf.get_tasks(state=TaskState.READY):
                if task.task_spec.manual or held(task):
                    continue
                if will_complete_task is not None:
                    will_complete_task(task)
                task.run()
                count += 1
                if did_complete_task is not None:
                    did_complete_task(task)
            return count

        active_subprocesses = self.get_active_subprocesses()
        for subprocess in sorted(active_subprocesses, key=lambda v: v.depth, reverse=True):
            count = None
            while count is None or count > 0:
                count = update_workflow(subprocess)
            if subprocess.parent_task_id is not None:
                task = self.get_task_from_id(subprocess.parent_task_id)
                task.task_spec._update(task)
        count = update_workflow(self)
        return count > 0 or len(self.get_active_subprocesses()) > len(active_subprocesses)

    def update_waiting_tasks(self) -> None:
        # Workflow.update_waiting_tasks: the WAITING tasks of this tree (not of subprocesses), after every completion
        if not spiff_speedups.ACTIVE:
            return super().update_waiting_tasks()
        waiting = flat_matches(self.tasks, TaskState.WAITING)
        if spiff_speedups.CROSS_CHECK:
            spiff_speedups.checked(iter_tasks(self.task_tree, subprocesses=False, state=TaskState.WAITING),
                                   TaskIterator(self.task_tree, state=TaskState.WAITING), "update_waiting_tasks")
            if len(waiting) <= 1:
                spiff_speedups.checked(iter(waiting), TaskIterator(self.task_tree, state=TaskState.WAITING),
                                       "update_waiting_tasks from the flat mapping")
        if not waiting:  # most completions: nothing waits, no walk
            return
        if len(waiting) > 1:  # the walk's order
            waiting = iter_tasks(self.task_tree, subprocesses=False, state=TaskState.WAITING)
        for task in waiting:
            task.task_spec._update(task)

    def collect_log_extras(self, dct=None) -> dict:
        # Workflow.__init__ builds these for a log record whether or not it is emitted, and with the logger at
        # its default level that includes a walk over every task; only build them when the record will be
        if not _SPIFF_WORKFLOW_LOG.isEnabledFor(logging.INFO):
            return dct or {}
        return super().collect_log_extras(dct)

    def release(self) -> None:
        """Break the workflow's reference cycles once a step is done with it: its tasks point back at it, so do
        its event manager and its sub-workflows. Without this every step's task tree waits for Python's
        cyclic garbage collector, whose full passes over the process then cost more than the step's SQL
        (``bench/README.md``); with it, reference counting frees the tree as soon as the step lets go.
        The workflow is unusable afterwards."""
        for sub in self.subprocesses.values():
            sub.tasks, sub.task_tree, sub.last_task, sub.top_workflow = {}, None, None, None
        self.subprocesses = {}
        self.tasks, self.task_tree, self.last_task = {}, None, None
        self.event_manager = None
        self.bpmn_events = []


SpecResolver = Callable[[int], tuple[Any, dict[str, Any]]]
_TASK_TYPENAME = "Task"


def tasks_to_dict(converter, tasks: dict) -> dict:
    """``converter.mapping_to_dict(tasks)`` for a workflow's tasks, built in one pass: the same dictionary
    SpiffWorkflow's ``TaskConverter`` gives (tests compare the two on every process), but each task id is
    turned into a string once instead of three or four times, and the generic registry dispatch is skipped
    for plain tasks. Anything that is not a plain :class:`~SpiffWorkflow.task.Task` goes the generic way."""
    registry = converter.registry
    # keyed by the UUIDs' integers: hashing an int is C, a UUID's __hash__ is a Python call
    names = {u.int: str(u) for u in tasks}
    data_of = {u.int: t.data for u, t in tasks.items()}
    out = {}
    for u, task in tasks.items():
        if type(task) is not Task:
            out[names[u.int]] = registry.convert(task)
            continue
        name = names[u.int]
        parent_id = task._parent
        parent_key = parent_id.int if parent_id is not None else None
        before = data_of.get(parent_key)  # Task.parent reads the same mapping
        if before is None:
            data, delta = task.data, {}
        else:
            after = task.data
            data = {}
            delta = {"updates": {k: after[k] for k in after if k not in before or after[k] != before[k]},
                     "deletions": [k for k in before if k not in after]}
        internal = task.internal_data
        out[name] = {
            "id": name,
            "parent": names[parent_key] if before is not None else None,
            "children": [names.get(c.int) or str(c) for c in task._children],
            "last_state_change": task.last_state_change,
            "state": task._state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": registry.convert(internal) if internal else {},
            "data": data,
            "delta": delta,
            "typename": _TASK_TYPENAME,
        }
    return out


class SpecRefWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow, *, generic: bool = False):
        generic = generic or not spiff_speedups.ACTIVE
        registry = self.registry
        dct = {
            "data": registry.convert(registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": self.mapping_to_dict(workflow.tasks) if generic else tasks_to_dict(self, workflow.tasks),
            "root": str(workflow.task_tree.id),
        }
        if CROSS_CHECK and not generic:
            slow = self.to_dict(workflow, generic=True)
            if slow["tasks"] != dct["tasks"]:
                bad = sorted(k for k in slow["tasks"] if slow["tasks"][k] != dct["tasks"].get(k))
                raise AssertionError(f"fast task serialization differs from SpiffWorkflow's for tasks {bad[:5]}")
        dct["spec_ref"] = workflow.spec_ref
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        spec_ref = dct.pop("spec_ref")
        spec, subprocess_specs = self.registry.spec_resolver(spec_ref)
        workflow = self.target_class(spec, subprocess_specs, deserializing=True, spec_ref=spec_ref)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS


class StateSerializer:
    def __init__(self, spec_resolver: SpecResolver, hooks: list[Callable] = ()):
        config = dict(SPIFF_CONFIG)
        config.update(timer_serializer_config())
        config[RegflowWorkflow] = SpecRefWorkflowConverter
        registry = BpmnWorkflowSerializer.configure(config)
        registry.spec_resolver = spec_resolver
        for hook in hooks:  # extra data types, e.g. the calendar's deadline datetimes
            hook(registry)
        self._inner = BpmnWorkflowSerializer(registry)

    @property
    def spiff_serializer(self) -> BpmnWorkflowSerializer:
        """The SpiffWorkflow serializer underneath, configured with regflow's converters (``serialize_json``:
        the standard library's encoding, which :meth:`dumps` matches)."""
        return self._inner

    # specs -------------------------------------------------------------------------------------
    def spec_to_json(self, spec, subprocess_specs: dict) -> str:
        reg = self._inner.registry
        doc = {
            "spec": reg.convert(spec),
            "subprocess_specs": {k: reg.convert(v) for k, v in subprocess_specs.items()},
        }
        return json.dumps(doc, sort_keys=True, cls=self._inner._encoder_cls)

    def spec_from_json(self, text: str):
        reg = self._inner.registry
        doc = json.loads(text)
        spec = reg.restore(doc["spec"])
        subs = {k: reg.restore(v) for k, v in doc["subprocess_specs"].items()}
        return spec, subs

    # states ------------------------------------------------------------------------------------
    def dumps(self, workflow: RegflowWorkflow) -> str:
        """``BpmnWorkflowSerializer.serialize_json(workflow)``, encoded by orjson instead of the standard
        library's encoder (a launched inspection's 16 KB state: 0.1 ms -> 0.01 ms). Every value is written
        as SpiffWorkflow's encoder writes it — registered types (datetimes, timedeltas, the calendar's
        deadlines) as typed dictionaries, sets as lists, callables as null, subclasses of the JSON types as
        the standard library writes them — with two differences in what is read back: non-ASCII text is
        written as UTF-8 rather than escaped (the same string), and a ``uuid.UUID`` becomes its string. A
        state orjson cannot encode (an integer beyond 64 bits, a non-str key) is encoded the standard way.
        With ``CROSS_CHECK`` set (tests) every state is compared with the standard encoder's. Until
        :mod:`~engine.runtime.spiff_speedups` is installed, ``serialize_json`` itself."""
        inner = self._inner
        if not spiff_speedups.ACTIVE:
            return inner.serialize_json(workflow)
        registry = inner.registry
        registry._encoder_mode = True
        try:
            dct = inner.to_dict(workflow)
            dct[inner.VERSION_KEY] = inner.VERSION
            try:
                text = orjson.dumps(dct, default=self._default, option=_ORJSON_OPTIONS).decode()
            except TypeError:  # orjson.JSONEncodeError: what only the standard encoder writes
                return json.dumps(dct, cls=inner._encoder_cls)
            if CROSS_CHECK:
                standard = json.dumps(dct, cls=inner._encoder_cls)
                if json.loads(text) != json.loads(standard):
                    raise AssertionError("orjson state differs from the standard encoder's: "
                                         f"{text[:300]} != {standard[:300]}")
            return text
        finally:
            registry._encoder_mode = False

    def _default(self, obj):
        """orjson's fallback, called for what it passes through: subclasses of the JSON types (written as
        the standard library writes them), datetimes, and everything it does not know (SpiffWorkflow's
        encoder: registered types, sets, callables)."""
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, (list, tuple)):
            return list(obj)
        if isinstance(obj, dict):
            return dict(obj)
        registry = self._inner.registry
        typename = registry.typenames.get(type(obj))
        if typename is not None:
            return registry.convert_to_dict[typename](obj)
        if callable(obj) or isinstance(obj, ModuleType):
            return None
        if isinstance(obj, set):
            return list(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    def loads(self, text: str, serializer_version: str | None = None) -> RegflowWorkflow:
        try:
            dct = orjson.loads(text)
        except orjson.JSONDecodeError:  # NaN or Infinity, which the standard encoder writes and reads
            dct = json.loads(text)
        stored = dct.get(BpmnWorkflowSerializer.VERSION_KEY)
        if stored != SERIALIZER_VERSION or (serializer_version and serializer_version != stored):
            raise StateVersionError(
                f"instance state was written by serializer {stored!r}; this build reads {SERIALIZER_VERSION!r} "
                "(add a migration before loading it)")
        dct.pop(BpmnWorkflowSerializer.VERSION_KEY)
        return self._inner.from_dict(dct)
