// Behaviour shared by every page: htmx carries the CSRF token; confirm dialogs; "select all" boxes.
document.addEventListener("htmx:configRequest", (evt) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) evt.detail.headers["X-CSRF-Token"] = meta.content;
});
document.addEventListener("click", (evt) => {
  const el = evt.target.closest("[data-confirm]");
  if (el && !window.confirm(el.dataset.confirm)) evt.preventDefault();
});
document.addEventListener("change", (evt) => {
  const box = evt.target.closest("input[data-select-all]");
  if (!box) return;
  document.querySelectorAll(`input[name="${box.dataset.selectAll}"]`).forEach((b) => { b.checked = box.checked; });
});
document.addEventListener("change", (evt) => {
  const sel = evt.target.closest("select[data-autosubmit]");
  if (sel && sel.form) sel.form.submit();
});
