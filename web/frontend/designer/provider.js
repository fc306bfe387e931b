// The "regflow" group of the properties panel: the spiffworkflow conventions regflow reads (ARCHITECTURE.md).
//   service task:        operator (from the engine's live registry), result variable, its declared parameters
//   user task:           candidateGroups, assignee, formId (from forms/), dueIn, priority, notCompletedBy
//   every flow node, sequence flow, process and pool: nameZh, nameEn (the name in the Chinese / English UI)
//   process and pool:    startableBy (the groups whose members may start it; empty: only the engine)
//   business rule task:  spiffworkflow:calledDecisionId (from the deployed DMN files)
// The lists come from the page (`designer-config`), registered as the `regflowCatalog` service.
import { SelectEntry, TextFieldEntry, isSelectEntryEdited, isTextFieldEntryEdited } from "@bpmn-io/properties-panel";
import { h } from "@bpmn-io/properties-panel/preact";
import { useService } from "bpmn-js-properties-panel";
import { is } from "bpmn-js/lib/util/ModelUtil";
import {
  extensionOf, operatorParameters, setBodyExtension, setOperator, setParameter, setUserProperty, userProperty,
} from "./extensions";

// user-task properties edited as text; labels and help come from catalog.text[name], [name + "Help"]
const USER_PROPERTIES = ["candidateGroups", "assignee", "dueIn", "priority", "notCompletedBy"];
// the element's name in the UI's languages (engine/runtime/labels.py): user tasks, processes and pools
const NAME_PROPERTIES = ["nameZh", "nameEn"];

function useServices() {
  return { bpmnFactory: useService("bpmnFactory"), commandStack: useService("commandStack") };
}

function UserPropertyEntry({ element, id, name, label, description }) {
  const services = useServices();
  const debounce = useService("debounceInput");
  return h(TextFieldEntry, {
    element, id, label, description, debounce,
    getValue: () => userProperty(element, name) || "",
    setValue: (value) => setUserProperty(element, name, value, services),
  });
}

function FormEntry({ element, id }) {
  const services = useServices();
  const catalog = useService("regflowCatalog");
  return h(SelectEntry, {
    element, id, label: catalog.text.formId,
    getValue: () => userProperty(element, "formId") || "",
    setValue: (value) => setUserProperty(element, "formId", value, services),
    getOptions: () => withCurrent(catalog.forms, userProperty(element, "formId"), catalog.text),
  });
}

function DecisionEntry({ element, id }) {
  const services = useServices();
  const catalog = useService("regflowCatalog");
  const current = () => (extensionOf(element, "spiffworkflow:CalledDecisionId") || {}).value;
  return h(SelectEntry, {
    element, id, label: catalog.text.decision,
    getValue: () => current() || "",
    setValue: (value) => setBodyExtension(element, "spiffworkflow:CalledDecisionId", value, services),
    getOptions: () => withCurrent(catalog.decisions, current(), catalog.text),
  });
}

function OperatorEntry({ element, id }) {
  const services = useServices();
  const catalog = useService("regflowCatalog");
  const current = () => (extensionOf(element, "spiffworkflow:ServiceTaskOperator") || {}).id;
  return h(SelectEntry, {
    element, id, label: catalog.text.operator,
    getValue: () => current() || "",
    setValue: (value) => {
      const op = catalog.operators.find((o) => o.id === value);
      setOperator(element, value, op ? op.parameters : [], services);
    },
    getOptions: () => withCurrent(catalog.operators.map((o) => o.id), current(), catalog.text),
  });
}

function ResultVariableEntry({ element, id }) {
  const services = useServices();
  const debounce = useService("debounceInput");
  const catalog = useService("regflowCatalog");
  return h(TextFieldEntry, {
    element, id, label: catalog.text.resultVariable, debounce,
    getValue: () => (extensionOf(element, "spiffworkflow:ServiceTaskOperator") || {}).resultVariable || "",
    setValue: (value) => {
      const op = extensionOf(element, "spiffworkflow:ServiceTaskOperator");
      if (op) services.commandStack.execute("element.updateModdleProperties",
        { element, moddleElement: op, properties: { resultVariable: value || undefined } });
    },
  });
}

function ParameterEntry({ element, id, param }) {
  const services = useServices();
  const debounce = useService("debounceInput");
  const catalog = useService("regflowCatalog");
  return h(TextFieldEntry, {
    element, id, debounce,
    label: `${param.id} (${param.type}${param.required ? `, ${catalog.text.required}` : ""})`,
    description: param.description,
    getValue: () => (operatorParameters(element).find((p) => p.id === param.id) || {}).value || "",
    setValue: (value) => setParameter(element, param.id, param.type, value, services),
  });
}

// Options of a select: a blank choice, the known ids, and the current value when it is unknown.
function withCurrent(ids, current, text) {
  const options = [{ value: "", label: text.none }, ...ids.map((v) => ({ value: v, label: v }))];
  if (current && !ids.includes(current)) options.push({ value: current, label: `${current} (${text.unknownOperator})` });
  return options;
}

function entries(element, catalog) {
  const list = [];
  if (is(element, "bpmn:ServiceTask")) {
    list.push({ id: "regflow-operator", component: OperatorEntry, isEdited: isSelectEntryEdited });
    list.push({ id: "regflow-result-variable", component: ResultVariableEntry, isEdited: isTextFieldEntryEdited });
    const current = (extensionOf(element, "spiffworkflow:ServiceTaskOperator") || {}).id;
    const op = catalog.operators.find((o) => o.id === current);
    for (const param of (op ? op.parameters : [])) {
      list.push({ id: `regflow-param-${param.id}`, param, isEdited: isTextFieldEntryEdited, component: ParameterEntry });
    }
  }
  if (is(element, "bpmn:UserTask")) {
    list.push({ id: "regflow-formId", component: FormEntry, isEdited: isSelectEntryEdited });
    for (const name of USER_PROPERTIES) {
      list.push({ id: `regflow-${name}`, name, label: catalog.text[name], description: catalog.text[`${name}Help`],
        isEdited: isTextFieldEntryEdited,
        component: UserPropertyEntry });
    }
  }
  if (is(element, "bpmn:FlowNode") || is(element, "bpmn:SequenceFlow") || is(element, "bpmn:Process")
      || is(element, "bpmn:Participant")) {
    for (const name of NAME_PROPERTIES) {
      list.push({ id: `regflow-${name}`, name, label: catalog.text[name], description: catalog.text[`${name}Help`],
        isEdited: isTextFieldEntryEdited, component: UserPropertyEntry });
    }
  }
  if (is(element, "bpmn:Process") || is(element, "bpmn:Participant")) {
    list.push({ id: "regflow-startableBy", name: "startableBy", label: catalog.text.startableBy,
      description: catalog.text.startableByHelp, isEdited: isTextFieldEntryEdited, component: UserPropertyEntry });
  }
  if (is(element, "bpmn:BusinessRuleTask")) {
    list.push({ id: "regflow-decision", component: DecisionEntry, isEdited: isSelectEntryEdited });
  }
  return list.map((e) => ({ ...e, element }));
}

export default class RegflowPropertiesProvider {
  constructor(propertiesPanel, regflowCatalog) {
    this.catalog = regflowCatalog;
    propertiesPanel.registerProvider(400, this);
  }

  getGroups(element) {
    return (groups) => {
      const list = entries(element, this.catalog);
      if (list.length) groups.splice(1, 0, { id: "regflow", label: "regflow", entries: list });
      return groups;
    };
  }
}
RegflowPropertiesProvider.$inject = ["propertiesPanel", "regflowCatalog"];
