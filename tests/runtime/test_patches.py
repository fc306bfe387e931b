"""Importing regflow changes nothing in the process; ``engine.runtime.patches.install`` puts every process-wide
change in place (idempotent, the cross-checks from the settings) and refuses a SpiffWorkflow release other
than the supported one. The checks of a fresh process run in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from engine import txcache
from engine.config import load_settings
from engine.runtime import patches, script_engine, serializer, spiff_speedups

ROOT = Path(__file__).resolve().parents[2]

#: what a fresh process reports about the process-wide changes (JSON on its last line)
REPORT = """
import json
import SpiffWorkflow.task as spiff_task
from engine import txcache
from engine.runtime import patches, script_engine, script_watch, serializer, spiff_speedups

def report(**extra):
    print(json.dumps({"set_state_replaced": spiff_task.Task._set_state is spiff_speedups.set_state,
                      "uuid4_replaced": spiff_task.uuid4 is spiff_speedups.uuid4,
                      "active": spiff_speedups.ACTIVE, "session_hooks": txcache.session_hooks_installed(),
                      "gc_follower": script_watch.following_gc(),
                      "engine_cross_check": spiff_speedups.CROSS_CHECK or script_engine.CROSS_CHECK,
                      "serializer_cross_check": serializer.CROSS_CHECK,
                      "installed": patches.installed() is not None, **extra}))
"""


def _fresh(code: str, prelude: str = "") -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REGFLOW_ENGINE_CROSS_CHECK": "1",
           "REGFLOW_SERIALIZER_CROSS_CHECK": "1"}
    program = textwrap.dedent(prelude) + REPORT + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


NOTHING = {"set_state_replaced": False, "uuid4_replaced": False, "active": False, "session_hooks": False,
           "gc_follower": False, "engine_cross_check": False, "serializer_cross_check": False, "installed": False}


def test_importing_the_engine_changes_nothing():
    """Every entry point imported, with both cross-checks asked for in the environment: nothing is patched,
    hooked or read until ``install``."""
    got = _fresh("""
        import engine.bootstrap, engine.cli, web
        from engine.runtime import history, parallel, runtime, scripting, worker
        report()
    """)
    assert got == NOTHING


def test_build_runtime_installs_everything_the_settings_ask_for():
    got = _fresh("""
        from engine.bootstrap import build_runtime
        build_runtime()
        report()
    """)
    assert got == {key: True for key in NOTHING}


def test_install_is_idempotent_and_follows_the_latest_settings():
    settings = load_settings()
    first = patches.install(settings)
    assert patches.install(settings) == first == patches.installed()
    assert first.spiffworkflow == patches.SUPPORTED_SPIFFWORKFLOW and first.spiff_fast_paths and first.session_hooks
    assert first.gc_follower
    assert spiff_speedups.installed() and txcache.session_hooks_installed()
    quiet = patches.install(replace(settings, engine_cross_check=False, serializer_cross_check=False))
    try:
        assert not (quiet.engine_cross_check or spiff_speedups.CROSS_CHECK or script_engine.CROSS_CHECK
                    or serializer.CROSS_CHECK)
        assert spiff_speedups.installed()  # the replacements stay
    finally:
        patches.install(settings)
    assert spiff_speedups.CROSS_CHECK and script_engine.CROSS_CHECK and serializer.CROSS_CHECK


def test_an_unsupported_spiffworkflow_is_refused_naming_both_releases():
    got = _fresh(prelude="""
        import importlib.metadata as md
        real = md.version
        md.version = lambda name: "3.1.0" if name.lower() == "spiffworkflow" else real(name)
    """, code="""
        from engine.config import load_settings
        from engine.errors import EngineError
        from engine.runtime.serializer import RegflowWorkflow
        errors = []
        for attempt in (lambda: patches.install(load_settings()), lambda: RegflowWorkflow(None)):
            try:
                attempt()
            except patches.UnsupportedSpiffWorkflow as exc:
                errors.append([str(exc), isinstance(exc, EngineError)])
        report(errors=errors)
    """)
    assert {k: got[k] for k in NOTHING} == NOTHING  # nothing was changed
    assert len(got["errors"]) == 2
    for message, is_engine_error in got["errors"]:
        assert is_engine_error
        assert "SpiffWorkflow 3.1.0 is installed" in message and "supports SpiffWorkflow 3.2.0 only" in message


def test_the_cache_and_the_workflow_install_their_own_part_when_nothing_did():
    """A process that never calls ``install`` (a hand-built runtime, a benchmark): the transaction cache
    registers its listeners before its first entry, a RegflowWorkflow puts SpiffWorkflow's replacements in
    place (cross-checks off: no settings said otherwise)."""
    got = _fresh("""
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from engine.runtime.serializer import RegflowWorkflow
        with Session(create_engine("sqlite://")) as s:
            s.execute(text("select 1"))  # the session's transaction began before the listeners existed
            txcache.get(s, "k", ("t",), lambda: 1)
            s.commit()
            dropped = txcache.peek(s, "k") is None  # ... and its end still dropped the entry
        cache_first = txcache.session_hooks_installed() and not spiff_speedups.ACTIVE and dropped
        parser = BpmnParser()
        parser.add_bpmn_file("tests/data/engine/minimal.bpmn")
        RegflowWorkflow(parser.get_spec("minimal"))
        report(cache_first=cache_first)
    """)
    assert got["cache_first"]
    assert got == {**NOTHING, "set_state_replaced": True, "uuid4_replaced": True, "active": True,
                   "session_hooks": True, "cache_first": True}

