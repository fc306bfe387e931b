// Round-trips BPMN and DMN files through bpmn-moddle / dmn-moddle, the models bpmn-js and dmn-js use
// to import and export diagrams (every file in processes/ must survive the designer).
//
//   node tests/support/moddle_roundtrip.mjs FILE...
//
// Prints one JSON document: [{file, kind, warnings: [..], unknown: [..], xml}] where `warnings` are
// the reader's warnings (unknown attributes, unresolved references, ...), `unknown` lists elements that
// no descriptor knows (moddle keeps them as generic elements, but no properties panel can edit them) and
// `xml` is the re-serialised document. BPMN files are read with the spiffworkflow descriptor of the
// designer (web/frontend/designer/spiffworkflow.json). The caller compares ids and meaning.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpmnModdle } from "bpmn-moddle";
import { DmnModdle } from "dmn-moddle";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const spiff = JSON.parse(readFileSync(join(root, "web", "frontend", "designer", "spiffworkflow.json"), "utf8"));

function unknownElements(element, found = [], seen = new Set()) {
  if (!element || typeof element !== "object" || seen.has(element)) return found;
  seen.add(element);
  if (element.$descriptor && element.$descriptor.isGeneric) found.push(element.$type);
  for (const key of Object.keys(element)) {
    if (key.startsWith("$") || key === "di") continue;
    const value = element[key];
    if (Array.isArray(value)) value.forEach((v) => unknownElements(v, found, seen));
    else if (value && typeof value === "object" && value.$type) unknownElements(value, found, seen);
  }
  return found;
}

async function roundTrip(file) {
  const kind = file.endsWith(".dmn") ? "dmn" : "bpmn";
  const moddle = kind === "dmn" ? new DmnModdle() : new BpmnModdle({ spiffworkflow: spiff });
  const text = readFileSync(file, "utf8");
  try {
    const { rootElement, warnings } = await moddle.fromXML(text, kind === "dmn" ? "dmn:Definitions" : "bpmn:Definitions");
    const { xml } = await moddle.toXML(rootElement, { format: true });
    return { file, kind, warnings: warnings.map((w) => w.message), unknown: unknownElements(rootElement), xml };
  } catch (err) {
    return { file, kind, warnings: [`could not be read: ${err.message}`], unknown: [], xml: null };
  }
}

const results = [];
for (const file of process.argv.slice(2)) results.push(await roundTrip(file));
process.stdout.write(JSON.stringify(results));
