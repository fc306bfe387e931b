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
  :func:`_uuid4` makes the same version-4 UUIDs from a per-thread buffer of random bytes.
* **data inheritance** — a task that becomes ready takes its parent's data through ``DeepMerge.merge``,
  which tests and compares key by key even when the task has no data yet (the usual case);
  :func:`_inherit_data` copies the values directly then (the same shallow copies of mutable values).

All are checked against SpiffWorkflow's own code by ``tests/runtime/test_spiff_speedups.py``; with
``REGFLOW_ENGINE_CROSS_CHECK=1`` (the test suite sets it) every walk is also compared with SpiffWorkflow's
iterator on the same tree, and every direct inheritance with the merge, so each test of the suite checks
the walks and inheritances its processes make.
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

#: the SpiffWorkflow release whose ``Task._set_state`` the replacement reproduces
SPIFF_VERSION = "3.2.0"

_ORIGINAL_SET_STATE = _spiff_task.Task._set_state
_LOG = _spiff_task.logger
_INFO, _DEBUG = logging.INFO, logging.DEBUG
_get_name = TaskState.get_name


def _set_state(self, value: int) -> None:
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


def _inherit_data(self) -> None:
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


os.register_at_fork(after_in_child=_reset_uuid_buffer)  # a child never hands out its parent's ids


def _uuid4() -> _uuid.UUID:
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


def install() -> bool:
    """Replace ``Task._set_state`` and ``Task._inherit_data`` (idempotent). Returns False, changing nothing,
    on another SpiffWorkflow release: the replacements reproduce 3.2.0's methods and are not assumed to fit
    any other."""
    if _dist_version("spiffworkflow") != SPIFF_VERSION:
        return False
    _spiff_task.Task._set_state = _set_state
    _spiff_task.Task._inherit_data = _inherit_data
    _spiff_task.uuid4 = _uuid4
    return True


def installed() -> bool:
    return (_spiff_task.Task._set_state is _set_state and _spiff_task.Task._inherit_data is _inherit_data
            and _spiff_task.uuid4 is _uuid4)


@contextmanager
def disabled():
    """SpiffWorkflow's own ``Task`` methods inside the block (the benchmarks' plain-SpiffWorkflow baseline)."""
    task = _spiff_task.Task
    before = task._set_state, task._inherit_data, _spiff_task.uuid4
    task._set_state, task._inherit_data, _spiff_task.uuid4 = _ORIGINAL_SET_STATE, _ORIGINAL_INHERIT_DATA, _ORIGINAL_UUID4
    try:
        yield
    finally:
        task._set_state, task._inherit_data, _spiff_task.uuid4 = before


# ------------------------------------------------------------------------------------------- tree walks
#: compare every walk with SpiffWorkflow's iterator (tests)
CROSS_CHECK = os.environ.get("REGFLOW_ENGINE_CROSS_CHECK", "") == "1"
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
