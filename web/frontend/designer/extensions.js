// Reading and changing spiffworkflow extension elements of a BPMN element through bpmn-js commands
// (so every change can be undone). Types come from spiffworkflow.json.
import { getBusinessObject, is } from "bpmn-js/lib/util/ModelUtil";

const MULTI = "properties-panel.multi-command-executor";

export function extensionOf(element, type) {
  const ext = getBusinessObject(element).extensionElements;
  return ext ? (ext.get("values") || []).find((v) => is(v, type)) : undefined;
}

export function userProperty(element, name) {
  const props = extensionOf(element, "spiffworkflow:Properties");
  const prop = props && (props.get("properties") || []).find((p) => p.name === name);
  return prop ? prop.value : undefined;
}

function update(element, moddleElement, properties) {
  return { cmd: "element.updateModdleProperties", context: { element, moddleElement, properties } };
}

// [commands, extensionElements]: creates bpmn:extensionElements when missing.
function ensureExtensionElements(element, bpmnFactory) {
  const bo = getBusinessObject(element);
  if (bo.extensionElements) return [[], bo.extensionElements];
  const ext = bpmnFactory.create("bpmn:ExtensionElements", { values: [] });
  ext.$parent = bo;
  return [[update(element, bo, { extensionElements: ext })], ext];
}

// [commands, child]: the first extension of `type`, created with `attrs` when missing.
function ensureExtension(element, type, attrs, bpmnFactory) {
  const [cmds, ext] = ensureExtensionElements(element, bpmnFactory);
  let child = (ext.get("values") || []).find((v) => is(v, type));
  if (!child) {
    child = bpmnFactory.create(type, attrs);
    child.$parent = ext;
    cmds.push(update(element, ext, { values: [...(ext.get("values") || []), child] }));
  }
  return [cmds, child];
}

function run(commandStack, cmds) {
  if (cmds.length) commandStack.execute(MULTI, cmds);
}

// A user-task property (candidateGroups, assignee, formId, dueIn, priority); empty removes it.
export function setUserProperty(element, name, value, { bpmnFactory, commandStack }) {
  const [cmds, props] = ensureExtension(element, "spiffworkflow:Properties", { properties: [] }, bpmnFactory);
  const list = props.get("properties") || [];
  const prop = list.find((p) => p.name === name);
  if (value === undefined || value === null || value === "") {
    if (prop) cmds.push(update(element, props, { properties: list.filter((p) => p !== prop) }));
  } else if (prop) {
    cmds.push(update(element, prop, { value }));
  } else {
    const created = bpmnFactory.create("spiffworkflow:Property", { name, value });
    created.$parent = props;
    cmds.push(update(element, props, { properties: [...list, created] }));
  }
  run(commandStack, cmds);
}

// A text-bodied extension such as spiffworkflow:calledDecisionId.
export function setBodyExtension(element, type, value, { bpmnFactory, commandStack }) {
  const [cmds, child] = ensureExtension(element, type, { value }, bpmnFactory);
  if (child.value !== value) cmds.push(update(element, child, { value }));
  run(commandStack, cmds);
}

export function operatorParameters(element) {
  const op = extensionOf(element, "spiffworkflow:ServiceTaskOperator");
  return (op && op.parameterList && op.parameterList.get("parameters")) || [];
}

// Choose the operator: keeps parameter values the new operator also declares, adds its missing
// declared parameters (empty, to be filled) and drops the others.
export function setOperator(element, operatorId, declared, { bpmnFactory, commandStack }) {
  const [cmds, op] = ensureExtension(element, "spiffworkflow:ServiceTaskOperator", { id: operatorId }, bpmnFactory);
  const old = operatorParameters(element);
  let list = op.parameterList;
  if (!list) {
    list = bpmnFactory.create("spiffworkflow:Parameters", { parameters: [] });
    list.$parent = op;
  }
  const params = (declared || []).map((d) => {
    const kept = old.find((p) => p.id === d.id);
    if (kept) return kept;
    const p = bpmnFactory.create("spiffworkflow:Parameter", { id: d.id, type: d.type, value: "" });
    p.$parent = list;
    return p;
  });
  cmds.push(update(element, op, { id: operatorId, parameterList: list }));
  cmds.push(update(element, list, { parameters: params }));
  run(commandStack, cmds);
}

export function setParameter(element, paramId, type, value, { bpmnFactory, commandStack }) {
  const op = extensionOf(element, "spiffworkflow:ServiceTaskOperator");
  if (!op) return;
  const cmds = [];
  let list = op.parameterList;
  if (!list) {
    list = bpmnFactory.create("spiffworkflow:Parameters", { parameters: [] });
    list.$parent = op;
    cmds.push(update(element, op, { parameterList: list }));
  }
  const params = list.get("parameters") || [];
  const found = params.find((p) => p.id === paramId);
  if (found) {
    cmds.push(update(element, found, { value }));
  } else {
    const p = bpmnFactory.create("spiffworkflow:Parameter", { id: paramId, type, value });
    p.$parent = list;
    cmds.push(update(element, list, { parameters: [...params, p] }));
  }
  run(commandStack, cmds);
}
