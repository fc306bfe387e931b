"""Everything regflow changes in the process it runs in, installed in one call.

Importing an engine module changes nothing outside it. :func:`install` puts in place, once per process:

* the replacements of SpiffWorkflow 3.2.0's ``Task._set_state``, ``Task._inherit_data`` and task ids
  (:mod:`engine.runtime.spiff_speedups`), which also turns on the fast paths that read that release's
  private task attributes: :class:`~engine.runtime.serializer.RegflowWorkflow`'s tree walks and the state
  serializer's one-pass task dictionaries and orjson encoding. On any other SpiffWorkflow release it raises
  :class:`UnsupportedSpiffWorkflow` (naming the installed and the supported release) and changes nothing;
* the listeners on every SQLAlchemy ``Session`` that keep :mod:`engine.txcache` right;
* the garbage collector's phase callback that the script watch reads (:mod:`engine.runtime.script_watch`):
  a designer's script is not interrupted inside a collection's weakref callbacks and finalizers;
* the cross-checks the settings ask for (``REGFLOW_ENGINE_CROSS_CHECK``, ``REGFLOW_SERIALIZER_CROSS_CHECK``:
  :mod:`engine.config`), which compare those fast paths with SpiffWorkflow's own code as they run.

:func:`engine.bootstrap.build_runtime` calls it with the runtime's settings before it builds the runtime
(every command, the web app, the worker), and the test suite calls it once per session (``tests/conftest.py``).
Calling it again is harmless: what is installed stays, the cross-checks follow the latest settings.

Three pieces also install themselves, through the same idempotent calls, when they are used in a process that
never called :func:`install` (a ``Runtime`` built by hand, a benchmark running workflows without one, a
script reading scores through the cache): a :class:`~engine.runtime.serializer.RegflowWorkflow` installs
the SpiffWorkflow replacements when it is made, :mod:`engine.txcache` its listeners before its first
entry, and the script watch its collector callback before its first script — with the cross-checks as they
are (off unless :func:`install` turned them on).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine import txcache
from engine.config import Settings

from . import script_engine, script_watch, serializer, spiff_speedups
from .spiff_speedups import SPIFF_VERSION as SUPPORTED_SPIFFWORKFLOW
from .spiff_speedups import UnsupportedSpiffWorkflow

__all__ = ["Installed", "SUPPORTED_SPIFFWORKFLOW", "UnsupportedSpiffWorkflow", "install", "installed"]


@dataclass(frozen=True)
class Installed:
    """What :func:`install` put in place (and so which fast paths run)."""

    #: the SpiffWorkflow release found (always :data:`SUPPORTED_SPIFFWORKFLOW`: another one raises)
    spiffworkflow: str
    #: SpiffWorkflow's task methods and ids replaced; tree walks, task dictionaries and orjson states on
    spiff_fast_paths: bool
    #: the :mod:`engine.txcache` listeners registered on ``Session``
    session_hooks: bool
    #: the collector callback of :mod:`engine.runtime.script_watch` registered in ``gc.callbacks``
    gc_follower: bool
    engine_cross_check: bool
    serializer_cross_check: bool


_installed: Installed | None = None


def install(settings: Settings) -> Installed:
    """Install every process-wide change regflow makes (idempotent; see the module's docstring). Raises
    :class:`UnsupportedSpiffWorkflow`, before changing anything, on a SpiffWorkflow release other than
    :data:`SUPPORTED_SPIFFWORKFLOW`."""
    global _installed
    found = spiff_speedups.check_version()
    spiff_speedups.install(cross_check=settings.engine_cross_check)
    script_engine.set_cross_check(settings.engine_cross_check)
    serializer.set_cross_check(settings.serializer_cross_check)
    txcache.install_session_hooks()
    script_watch.follow_gc()
    _installed = Installed(spiffworkflow=found, spiff_fast_paths=spiff_speedups.ACTIVE,
                           session_hooks=txcache.session_hooks_installed(),
                           gc_follower=script_watch.following_gc(),
                           engine_cross_check=settings.engine_cross_check,
                           serializer_cross_check=settings.serializer_cross_check)
    return _installed


def installed() -> Installed | None:
    """What the latest :func:`install` put in place; ``None`` before the first."""
    return _installed
