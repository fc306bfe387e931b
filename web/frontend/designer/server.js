// Talking to the designer's endpoints and showing their answers (shared by the BPMN and DMN editors).

export function readConfig(id = "designer-config") {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : {};
}

// POST the file to /designer/validate or /designer/deploy; resolves to the JSON answer (any status).
export async function postFile(url, fileName, xml) {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const body = new URLSearchParams({ file_name: fileName, xml });
  const resp = await fetch(url, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { "X-CSRF-Token": meta ? meta.content : "", Accept: "application/json" },
  });
  let data;
  try {
    data = await resp.json();
  } catch (err) {
    data = { ok: false, issues: [], message: `HTTP ${resp.status}` };
  }
  if (data.error) data = { ok: false, issues: [], message: data.error.message };
  return { status: resp.status, ...data };
}

export function setStatus(text, state = "info") {
  const el = document.getElementById("status");
  if (!el) return;
  el.textContent = text;
  el.dataset.state = state;
}

// The issue list under the toolbar; `onPick(elementId)` runs when an issue naming an element is clicked.
export function showIssues(issues, labels, onPick) {
  const list = document.getElementById("issues");
  if (!list) return;
  list.replaceChildren();
  for (const issue of issues || []) {
    const li = document.createElement("li");
    li.className = "issue";
    if (issue.element_id) li.dataset.element = issue.element_id;
    const where = [issue.file, issue.line ? `${labels.line} ${issue.line}` : null,
      issue.element_id ? `${labels.element} ${issue.element_id}` : null, issue.field].filter(Boolean).join(" · ");
    const strong = document.createElement("strong");
    strong.textContent = where;
    li.append(strong, document.createTextNode(` ${issue.message}`));
    if (issue.element_id && onPick) {
      li.classList.add("pickable");
      li.addEventListener("click", () => onPick(issue.element_id));
    }
    list.append(li);
  }
}

export function download(fileName, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/xml" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
