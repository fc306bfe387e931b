// Read-only BPMN diagrams, used by the designer (view, diff) and the auditor area.
//
// Contract:
//   <div class="diagram" data-bpmn-viewer data-xml-url="URL" [data-highlight="ID"]></div>
//   <script type="application/json" id="ID">
//     {"done": [element ids], "flows": [sequence flow ids], "current": [element ids], "failed": [element ids],
//      "added": [...], "removed": [...], "changed": [...]}
//   </script>
// - the XML is fetched from URL (same origin, with the session cookie) and shown fitted to the box
//   (a diagram too tall to fit readably is shown from its top at full size; drag or wheel to scroll);
// - each listed id gets the marker rf-done, rf-flow, rf-current, rf-failed, rf-added, rf-removed or
//   rf-changed (styled in web/static/css/diagram.css); ids absent from the diagram are ignored;
// - when the import has finished the container gets data-ready="1" (tests wait on it); on failure
//   data-ready="error" and the message is shown in the box;
// - clicking an element dispatches a bubbling CustomEvent "rf:element-click" on the container with
//   detail {id, type}.
// - clicking anything with data-focus-element="ID" (e.g. a row of a change table) scrolls every viewer on
//   the page to that element.
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";

const MARKERS = { done: "rf-done", flows: "rf-flow", current: "rf-current", failed: "rf-failed",
  added: "rf-added", removed: "rf-removed", changed: "rf-changed" };

function highlightOf(container) {
  const id = container.dataset.highlight;
  const el = id ? document.getElementById(id) : null;
  return el ? JSON.parse(el.textContent) : {};
}

async function show(container) {
  const viewer = new NavigatedViewer({ container });
  try {
    const resp = await fetch(container.dataset.xmlUrl, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    await viewer.importXML(await resp.text());
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    canvas.zoom("fit-viewport");
    if (canvas.zoom() < 0.6) { // a tall diagram would shrink to nothing: show its top at full size
      const { inner, outer } = canvas.viewbox();
      canvas.viewbox({ x: inner.x - 40, y: inner.y - 40, width: outer.width, height: outer.height });
    }
    const highlight = highlightOf(container);
    for (const [key, marker] of Object.entries(MARKERS)) {
      for (const id of highlight[key] || []) if (registry.get(id)) canvas.addMarker(id, marker);
    }
    viewer.get("eventBus").on("element.click", (event) => {
      const { id, type } = event.element;
      container.dispatchEvent(new CustomEvent("rf:element-click", { bubbles: true, detail: { id, type } }));
    });
    container.dataset.ready = "1";
  } catch (err) {
    container.dataset.ready = "error";
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = err.message;
    container.replaceChildren(p);
  }
  return viewer;
}

const viewers = [];
document.querySelectorAll("[data-bpmn-viewer]").forEach((el) => { show(el).then((v) => viewers.push(v)); });
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-focus-element]");
  if (!target) return;
  for (const viewer of viewers) {
    const element = viewer.get("elementRegistry").get(target.dataset.focusElement);
    if (element) viewer.get("canvas").scrollToElement(element);
  }
});
