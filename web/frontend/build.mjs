// Bundles the workbench's front-end code into web/static/dist (run by `npm run build`, which
// bin/setup calls). Every entry point is a file in web/frontend/entries/; vendor files that ship as
// ready browser builds are copied as they are. Nothing is fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const out = join(root, "web", "static", "dist");
mkdirSync(out, { recursive: true });

const copies = {
  "htmx.org/dist/htmx.min.js": "htmx.min.js",
  "chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
  "bpmn-js/dist/assets/diagram-js.css": "diagram-js.css",
  "bpmn-js/dist/assets/bpmn-js.css": "bpmn-js.css",
  "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css": "bpmn-embedded.css",
  "@bpmn-io/properties-panel/dist/assets/properties-panel.css": "properties-panel.css",
  "dmn-js/dist/assets/dmn-js-shared.css": "dmn-js-shared.css",
  "dmn-js/dist/assets/dmn-js-drd.css": "dmn-js-drd.css",
  "dmn-js/dist/assets/dmn-js-decision-table.css": "dmn-js-decision-table.css",
  "dmn-js/dist/assets/dmn-js-decision-table-controls.css": "dmn-js-decision-table-controls.css",
  "dmn-js/dist/assets/dmn-js-literal-expression.css": "dmn-js-literal-expression.css",
  "dmn-js/dist/assets/dmn-font/css/dmn-embedded.css": "dmn-embedded.css",
};
for (const [from, to] of Object.entries(copies)) {
  copyFileSync(join(root, "node_modules", from), join(out, to));
}

const entriesDir = join(here, "entries");
const entryPoints = readdirSync(entriesDir).filter((f) => f.endsWith(".js")).map((f) => join(entriesDir, f));
const started = Date.now();
await build({
  entryPoints,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  logLevel: "warning",
  loader: { ".svg": "text" },
});
console.log(`web assets: ${entryPoints.length} bundles + ${Object.keys(copies).length} vendor files in ${Date.now() - started} ms -> web/static/dist`);
