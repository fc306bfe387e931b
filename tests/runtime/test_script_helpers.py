"""One registry of script helpers, owned by the runtime (issue 16): ``runtime.helpers`` is what its steps'
scripts and expressions call; bootstrap puts the calendar's helpers there; nothing is registered process-wide."""
from __future__ import annotations

import pytest
from sqlalchemy import select

import engine.runtime.script_builtins as script_builtins
import engine.runtime.scripting as scripting
from engine.bootstrap import build_runtime
from engine.config import load_settings
from engine.runtime.deploy import deploy
from engine.runtime.models import ProcessInstance
from engine.runtime.runtime import Runtime
from engine.runtime.scripting import HelperRegistry
from engine.supervision import calendar

CALENDAR_HELPERS = {"workdays", "calendar_days", "legal_days", "deadline_info", "is_workday", "day_start"}


def test_no_process_wide_registry_is_left():
    for module in (script_builtins, scripting):
        for name in ("HELPERS", "register_helper", "unregister_helper", "registered_helpers"):
            assert not hasattr(module, name), f"{module.__name__}.{name}"


def test_bootstrap_registers_the_calendar_helpers_on_the_runtime_it_builds(runtime):
    assert isinstance(runtime.helpers, HelperRegistry)
    assert CALENDAR_HELPERS <= set(runtime.helpers.helpers())
    env = runtime.script_engine(None).environment
    assert env.registry is runtime.helpers
    assert CALENDAR_HELPERS | {"now"} <= set(env.helpers)
    for name in CALENDAR_HELPERS:  # bounded: ``workdays(5)`` runs without the tracer
        assert not env.needs_tracer(f"{name}('2026-03-02')" if name == "day_start" else f"{name}(3)")


def test_each_runtime_owns_its_helpers(runtime):
    other = build_runtime(load_settings())
    assert other.helpers is not runtime.helpers
    engine = runtime.script_engine(None)  # built before the helper is registered: it still sees it
    runtime.helpers.register("triple", lambda n: 3 * n)
    assert engine.environment.evaluate("triple(2)", {}) == 6
    assert runtime.script_engine(None).environment.evaluate("triple(3)", {}) == 9
    with pytest.raises(NameError):
        other.script_engine(None).environment.evaluate("triple(2)", {})
    runtime.helpers.unregister("triple")
    with pytest.raises(NameError):
        engine.environment.evaluate("triple(2)", {})


def test_a_runtime_takes_a_mapping_or_a_registry():
    registry = HelperRegistry({"double": lambda n: 2 * n})
    assert Runtime(load_settings(), helpers=registry).helpers is registry
    runtime = Runtime(load_settings(), helpers={"double": lambda n: 2 * n})
    assert runtime.script_engine(None).environment.evaluate("double(4)", {}) == 8
    assert set(Runtime(load_settings()).helpers.helpers()) == set()
    calendar.register_script_helpers(runtime.helpers)
    assert CALENDAR_HELPERS | {"double"} == set(runtime.helpers.helpers())


_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d_helpers"
                  targetNamespace="http://regflow.example/test">
  <bpmn:process id="helper_call" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute"/>
    <bpmn:scriptTask id="compute"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = triple(size)
due = workdays(5, '2026-03-02').date().isoformat()</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="look"/>
    <bpmn:userTask id="look"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="look" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_step_calls_the_runtimes_helpers(runtime, db):
    runtime.helpers.register("triple", lambda n: 3 * n)
    with db.tx() as s:
        deploy(runtime, s, {"helpers.bpmn": _PROCESS}, "designer")
    with db.tx() as s:
        out = runtime.start(s, "helper_call", data={"size": 7}, actor="designer")
        assert out.failure is None
        iid = out.instance.id
    with db.tx() as s:
        assert s.scalar(select(ProcessInstance.status).where(ProcessInstance.id == iid)) == "running"
        wf = runtime.load_workflow(s, iid)
        data = wf.get_tasks(spec_name="look")[0].data
    assert data["score"] == 21 and data["due"] == "2026-03-09"
