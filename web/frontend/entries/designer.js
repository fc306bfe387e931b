// The BPMN modeler page (/designer/process/<id>/edit): bpmn-js Modeler, the properties panel with the
// "regflow" group (designer/provider.js), Validate / Deploy / Download XML, and "Paste XML".
// Page data comes from <script type="application/json" id="designer-config"> (see web/designer/views.py).
import Modeler from "bpmn-js/lib/Modeler";
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from "bpmn-js-properties-panel";
import RegflowPropertiesProvider from "../designer/provider";
import spiffworkflow from "../designer/spiffworkflow.json";
import { download, postFile, readConfig, setStatus, showIssues } from "../designer/server";

const INVALID = "rf-invalid";
const config = readConfig();
const text = config.text || {};
const container = document.getElementById("canvas");

const regflowModule = {
  __init__: ["regflowPropertiesProvider"],
  regflowPropertiesProvider: ["type", RegflowPropertiesProvider],
  regflowCatalog: ["value", { operators: config.operators || [], forms: config.forms || [],
    decisions: config.decisions || [], text }],
};

const modeler = new Modeler({
  container,
  propertiesPanel: { parent: "#properties" },
  additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, regflowModule],
  moddleExtensions: { spiffworkflow },
});

let marked = [];

function clearMarks() {
  const canvas = modeler.get("canvas");
  const registry = modeler.get("elementRegistry");
  for (const id of marked) if (registry.get(id)) canvas.removeMarker(id, INVALID);
  modeler.get("overlays").remove({ type: "rf-issue" });
  marked = [];
}

function markIssues(issues) {
  clearMarks();
  const canvas = modeler.get("canvas");
  const registry = modeler.get("elementRegistry");
  const overlays = modeler.get("overlays");
  const counts = {};
  for (const issue of issues) if (issue.element_id) counts[issue.element_id] = (counts[issue.element_id] || 0) + 1;
  for (const [id, n] of Object.entries(counts)) {
    if (!registry.get(id)) continue;
    canvas.addMarker(id, INVALID);
    const badge = document.createElement("div");
    badge.className = "rf-issue-badge";
    badge.dataset.element = id;
    badge.textContent = String(n);
    overlays.add(id, "rf-issue", { position: { top: -10, right: 10 }, html: badge });
    marked.push(id);
  }
}

function pick(id) {
  const element = modeler.get("elementRegistry").get(id);
  if (!element) return;
  modeler.get("selection").select(element);
  modeler.get("canvas").scrollToElement(element);
}

async function currentXml() {
  const { xml } = await modeler.saveXML({ format: true });
  return xml;
}

function report(result) {
  showIssues(result.issues || [], text, pick);
  markIssues(result.issues || []);
  setStatus(result.message || "", result.ok ? "ok" : "error");
}

async function validate() {
  setStatus(text.validating, "busy");
  report(await postFile(config.validateUrl, config.fileName, await currentXml()));
}

async function deploy() {
  setStatus(text.deploying, "busy");
  const result = await postFile(config.deployUrl, config.fileName, await currentXml());
  report(result);
  if (result.ok && result.created) {
    const link = document.createElement("a");
    link.href = result.list_url;
    link.id = "deployed-link";
    link.textContent = text.deployed;
    document.getElementById("status").append(" ", link);
  }
}

async function importPasted() {
  const pasted = document.getElementById("paste-xml").value;
  if (!pasted.trim()) return;
  const checked = await postFile(config.validateUrl, config.fileName, pasted);
  if (!checked.readable) {
    showIssues(checked.issues || [], text, null);
    setStatus(text.invalidXml, "error");
    return;
  }
  const previous = await currentXml();
  try {
    const { warnings } = await modeler.importXML(pasted);
    initialView();
    if (!warnAboutImport(warnings)) report({ ...checked, message: `${text.imported} ${checked.message || ""}` });
  } catch (err) {
    await modeler.importXML(previous);
    showIssues([], text, null);
    setStatus(`${text.importFailed} ${err.message}`, "error");
  }
}

// bpmn-js drops what it cannot read (e.g. an undeclared spiffworkflow element): say so, loudly.
function warnAboutImport(warnings) {
  if (!warnings || !warnings.length) return false;
  showIssues(warnings.map((w) => ({ file: config.fileName, message: w.message })), text, null);
  setStatus(text.importWarnings, "error");
  return true;
}

// Fit the diagram; a tall one would shrink to nothing, so show its top at full size instead.
function initialView() {
  const canvas = modeler.get("canvas");
  canvas.zoom("fit-viewport");
  if (canvas.zoom() >= 0.6) return;
  const { inner, outer } = canvas.viewbox();
  canvas.viewbox({ x: inner.x - 180, y: inner.y - 30, width: outer.width, height: outer.height }); // clear of the palette
}

async function load() {
  try {
    const resp = await fetch(config.xmlUrl, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const { warnings } = await modeler.importXML(await resp.text());
    initialView();
    warnAboutImport(warnings);
    container.dataset.ready = "1";
  } catch (err) {
    container.dataset.ready = "error";
    setStatus(`${text.importFailed} ${err.message}`, "error");
  }
}

const guard = (fn) => () => fn().catch((err) => setStatus(`${text.requestFailed}: ${err.message}`, "error"));
document.getElementById("validate-button").addEventListener("click", guard(validate));
document.getElementById("deploy-button").addEventListener("click", guard(deploy));
document.getElementById("download-button").addEventListener("click",
  guard(async () => download(config.fileName, await currentXml())));
document.getElementById("paste-button").addEventListener("click", guard(importPasted));
load();
