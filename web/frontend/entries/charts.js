// Charts of the supervisors' dashboard (Chart.js, bundled from node_modules).
//
// Contract: <canvas data-chart="ID"></canvas> + <script type="application/json" id="ID">
//   {"type": "bar" | "line", "labels": [...], "datasets": [{"label": "...", "data": [...], "color": "#hex"}]}
// </script>. The data are server-rendered; without this script the tables on the page carry the numbers.
// When a chart is drawn its canvas gets data-ready="1" (tests wait on it).
import Chart from "chart.js/auto";

function spec(canvas) {
  const el = document.getElementById(canvas.dataset.chart);
  return el ? JSON.parse(el.textContent) : null;
}

function draw(canvas) {
  const s = spec(canvas);
  if (!s) return;
  const line = s.type === "line";
  new Chart(canvas, {
    type: s.type || "bar",
    data: {
      labels: s.labels,
      datasets: s.datasets.map((d) => ({
        label: d.label,
        data: d.data,
        backgroundColor: line ? `${d.color}33` : d.color,
        borderColor: d.color,
        borderWidth: line ? 2 : 0,
        fill: line,
        tension: 0.2,
        pointRadius: line ? 2 : 0,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  canvas.dataset.ready = "1";
}

document.querySelectorAll("canvas[data-chart]").forEach(draw);
