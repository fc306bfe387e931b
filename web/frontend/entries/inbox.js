// The task page: evidence uploads inside the form (each file posted to the task's evidence URL; the
// returned reference becomes a hidden input of the field) and visible_if fields shown/hidden as the
// answers change. Without this script the page still works: upload with the evidence card, every field shown.
const section = document.getElementById("task-form");

function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function addReference(list, name, ref) {
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.type = "hidden";
  input.name = name;
  input.value = JSON.stringify({ sha256: ref.sha256, filename: ref.filename, size: ref.size, content_type: ref.content_type });
  li.appendChild(input);
  li.appendChild(document.createTextNode(`${ref.filename} (${ref.size} B) `));
  const code = document.createElement("code");
  code.className = "rf-sha";
  code.title = `sha256 ${ref.sha256}`;
  code.textContent = ref.sha256.slice(0, 12);
  li.appendChild(code);
  list.appendChild(li);
}

async function upload(fileInput) {
  const box = fileInput.closest(".rf-evidence");
  const list = box.querySelector(".rf-evidence-list");
  const name = fileInput.dataset.evidenceFor;
  for (const file of Array.from(fileInput.files)) {
    const pending = document.createElement("li");
    pending.className = "uploading";
    pending.textContent = `${file.name} …`;
    list.appendChild(pending);
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      const resp = await fetch(section.dataset.uploadUrl, {
        method: "POST", body, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin",
      });
      const doc = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        pending.className = "failed";
        pending.setAttribute("role", "alert");
        pending.textContent = (doc.error && doc.error.message) || `${file.name}: HTTP ${resp.status}`;
        continue;
      }
      pending.remove();
      for (const ref of doc.evidence || []) addReference(list, name, ref);
    } catch (err) {
      pending.className = "failed";
      pending.textContent = `${file.name}: ${err}`;
    }
  }
  fileInput.value = "";
}

function currentValues(form, field) {
  const inputs = form.querySelectorAll(`[name="${CSS.escape(field)}"]`);
  const values = [];
  inputs.forEach((el) => {
    if ((el.type === "radio" || el.type === "checkbox") && !el.checked) return;
    values.push(el.value);
  });
  return values;
}

function applyVisibility(form) {
  form.querySelectorAll("[data-visible-if-field]").forEach((el) => {
    let shown;
    if (el.dataset.visibleIfDiffersFrom !== undefined) {
      // shown when both fields have a value and they differ (a reason for leaving the decided method)
      const a = currentValues(form, el.dataset.visibleIfField).filter((v) => v !== "");
      const b = currentValues(form, el.dataset.visibleIfDiffersFrom).filter((v) => v !== "");
      shown = a.length > 0 && b.length > 0 && a[0] !== b[0];
    } else {
      let wanted;
      try { wanted = JSON.parse(el.dataset.visibleIfValues).map((v) => String(v)); } catch (e) { return; }
      shown = currentValues(form, el.dataset.visibleIfField).some((v) => wanted.includes(v));
    }
    el.classList.toggle("rf-hidden", !shown);
    // a hidden field is not submitted (the server refuses values for fields that do not apply)
    el.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !shown; });
  });
}

if (section) {
  section.addEventListener("change", (evt) => {
    const input = evt.target.closest("input.rf-evidence-upload");
    if (input && input.files.length) upload(input);
    const form = evt.target.closest("form.rf-form");
    if (form) applyVisibility(form);
  });
  const form = section.querySelector("form.rf-form");
  if (form) applyVisibility(form);
}
