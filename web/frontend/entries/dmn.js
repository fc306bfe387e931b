// The DMN editor page (/designer/decision/<file>): dmn-js with the decision table opened, Validate /
// Deploy / Download XML. Cells are Python expressions (the page says so); deploy compiles every cell
// and the rules with problems are marked in the table.
import DmnModeler from "dmn-js/lib/Modeler";
import { download, postFile, readConfig, setStatus, showIssues } from "../designer/server";

const config = readConfig();
const text = config.text || {};
const container = document.getElementById("dmn-editor");
const modeler = new DmnModeler({ container, common: { keyboard: { bindTo: document } } });

async function currentXml() {
  const { xml } = await modeler.saveXML({ format: true });
  return xml;
}

function markRows(issues) {
  container.querySelectorAll(".rf-invalid-cell").forEach((el) => el.classList.remove("rf-invalid-cell"));
  for (const issue of issues) {
    if (!issue.element_id) continue;
    container.querySelectorAll(`[data-row-id="${CSS.escape(issue.element_id)}"]`)
      .forEach((el) => el.classList.add("rf-invalid-cell"));
  }
}

function report(result) {
  showIssues(result.issues || [], text, null);
  markRows(result.issues || []);
  setStatus(result.message || "", result.ok ? "ok" : "error");
}

async function send(url, busy) {
  setStatus(busy, "busy");
  report(await postFile(url, config.fileName, await currentXml()));
}

async function load() {
  try {
    const resp = await fetch(config.xmlUrl, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    await modeler.importXML(await resp.text());
    const table = modeler.getViews().find((v) => v.type === "decisionTable");
    if (table) await modeler.open(table);
    container.dataset.ready = "1";
  } catch (err) {
    container.dataset.ready = "error";
    setStatus(`${text.importFailed} ${err.message}`, "error");
  }
}

const guard = (fn) => () => fn().catch((err) => setStatus(`${text.requestFailed}: ${err.message}`, "error"));
document.getElementById("validate-button").addEventListener("click", guard(() => send(config.validateUrl, text.validating)));
document.getElementById("deploy-button").addEventListener("click", guard(() => send(config.deployUrl, text.deploying)));
document.getElementById("download-button").addEventListener("click",
  guard(async () => download(config.fileName, await currentXml())));
load();
