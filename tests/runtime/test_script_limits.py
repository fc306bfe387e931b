"""Resource limits of what a designer writes (scripts, conditions, DMN cells, timer expressions): whatever could
make a huge value in one C call is refused before it runs with a ScriptLimitExceeded naming the operation, a
script growing memory in a loop is stopped, and inside a step either becomes an incident on the element.

No timings are asserted: each case must simply end with the right error (pytest's timeout catches a hang)."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from engine.config import load_settings
from engine.errors import ScriptError
from engine.runtime.deploy import deploy
from engine.runtime.models import Incident
from engine.runtime.script_engine import RegflowScriptEngine
from engine.runtime.scripting import (
    RestrictedEnvironment,
    ScriptLimitExceeded,
    ScriptLimits,
    ScriptResourceError,
    ScriptTimeout,
)
from engine.runtime.services import ServiceRegistry


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment(time_budget_s=2)


REFUSED = [
    # (expression, the operation the error names)
    ('"x" * 10**10', "'*'"),
    ("10**10 * 'x'", "'*'"),
    ("b'x' * 2 * 10**9", "'*'"),
    ("[0] * 10**10", "'*'"),
    ("(1,) * 10**10", "'*'"),
    ("'a' * 10**5 * 10**5", "'*'"),
    ("[[0] * 1000] * 10**4", "'*'"),  # 10**4 references to one list of 1000: 10**7 items to store or compare
    ("[r] * 10**6", "'*'"),
    ("10 ** 10 ** 10", "'**'"),
    ("2 ** 10**6", "'**'"),
    ("(2**5000) * (2**5000)", "'*'"),
    ("pow(10, 10**9)", "pow()"),
    ("pow(3, 2**4000, 2**4000 + 1)", "pow()"),
    ("1 << 10**9", "'<<'"),
    ("round(5, -10**9)", "round()"),
    ("'%0999999999d' % 1", "'%' formatting"),
    ("'%.999999999f' % 1.5", "'%' formatting"),
    ("'%*d' % (10**9, 1)", "'%' formatting"),
    ("'%(a)999999999d' % {'a': 1}", "'%' formatting"),
    ("b'%0999999999d' % 1", "'%' formatting"),
    ("'%09999d' * 1000 % tuple(range(1000))", "'%' formatting"),
    ("f'{1:>{10**9}}'", "format spec"),
    ("f'{1:0999999999}'", "format spec"),
    ("f'{x!r:^999999999}'", "format spec"),
    ("bytes(10**10)", "bytes()"),
    ("range(10**9)", "range()"),
    ("list(range(10**8))", "range()"),
    ("sum(range(10**9))", "range()"),
    ("max(range(10**9))", "range()"),
    ("sorted(range(10**12, 0, -1))", "range()"),
    ("len(range(-10**30, 10**30))", "range()"),
    ("'x'.ljust(10**10)", "str.ljust()"),
    ("'x'.rjust(10**10, '-')", "str.rjust()"),
    ("'x'.center(10**10)", "str.center()"),
    ("'1'.zfill(10**10)", "str.zfill()"),
    ("b'x'.ljust(10**10)", "bytes.ljust()"),
    ("str.ljust('x', 10**9)", "str.ljust()"),
    ("list(map(str.center, ['x'], [10**9]))", "str.center()"),
    ("('\\t' * 1000).expandtabs(10**6)", "str.expandtabs()"),
    ("('a' * 1000).replace('a', 'b' * 10**4)", "str.replace()"),
    ("'ab'.replace('', 'x' * 10**6)", "str.replace()"),
    ("'-'.join(many_s)", "str.join()"),
    ("''.join(s for i in range(1000))", "str.join()"),
    ("s.translate({120: s})", "str.translate()"),
    ("(5).to_bytes(10**10, 'big')", "int.to_bytes()"),
    ("math.factorial(10**6)", "math.factorial()"),
    ("math.comb(10**6, 5 * 10**5)", "math.comb()"),
    ("math.perm(10**6)", "math.perm()"),
    ("math.prod(range(1, 10**5))", "math.prod()"),
    ("math.lcm(*range(1, 10**4))", "math.lcm()"),
    ("sum(many_r, [])", "sum()"),
    ("list(zip(*many_r))", "zip()"),
    ("list(map(max, *many_r))", "map()"),
    # ``int(text, 16)`` reads ints of any size: dividing two of them is quadratic
    ("int('f' * 10**5, 16) % int('f' * 50000, 16)", "'%'"),
    ("int('f' * 10**5, 16) // int('f' * 50000, 16)", "'//'"),
    ("divmod(int('f' * 10**5, 16), int('f' * 50000, 16))", "divmod()"),
    ("math.gcd(int('f' * 10**5, 16), int('e' * 10**5, 16))", "math.gcd()"),
    ("now().strftime('%Y' * 5000)", "strftime()"),
    ("datetime.strptime('2024', '%Y' + ' ' * 5000)", "strptime()"),
]


@pytest.mark.parametrize("expression,operation", REFUSED, ids=[r[0] for r in REFUSED])
def test_operations_making_huge_values_are_refused(env, expression, operation):
    s, r = "x" * 100_000, list(range(100_000))
    data = {"x": "abc", "s": s, "r": r, "many_s": [s] * 1000, "many_r": [r] * 1000}
    with pytest.raises(ScriptLimitExceeded) as info:
        env.evaluate(expression, data)
    err = info.value
    assert operation in err.operation and str(err).startswith(err.operation)
    assert isinstance(err, ScriptResourceError) and isinstance(err, ScriptError)


SCRIPTS = [
    ("x = 'ab'\nx *= 10**9", "'*'"),
    ("x = [1]\nx += [2] * (10**6)", "'+'"),
    ("n = 2\nfor i in range(40):\n    n = n * n", "'*'"),
    ("n = 3\nn **= 10**6", "'**'"),
    ("s = 'ab'\nwhile True:\n    s = s + s", "'+'"),
    ("rows = []\nwhile True:\n    rows.extend(rows or [0])", "list.extend()"),
    ("def grow(v):\n    return v * 10**9\ngrow('x')", "'*'"),
    ("try:\n    x = 'x' * 10**10\nexcept ValueError:\n    x = ''", "'*'"),
]


@pytest.mark.parametrize("script,operation", SCRIPTS, ids=[s[0].splitlines()[-1] for s in SCRIPTS])
def test_scripts_are_checked_the_same_way(env, script, operation):
    data = {}
    with pytest.raises(ScriptLimitExceeded) as info:
        env.execute(script, data)
    assert operation in info.value.operation
    assert "__builtins__" not in data and "_mul_" not in data and "_add_" not in data


def test_a_script_may_catch_a_refusal_and_go_on(env):
    """Nothing was allocated: a script that expects the refusal can carry on (time and memory still bound it)."""
    data = {}
    env.execute("try:\n    x = 'x' * 10**10\nexcept Exception as e:\n    x = 'refused'", data)
    assert data == {"x": "refused"}


def test_ordinary_operations_are_unchanged(env):
    data = {"items": [{"amount": 5}, {"amount": 7}], "name": "acme", "x": "q"}
    script = """
total = 0
for item in items:
    total += item["amount"]
n = 2 ** 100
k = n * n + (1 << 64) - 7 % 3
ratio = 10 / 4 * 2.5
pct = "%5.1f%% of %s" % (12.345, name)
line = "-" * 40
cells = [0] * 7 + [1, 2]
pairs = (1, 2) * 3
field = f"{name!r:>10}|{3.14159:.2f}|{7:05d}|{n:,}"
padded = name.ljust(10, ".") + name.center(9) + "7".zfill(3)
joined = ", ".join(str(i) for i in range(5))
replaced = "a-b-c".replace("-", "--")
tabbed = "a\\tb".expandtabs(4)
squares = sum(i * i for i in range(1000))
biggest = max(range(10 ** 6))
flat = sum([[1], [2, 3]], [])
zipped = list(zip([1, 2], "ab", (True, False)))
mapped = list(map(pow, [2, 3], [10, 2]))
modpow = pow(3, 200, 1000)
rounded = round(1234567, -3)
fact = math.factorial(20) + math.comb(50, 25) + math.prod([2, 3, 4])
blob = bytes(16) + b"ab" * 3
raw = (258).to_bytes(2, "big")
division = [17 // 5, 17 % 5, divmod(17, 5), math.gcd(12, 18), (2 ** 4000) // 3 % 7]
"""
    env.execute(script, data)
    assert data["total"] == 12 and data["k"] == 2 ** 200 + 2 ** 64 - 1
    assert data["pct"] == " 12.3% of acme" and data["line"] == "-" * 40
    assert data["cells"] == [0] * 7 + [1, 2] and data["pairs"] == (1, 2) * 3
    assert data["field"] == f"{'acme'!r:>10}|3.14|00007|{2 ** 100:,}"
    assert data["padded"] == "acme".ljust(10, ".") + "acme".center(9) + "007" and data["joined"] == "0, 1, 2, 3, 4"
    assert data["replaced"] == "a--b--c" and data["tabbed"] == "a   b"
    assert data["squares"] == sum(i * i for i in range(1000)) and data["biggest"] == 10 ** 6 - 1
    assert data["flat"] == [1, 2, 3] and data["zipped"] == [(1, "a", True), (2, "b", False)]
    assert data["mapped"] == [1024, 9] and data["modpow"] == pow(3, 200, 1000) and data["rounded"] == 1235000
    assert data["fact"] == 2432902008176640000 + 126410606437752 + 24
    assert data["blob"] == bytes(16) + b"ababab" and data["raw"] == b"\x01\x02"
    assert data["division"] == [3, 2, (3, 2), 6, (2 ** 4000) // 3 % 7]


def test_the_limits_are_exactly_the_settings():
    env = RestrictedEnvironment(limits=ScriptLimits(max_items=100, max_int_bits=64))
    assert env.evaluate("len('x' * n) + len(range(n)) + len([0] * 50 * 2)", {"n": 100}) == 300
    assert env.evaluate("(2 ** e).bit_length()", {"e": 63}) == 64
    for expression in ("'x' * (n + 1)", "range(n + 1)", "[0] * 51 * 2", "2 ** (n - 36)", "'a'.ljust(n + 1)"):
        with pytest.raises(ScriptLimitExceeded, match="limit of 100 items|limit of 64 bits"):
            env.evaluate(expression, {"n": 100})
    # what a constant adds cannot run away: ``'-' * 40`` or ``'%5d' % x`` is not checked at each run
    assert env.evaluate("len('-' * 400)", {}) == 400
    unlimited = RestrictedEnvironment(limits=ScriptLimits(max_items=0, max_memory_mb=0, max_int_bits=0))
    assert len(unlimited.evaluate("'x' * (2 * 10**6)", {})) == 2 * 10 ** 6


def test_the_engine_takes_its_limits_from_the_runtime_settings():
    settings = load_settings(script_max_items=1000, script_max_memory_mb=64)
    engine = RegflowScriptEngine(ServiceRegistry(), None, time_budget_s=1, runtime=SimpleNamespace(settings=settings))
    limits = engine.environment.limits
    assert (limits.max_items, limits.max_memory_mb) == (1000, 64)
    assert engine.environment.evaluate("len('x' * 1000)", {}) == 1000
    with pytest.raises(ScriptLimitExceeded):
        engine.environment.evaluate("'x' * n", {"n": 1001})
    # without a runtime (tests, benchmarks): the defaults
    assert RegflowScriptEngine(ServiceRegistry(), None, time_budget_s=1).environment.limits == ScriptLimits()


def test_memory_growth_in_a_loop_is_stopped():
    """Every value is small, but the loop keeps them all: the watch samples the process's memory."""
    env = RestrictedEnvironment(time_budget_s=30, limits=ScriptLimits(max_memory_mb=32))
    data = {}
    with pytest.raises(ScriptLimitExceeded) as info:
        env.execute("kept = []\nwhile True:\n    kept.append('x' * 100000 + str(len(kept)))", data)
    assert info.value.operation == "memory" and "limit of 32 MB" in str(info.value)
    assert "kept" not in data or isinstance(data["kept"], list)


def test_memory_is_not_sampled_when_switched_off():
    env = RestrictedEnvironment(time_budget_s=0.3, limits=ScriptLimits(max_memory_mb=0))
    with pytest.raises(ScriptTimeout):
        env.execute("kept = []\nwhile True:\n    kept.append(len(kept))", {})


def test_limit_errors_survive_pickling():
    err = pickle.loads(pickle.dumps(ScriptLimitExceeded("'*'", "too big")))
    assert (err.operation, err.detail, str(err)) == ("'*'", "too big", "'*': too big")


# --------------------------------------------------------------------------------------------------
# In a step: an incident on the element


def _process(process_id: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d_{process_id}"
                  targetNamespace="http://regflow.example/test">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {body}
    <bpmn:endEvent id="end"><bpmn:incoming>f_end</bpmn:incoming><bpmn:incoming>f_other</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


RUNAWAY = {
    "script": ("grow", _process("limits_script", """
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="grow"/>
    <bpmn:scriptTask id="grow"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f_end</bpmn:outgoing>
      <bpmn:script>blob = "x" * size</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_end" sourceRef="grow" targetRef="end"/>
    <bpmn:sequenceFlow id="f_other" sourceRef="start" targetRef="end">
      <bpmn:conditionExpression>False</bpmn:conditionExpression></bpmn:sequenceFlow>""")),
    "condition": ("route", _process("limits_condition", """
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="route"/>
    <bpmn:exclusiveGateway id="route" default="f_other"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f_end</bpmn:outgoing><bpmn:outgoing>f_other</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_end" sourceRef="route" targetRef="end">
      <bpmn:conditionExpression>sum(range(size)) &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_other" sourceRef="route" targetRef="end"/>""")),
    "timer": ("wait", _process("limits_timer", """
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f_end</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT" + "1" * size + "S"</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f_end" sourceRef="wait" targetRef="end"/>
    <bpmn:sequenceFlow id="f_other" sourceRef="start" targetRef="end">
      <bpmn:conditionExpression>False</bpmn:conditionExpression></bpmn:sequenceFlow>""")),
}


@pytest.mark.parametrize("kind", sorted(RUNAWAY))
def test_a_runaway_expression_becomes_an_incident(runtime, db, kind):
    bpmn_id, xml = RUNAWAY[kind]
    with db.tx() as s:
        [deployed] = deploy(runtime, s, {f"{kind}.bpmn": xml}, "designer")
    with db.tx() as s:
        out = runtime.start(s, deployed.process_id, data={"size": 10 ** 10}, actor="designer")
        iid = out.instance.id
    # (a timer's expression fails while SpiffWorkflow updates the waiting event, which leaves no task in ERROR:
    # such an incident names no element yet, whatever the error)
    where = (bpmn_id, None) if kind == "timer" else (bpmn_id,)
    assert out.failure and out.failure["bpmn_id"] in where and "ScriptLimitExceeded" in out.failure["error"]
    with db.tx() as s:
        (incident,) = s.scalars(select(Incident).where(Incident.instance_id == iid)).all()
        assert incident.status == "open" and incident.bpmn_id in where
        assert incident.error_type == "ScriptLimitExceeded"
        assert ("range()" if kind == "condition" else "'*'") in incident.message
