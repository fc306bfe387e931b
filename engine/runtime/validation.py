"""Deploy-time check of every expression and script in parsed BPMN/DMN definitions.

:func:`validate_expressions` walks the process specs (and embedded/called subprocess specs) that a
``SpiffBpmnParser`` produced, plus the DMN decisions it holds, and compiles each piece of Python a
designer wrote with :func:`engine.runtime.scripting.compile_check`, in the mode SpiffWorkflow will
run it in:

- script task (exec): ``script``
- ``spiffworkflow:preScript``/``postScript`` (exec): ``preScript`` / ``postScript``; also reported
  when SpiffWorkflow 3.2.0 silently drops them (it does on script tasks)
- exclusive/inclusive gateway flow condition (eval): ``conditionExpression``, element = the
  sequence flow's id (the gateway's id when only specs are given)
- timer on a start, intermediate or boundary event, also inside a multiple event definition
  (eval): ``timeDate`` / ``timeDuration`` / ``timeCycle``
- conditional event (eval): ``condition``
- message payload and correlations (eval): ``messagePayload``, ``correlation:<property>``,
  ``processVariableCorrelation:<property>``
- signal/error/escalation payload (eval): ``payloadExpression``
- service-task parameter value (eval): ``parameter:<name>``
- multi-instance cardinality / completion condition (eval): ``loopCardinality`` /
  ``completionCondition``; standard loop condition (eval): ``loopCondition``
- user-task property in :data:`EXPRESSION_PROPERTIES` (eval): ``property:dueIn``,
  ``property:assignee``
- DMN input expression (eval): ``inputExpression:<input id>``, element = the input's id
- DMN input entry (eval): ``inputEntry:<input id>``, element = the rule's id
- DMN output entry (eval): ``outputEntry:<output id>``, element = the rule's id

DMN input cells are checked the way ``SpiffWorkflow.dmn.engine.DMNEngine`` really evaluates them:
a cell containing ``?`` (outside quotes) is evaluated on its own with ``?`` replaced by the input
value; otherwise a cell that parses alone is compared with ``(<input>) == (<cell>)``, and one that
only parses after a left operand (``> 5``, ``in ['a', 'b']``) is appended to the input expression
as written (``<input><cell>``, no space: ``in ['a']`` after ``sector`` becomes ``sectorin ['a']``,
which compiles but fails at run time, so that is reported too).  For DMN issues ``process_id`` is
the decision id.
"""
from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.conditional import ConditionalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask, StandardLoopTask
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.dmn.specs.business_rule_task_mixin import BusinessRuleTaskMixin

from .scripting import compile_check

__all__ = ["EXPRESSION_PROPERTIES", "ExpressionIssue", "validate_decision", "validate_expressions"]

#: user-task ``spiffworkflow:properties`` whose value is a Python expression over task data
EXPRESSION_PROPERTIES: tuple[str, ...] = ("dueIn", "assignee")

# DMNEngine.evaluate: a '?' outside quotes stands for the input value
_DMN_QMARK = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')
_DMN_INPUT_NAME = "dmninputexpr"


@dataclass(frozen=True)
class ExpressionIssue:
    file: str | None
    process_id: str
    element_id: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.process_id}/{self.element_id} [{self.field}]: {self.message}"


# --------------------------------------------------------------------------------------------------
# Entry point


def validate_expressions(parser_or_specs: Any) -> list[ExpressionIssue]:
    """Compile every expression and script; one :class:`ExpressionIssue` per error found.

    ``parser_or_specs`` is a ``BpmnParser``/``SpiffBpmnParser`` (every process it holds, embedded
    subprocesses and DMN decisions included), a process spec, a ``(spec, subprocess_specs)`` pair,
    a ``{name: spec}`` dict or an iterable of specs.
    """
    issues: list[ExpressionIssue] = []
    seen_decisions: set[str] = set()
    if hasattr(parser_or_specs, "process_parsers"):
        parser = parser_or_specs
        for process_parser, spec, error in _parser_specs(parser):
            if error is not None:
                issues.append(ExpressionIssue(
                    getattr(error, "file_name", None) or process_parser.filename, process_parser.bpmn_id,
                    getattr(error, "id", None) or process_parser.bpmn_id, "definition",
                    f"process could not be parsed: {error}"))
                continue
            issues.extend(_validate_spec(spec, process_parser, seen_decisions, check_dmn=False))
        for decision_id, dmn_parser in sorted(getattr(parser, "dmn_parsers", {}).items()):
            issues.extend(_validate_dmn_parser(decision_id, dmn_parser))
            seen_decisions.add(decision_id)
    else:
        for spec in _iter_specs(parser_or_specs):
            issues.extend(_validate_spec(spec, None, seen_decisions, check_dmn=True))
    return list(dict.fromkeys(issues))  # a spec reachable twice reports its issues once


def _parser_specs(parser: Any) -> Iterator[tuple[Any, Any, Exception | None]]:
    """Every process parser with its spec; parsing a process may add parsers for its subprocesses."""
    done: set[str] = set()
    while True:
        pending = [(pid, pp) for pid, pp in list(parser.process_parsers.items()) if pid not in done]
        if not pending:
            return
        for pid, pp in pending:
            done.add(pid)
            if not getattr(pp, "process_executable", True):
                continue
            try:
                spec = pp.get_spec()
            except Exception as exc:  # a ValidationException: report it, check the rest
                yield pp, None, exc
                continue
            yield pp, spec, None


def _iter_specs(obj: Any) -> Iterator[Any]:
    if hasattr(obj, "task_specs"):
        yield obj
    elif isinstance(obj, dict):
        for spec in obj.values():
            if spec is not None:
                yield from _iter_specs(spec)
    elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        for item in obj:
            if item is not None:
                yield from _iter_specs(item)
    else:
        raise TypeError(f"cannot validate {type(obj).__name__}: pass a parser or process specs")


# --------------------------------------------------------------------------------------------------
# Process specs


class _Collector:
    def __init__(self, file: str | None, process_id: str):
        self.file = file
        self.process_id = process_id
        self.issues: list[ExpressionIssue] = []

    def check(self, source: Any, mode: str, element_id: str, field: str, what: str | None = None) -> None:
        if source is None:
            return
        if not isinstance(source, str):
            self.issues.append(ExpressionIssue(self.file, self.process_id, element_id, field,
                                               f"expected text, found {type(source).__name__}"))
            return
        if mode == "exec" and not source.strip():
            return
        for error in compile_check(source, mode):
            message = f"{what}: {error}" if what else error
            self.issues.append(ExpressionIssue(self.file, self.process_id, element_id, field, message))


def _validate_spec(spec: Any, process_parser: Any, seen_decisions: set[str], check_dmn: bool) -> list[ExpressionIssue]:
    out = _Collector(getattr(spec, "file", None), spec.name)
    for task_spec in spec.task_specs.values():
        element_id = getattr(task_spec, "bpmn_id", None)
        if element_id is None:
            continue  # Start, End, BoundaryEventSplit …: generated, nothing written by a designer

        if isinstance(task_spec, ScriptTask):
            out.check(task_spec.script, "exec", element_id, "script")
        extensions = getattr(task_spec, "extensions", None) or {}
        for attr, field in (("prescript", "preScript"), ("postscript", "postScript")):
            source = getattr(task_spec, attr, None)
            if source is None and extensions.get(field):
                # SpiffWorkflow 3.2.0's ScriptTaskParser drops pre/post scripts: they never run.
                out.issues.append(ExpressionIssue(
                    out.file, out.process_id, element_id, field,
                    f"{field} is ignored on this kind of task by SpiffWorkflow 3.2.0; "
                    "move it into the script or onto another task"))
                source = extensions[field]
            out.check(source, "exec", element_id, field)

        for condition, target in getattr(task_spec, "cond_task_specs", None) or []:
            if condition is None or not getattr(condition, "args", None):
                continue
            flow_id = _flow_id(process_parser, element_id, target)
            target_id = target.removesuffix(".BoundaryEventSplit")
            out.check(condition.args[0], "eval", flow_id or element_id, "conditionExpression",
                      f"condition of the flow from {element_id!r} to {target_id!r}")

        event_definition = getattr(task_spec, "event_definition", None)
        if event_definition is not None:
            _check_event_definition(out, event_definition, element_id)

        operation_params = getattr(task_spec, "operation_params", None)
        if isinstance(operation_params, dict):
            for name, param in operation_params.items():
                value = param.get("value") if isinstance(param, dict) else param
                out.check(value, "eval", element_id, f"parameter:{name}")

        if isinstance(task_spec, MultiInstanceTask):
            out.check(task_spec.cardinality, "eval", element_id, "loopCardinality")
            out.check(task_spec.condition, "eval", element_id, "completionCondition")
        elif isinstance(task_spec, StandardLoopTask):
            out.check(task_spec.condition, "eval", element_id, "loopCondition")

        properties = extensions.get("properties") or {}
        if isinstance(task_spec, UserTask) or properties:
            for name in EXPRESSION_PROPERTIES:
                if name in properties and properties[name] not in (None, ""):
                    out.check(properties[name], "eval", element_id, f"property:{name}")
        if properties.get("notCompletedBy"):
            _check_not_completed_by(out, spec, task_spec, element_id, properties["notCompletedBy"])

        if check_dmn and isinstance(task_spec, BusinessRuleTaskMixin):
            engine = getattr(task_spec, "dmnEngine", None)
            table = getattr(engine, "decision_table", None)
            if table is not None:
                decision_id = extensions.get("calledDecisionId") or table.id
                if decision_id not in seen_decisions:
                    seen_decisions.add(decision_id)
                    out.issues.extend(validate_decision(decision_id, table, None))
    return out.issues


def _check_not_completed_by(out: _Collector, spec: Any, task_spec: Any, element_id: str, value: Any) -> None:
    """``notCompletedBy`` (four eyes, :func:`engine.runtime.human_tasks.not_completed_by`) on a user task names other
    user tasks of the same process: a misspelt id would silently let one person do both."""
    field = "property:notCompletedBy"
    if not isinstance(task_spec, UserTask):
        out.issues.append(ExpressionIssue(out.file, out.process_id, element_id, field,
                                          "notCompletedBy applies to user tasks only"))
        return
    user_tasks = {getattr(t, "bpmn_id", None) for t in spec.task_specs.values() if isinstance(t, UserTask)}
    for name in (x.strip() for x in str(value).split(",") if x.strip()):
        if name == element_id:
            problem = "names the task itself"
        elif name not in user_tasks:
            problem = f"names {name!r}, which is not a user task of process {out.process_id!r}"
        else:
            continue
        out.issues.append(ExpressionIssue(out.file, out.process_id, element_id, field, problem))


def _check_event_definition(out: _Collector, definition: Any, element_id: str) -> None:
    if isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            _check_event_definition(out, inner, element_id)
        return
    if isinstance(definition, TimerEventDefinition):
        if isinstance(definition, TimeDateEventDefinition):
            field = "timeDate"
        elif isinstance(definition, CycleTimerEventDefinition):
            field = "timeCycle"
        elif isinstance(definition, DurationTimerEventDefinition):
            field = "timeDuration"
        else:
            field = "timer"
        out.check(definition.expression, "eval", element_id, field)
        return
    if isinstance(definition, ConditionalEventDefinition):
        out.check(definition.expression, "eval", element_id, "condition")
        return
    if isinstance(definition, MessageEventDefinition):
        out.check(getattr(definition, "expression", None), "eval", element_id, "messagePayload")
        for prop in definition.correlation_properties or []:
            out.check(prop.retrieval_expression, "eval", element_id, f"correlation:{prop.name}")
        for prop in getattr(definition, "process_correlations", None) or []:
            out.check(prop.retrieval_expression, "eval", element_id, f"processVariableCorrelation:{prop.name}")
        return
    # spiff signal/error/escalation definitions carry a payload expression
    expression = getattr(definition, "expression", None)
    if isinstance(expression, str):
        out.check(expression, "eval", element_id, "payloadExpression")


def _flow_id(process_parser: Any, source_id: str, target_spec_name: str) -> str | None:
    """The id of the sequence flow from ``source_id`` to the spec named ``target_spec_name``."""
    if process_parser is None:
        return None
    target_id = target_spec_name.removesuffix(".BoundaryEventSplit")
    try:
        flows = process_parser.get_outgoing_sequence_flows(source_id)
    except Exception:
        return None
    for flow in flows or []:
        if flow.get("targetRef") == target_id:
            return flow.get("id")
    return None


# --------------------------------------------------------------------------------------------------
# DMN


def _validate_dmn_parser(decision_id: str, dmn_parser: Any) -> list[ExpressionIssue]:
    file = getattr(dmn_parser, "filename", None)
    try:
        if getattr(dmn_parser, "decision", None) is None:
            dmn_parser.parse()
        decision = dmn_parser.decision
    except Exception as exc:  # e.g. a malformed output entry: SpiffWorkflow rejects it while parsing
        return [ExpressionIssue(file, decision_id, getattr(exc, "id", None) or decision_id, "definition",
                                f"decision could not be parsed: {exc}")]
    issues: list[ExpressionIssue] = []
    for table in decision.decisionTables:
        issues.extend(validate_decision(decision.id or decision_id, table, file))
    return issues


def _parses(source: str) -> bool:
    """``PythonScriptEngine.validate``: ``ast.parse`` in exec mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(source)
        except SyntaxError:
            return False
    return True


def _column(item: Any) -> str:
    label = getattr(item, "label", None) or getattr(item, "name", None)
    return f"{label!r} ({item.id})" if label else repr(item.id)


def validate_decision(decision_id: str, table: Any, file: str | None = None) -> list[ExpressionIssue]:
    """Check one DMN decision table (``SpiffWorkflow.dmn.specs.model.DecisionTable``)."""
    issues: list[ExpressionIssue] = []

    def add(element_id: str, field: str, message: str) -> None:
        issues.append(ExpressionIssue(file, decision_id, element_id, field, message))

    input_ok: dict[str, bool] = {}
    for dmn_input in table.inputs:
        expression = dmn_input.expression
        ok = True
        if expression is not None and expression.strip():
            for error in compile_check(expression, "eval"):
                ok = False
                add(dmn_input.id, f"inputExpression:{dmn_input.id}",
                    f"decision {decision_id!r}, input column {_column(dmn_input)}: {error}")
        input_ok[dmn_input.id] = ok

    for rule in table.rules:
        where = f"decision {decision_id!r}, rule {rule.id!r} (row {rule.row_number})"
        for entry in rule.inputEntries:
            dmn_input = entry.input
            if not input_ok.get(dmn_input.id, True):
                continue  # already reported once for the column
            # without an expression SpiffWorkflow substitutes repr(task data[label]): any literal
            input_expr = dmn_input.expression if (dmn_input.expression or "").strip() else _DMN_INPUT_NAME
            for lhs in entry.lhs:
                if lhs is None:
                    continue
                message = _check_input_entry(input_expr, lhs)
                if message:
                    add(rule.id, f"inputEntry:{dmn_input.id}",
                        f"{where}, input column {_column(dmn_input)}: {message}")
        for entry in rule.outputEntries:
            text = getattr(entry, "text", None)
            if not text:
                continue
            for error in compile_check(text, "eval"):
                add(rule.id, f"outputEntry:{entry.output.id}",
                    f"{where}, output column {_column(entry.output)}: {error}")
    return issues


def _check_input_entry(input_expr: str, cell: str) -> str | None:
    """Build the expression ``DMNEngine.evaluate`` would run for ``cell`` and compile it."""
    match_expr = _DMN_QMARK.sub(_DMN_INPUT_NAME, cell)
    if _DMN_INPUT_NAME in match_expr:
        expr = match_expr
    else:
        if _parses(cell):
            expr = f"({input_expr}) == ({cell})"
        elif _parses(f"v {cell}"):
            expr = input_expr + cell
            if _ends_word(input_expr) and _starts_word(cell):
                # "sector" + "in ('a', 'b')" gives "sectorin ('a', 'b')": valid Python, wrong meaning.
                return (f"cell {cell!r} is glued to the input expression as {expr!r}; "
                        f"write it as '? {cell.strip()}' or start it with a space")
        else:
            return f"cell {cell!r} is neither an expression nor a comparison such as '> 5' or \"in ['a', 'b']\""
    errors = compile_check(expr, "eval")
    if not errors:
        return None
    return f"cell {cell!r} (evaluated as {expr!r}): {'; '.join(errors)}"


def _ends_word(text: str) -> bool:
    return bool(text) and (text[-1].isalnum() or text[-1] == "_")


def _starts_word(text: str) -> bool:
    return bool(text) and (text[0].isalnum() or text[0] == "_")
