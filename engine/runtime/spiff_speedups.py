"""Hot spots of SpiffWorkflow 3.2.0, made cheaper without changing what the engine does.

Measured on the campaign launch's ``entity_inspection`` (``bench/loop.py``, engine floor): 1.31 ms of
SpiffWorkflow per instance to its first user task, of which

* **state-change logging** — ``Task._set_state`` builds an f-string and a nine-key ``extra`` dictionary
  for ``logger.info``/``logger.debug`` on every state change, whether or not anything logs at that level
  (about 45 changes per instance, a quarter of the time). :func:`install` replaces it, process-wide, with
  a version that does the same state change and emits the same records, built only when the
  ``spiff.task`` logger is enabled for their level. :func:`disabled` puts SpiffWorkflow's own method back
  for a block (the benchmarks measure plain SpiffWorkflow that way).
* **task-tree walks** — every ``get_tasks`` (a dozen per step) and every completion's
  ``update_waiting_tasks`` walk the tree with a general iterator that keeps a depth count through Python
  calls per task and pops its work list from the front. :func:`iter_tasks` is the same preorder walk (a
  subprocess' tree before the task's children, the same pruning of finished and predicted branches,
  the same filters) on an explicit stack, used by :class:`~engine.runtime.serializer.RegflowWorkflow` for the
  filters SpiffWorkflow's engine uses. One difference, on purpose: SpiffWorkflow stops descending past
  depth 1000 (its ``max_depth`` default), which a long-lived instance with a loop can reach; this walk
  has no such horizon. A caller that passes ``max_depth`` or any other option gets SpiffWorkflow's iterator.

* **task ids** — ``uuid.uuid4()`` reads 16 bytes from the OS and checks its arguments for every task;
  :func:`uuid4` makes the same version-4 UUIDs from a per-thread buffer of random bytes.
* **data inheritance** — a task that becomes ready takes its parent's data through ``DeepMerge.merge``,
  which tests and compares key by key even when the task has no data yet (the usual case);
  :func:`inherit_data` copies the values directly then (the same shallow copies of mutable values).

Importing this module changes nothing. :func:`install` (called through
:func:`engine.runtime.patches.install`, which ``build_runtime`` calls) checks that the installed
SpiffWorkflow is the release these replacements reproduce — raising :class:`UnsupportedSpiffWorkflow`
otherwise — and puts them in place; :data:`ACTIVE` then tells the engine's other fast paths, which read
the same release's private task attributes (the walks above, the one-pass state serialization of
:mod:`engine.runtime.serializer`), that they may run. Before that they take SpiffWorkflow's own way.

All are checked against SpiffWorkflow's own code by ``tests/runtime/test_spiff_speedups.py``; with the
``engine_cross_check`` setting (``REGFLOW_ENGINE_CROSS_CHECK=1``, which the test suite sets) every walk is
also compared with SpiffWorkflow's iterator on the same tree, and every direct inheritance with the merge,
so each test of the suite checks the walks and inheritances its processes make.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid as _uuid
from contextlib import contextmanager
from copy import copy as _copy
from importlib.metadata import version as _dist_version
from typing import Iterator

import SpiffWorkflow.task as _spiff_task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from engine.errors import EngineError

#: the SpiffWorkflow release whose methods and private task attributes the fast paths reproduce and read
SPIFF_VERSION = "3.2.0"

#: set by :func:`install`: the replacements are in place, and the fast paths that read SpiffWorkflow 3.2.0's
#: private task attributes may run (until then every caller takes SpiffWorkflow's own way)
ACTIVE = False
#: compare every walk and direct inheritance with SpiffWorkflow's (the ``engine_cross_check`` setting)
CROSS_CHECK = False


class UnsupportedSpiffWorkflow(EngineError):
    """The installed SpiffWorkflow is not the release the engine's fast paths were written against."""


_ORIGINAL_SET_STATE = _spiff_task.Task._set_state
_LOG = _spiff_task.logger
_INFO, _DEBUG = logging.INFO, logging.DEBUG
_get_name = TaskState.get_name


def set_state(self, value: int) -> None:
    """``Task._set_state`` of SpiffWorkflow 3.2.0, building its log record only when it will be logged."""
    if value != self._state:
        now = time.time()
        elapsed = now - self.last_state_change
        self.last_state_change = now
        self._state = value
        if _LOG.isEnabledFor(_INFO):
            _LOG.info(f"State changed to {_get_name(value)}", extra=self.collect_log_extras({"elapsed": elapsed}))
    elif _LOG.isEnabledFor(_DEBUG):
        _LOG.debug(f"State set to {_get_name(value)}", extra=self.collect_log_extras())


_ORIGINAL_INHERIT_DATA = _spiff_task.Task._inherit_data
_merge = DeepMerge.merge
_MUTABLE = (dict, list, set)


def inherit_data(self) -> None:
    """``Task._inherit_data`` of SpiffWorkflow 3.2.0 (``DeepMerge.merge(self.data, self.parent.data)``) with
    the common case done directly: a task that has no data yet (a child whose parent just completed) takes
    each of the parent's values, mutable ones (dict, list, set) as a shallow copy — what the merge does for
    a key the task does not have, without its per-key membership tests and comparisons."""
    data = self.data
    parent = self.parent.data
    if data:
        self.data = _merge(data, parent)
        return
    for key, value in parent.items():
        data[key] = _copy(value) if isinstance(value, _MUTABLE) else value
    if CROSS_CHECK:
        expected = _merge({}, parent)
        if data != expected or any(data[k] is parent[k] for k in data if isinstance(parent[k], _MUTABLE)):
            raise AssertionError(f"fast data inheritance differs from SpiffWorkflow's for {self.task_spec.name}")
    self.data = data


_ORIGINAL_UUID4 = _spiff_task.uuid4
_UUID_BATCH = 256
_uuid_local = threading.local()
_object_new, _object_setattr = object.__new__, object.__setattr__
_SAFE_UNKNOWN = _uuid.SafeUUID.unknown
#: clears the version nibble and the variant bits, which are then set to 4 and RFC 4122
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def _reset_uuid_buffer() -> None:
    _uuid_local.__dict__.clear()


_fork_hook_registered = False


def uuid4() -> _uuid.UUID:
    """``uuid.uuid4()``: a version-4 ``UUID`` from ``os.urandom``, read 256 ids at a time per thread instead
    of 16 bytes per id, and built without ``UUID.__init__``'s argument checks (a task id per task, about 30
    per launched instance). The buffer is per thread and emptied in a forked child."""
    try:
        state = _uuid_local.state
    except AttributeError:
        state = _uuid_local.state = [b"", 0]
    buf, pos = state
    if pos >= len(buf):
        buf, pos = os.urandom(16 * _UUID_BATCH), 0
        state[0] = buf
    state[1] = pos + 16
    u = _object_new(_uuid.UUID)
    _object_setattr(u, "int", (int.from_bytes(buf[pos:pos + 16], "big") & _V4_CLEAR) | _V4_SET)
    _object_setattr(u, "is_safe", _SAFE_UNKNOWN)
    return u


def check_version() -> str:
    """The installed SpiffWorkflow release if it is :data:`SPIFF_VERSION`, else :class:`UnsupportedSpiffWorkflow`
    naming both."""
    found = _dist_version("spiffworkflow")
    if found != SPIFF_VERSION:
        raise UnsupportedSpiffWorkflow(
            f"SpiffWorkflow {found} is installed, but regflow's engine supports SpiffWorkflow {SPIFF_VERSION} only "
            "(its fast paths replace and read that release's private Task methods and attributes): install "
            f"spiffworkflow=={SPIFF_VERSION}", installed=found, supported=SPIFF_VERSION)
    return found


def install(*, cross_check: bool | None = None) -> None:
    """Replace ``Task._set_state``, ``Task._inherit_data`` and the task module's ``uuid4``, make a forked child
    empty its inherited id buffer, and set :data:`ACTIVE` (idempotent; ``cross_check`` None keeps the current
    :data:`CROSS_CHECK`). Raises :class:`UnsupportedSpiffWorkflow`, changing nothing, on another SpiffWorkflow
    release: the replacements reproduce 3.2.0's methods and are not assumed to fit any other."""
    global ACTIVE, CROSS_CHECK, _fork_hook_registered
    check_version()
    if cross_check is not None:
        CROSS_CHECK = cross_check
    if ACTIVE:
        return
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_reset_uuid_buffer)  # a child never hands out its parent's ids
        _fork_hook_registered = True
    _spiff_task.Task._set_state = set_state
    _spiff_task.Task._inherit_data = inherit_data
    _spiff_task.uuid4 = uuid4
    ACTIVE = True


def installed() -> bool:
    """Whether SpiffWorkflow's task module runs the replacements right now (not inside :func:`disabled`)."""
    return (_spiff_task.Task._set_state is set_state and _spiff_task.Task._inherit_data is inherit_data
            and _spiff_task.uuid4 is uuid4)


@contextmanager
def disabled():
    """SpiffWorkflow's own ``Task`` methods inside the block (the benchmarks' plain-SpiffWorkflow baseline)."""
    task = _spiff_task.Task
    before = task._set_state, task._inherit_data, _spiff_task.uuid4
    task._set_state, task._inherit_data, _spiff_task.uuid4 = (_ORIGINAL_SET_STATE, _ORIGINAL_INHERIT_DATA,
                                                              _ORIGINAL_UUID4)
    try:
        yield
    finally:
        task._set_state, task._inherit_data, _spiff_task.uuid4 = before


# ------------------------------------------------------------------------------------------- tree walks
_PREDICTED, _DEFINITE, _FINISHED = TaskState.PREDICTED_MASK, TaskState.DEFINITE_MASK, TaskState.FINISHED_MASK
#: the keyword arguments :func:`iter_tasks` understands; anything else goes to SpiffWorkflow's iterator
FAST_FILTERS = frozenset({"state", "updated_ts", "manual", "spec_name", "spec_class", "lane", "skip_subprocesses"})


def iter_tasks(root, *, subprocesses: bool, state: int = TaskState.ANY_MASK, updated_ts: float = 0,
               manual: bool | None = None, spec_name: str | None = None, spec_class=None, lane: str | None = None,
               skip_subprocesses: bool = False) -> Iterator:
    """The tasks under ``root`` (itself included) in SpiffWorkflow's depth-first order that match the
    filters; with ``subprocesses`` a task's subprocess tree is walked before its children (as
    ``BpmnTaskIterator`` does; plain ``TaskIterator`` does not). A task's children are read when the walk
    reaches it, before it is yielded, as SpiffWorkflow's iterators do: a caller that changes the tree
    while iterating sees what they would see."""
    if state & _PREDICTED:
        min_state = TaskState.MAYBE
    elif state & _DEFINITE:
        min_state = TaskState.FUTURE
    else:
        min_state = TaskState.COMPLETED
    sub_of = root.workflow.top_workflow.subprocesses if subprocesses else None
    # BpmnTaskIterator: "do not descend into a completed subprocess to look for unfinished tasks"
    finished_filter = state <= _FINISHED
    plain = updated_ts == 0 and manual is None and spec_name is None and spec_class is None and lane is None
    stack = [root]
    pop, push = stack.pop, stack.extend
    while stack:
        task = pop()
        kids = task._children
        st = task._state
        sp = sub_of.get(task.id) if sub_of else None
        if sp is None:
            if kids and st >= min_state:
                tasks = task.workflow.tasks
                push([tasks.get(c) for c in reversed(kids)])
        else:
            tasks = task.workflow.tasks
            nxt = [tasks.get(c) for c in reversed(kids)]
            if not (skip_subprocesses or (st >= _FINISHED and finished_filter)):
                nxt.append(sp.task_tree)
            push(nxt)
        if not st & state:
            continue
        if plain:
            yield task
            continue
        spec = task.task_spec
        if (task.last_state_change >= updated_ts
                and (manual is None or spec.manual == manual)
                and (spec_name is None or spec.name == spec_name)
                and (spec_class is None or isinstance(spec, spec_class))
                and (lane is None or spec.lane == lane)):
            yield task


#: unfinished definite states. A task in one of them never sits below a predicted (MAYBE/LIKELY) task, the only
#: tasks a walk for these states does not descend into; so in a tree without subprocesses the workflow's flat
#: ``tasks`` mapping holds exactly the tasks such a walk yields (with ``CROSS_CHECK`` every use is compared)
FLAT_STATES = TaskState.FUTURE | TaskState.WAITING | TaskState.READY | TaskState.STARTED


def flat_matches(tasks: dict, state: int) -> list:
    """The tasks of a flat ``tasks`` mapping in ``state`` (one of :data:`FLAT_STATES`), in the mapping's order —
    which is the walk's order only when there is at most one."""
    return [t for t in tasks.values() if t._state & state]


def checked(fast: Iterator, slow: Iterator, what: str) -> list:
    """Both walks' tasks, which must be the same in the same order (``CROSS_CHECK``)."""
    got, want = list(fast), list(slow)
    if [t.id for t in got] != [t.id for t in want]:
        raise AssertionError(f"{what}: the fast tree walk gave {len(got)} tasks "
                             f"{[t.task_spec.name for t in got][:8]}, SpiffWorkflow's {len(want)} "
                             f"{[t.task_spec.name for t in want][:8]}")
    return got
