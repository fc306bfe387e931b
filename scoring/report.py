"""Self-contained HTML model report with inline SVG plots (no JavaScript, no external files).

Plots: ROC of the model beside the Bayes-optimal score, calibration, lift by decile, observed rate by class,
and each factor's learned effect (logit contribution). Everything is computed from the test set stored with
the model (the control stratum of the latest campaign) and from its reason tables.
"""
from __future__ import annotations

import html
import json

import numpy as np
from sklearn.metrics import roc_curve

from scoring.classes import CLASSES
from scoring.factors import CATEGORIES, FACTOR_BY_NAME, MODEL_INPUTS, category_label
from scoring.generator import WorldParams, true_index
from scoring.predict import RiskModel, factor_grid

W, H, PAD = 380, 260, 44
COLORS = {"model": "#1f6feb", "bayes": "#d1242f", "indicator": "#8250df", "grey": "#8c959f"}


def _scale(v, lo, hi, a, b):
    return a + (np.asarray(v, float) - lo) / ((hi - lo) or 1.0) * (b - a)


def _frame(title, xlabel, ylabel, xlim, ylim, body, legend=()) -> str:
    x0, x1, y0, y1 = PAD, W - 12, H - PAD, 24
    ticks = []
    for t in np.linspace(*xlim, 5):
        x = _scale(t, *xlim, x0, x1)
        ticks.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}" stroke="#333"/>'
                     f'<text x="{x:.1f}" y="{y0 + 16}" font-size="10" text-anchor="middle">{t:.3g}</text>')
    for t in np.linspace(*ylim, 5):
        y = _scale(t, *ylim, y0, y1)
        ticks.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#333"/>'
                     f'<text x="{x0 - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{t:.3g}</text>'
                     f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eee"/>')
    leg = "".join(f'<rect x="{x0 + 8}" y="{y1 + 4 + 14 * i}" width="10" height="10" fill="{c}"/>'
                  f'<text x="{x0 + 22}" y="{y1 + 13 + 14 * i}" font-size="11">{html.escape(n)}</text>'
                  for i, (n, c) in enumerate(legend))
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'role="img" aria-label="{html.escape(title)}">'
            f'<text x="{W / 2}" y="14" font-size="13" text-anchor="middle" font-weight="bold">'
            f'{html.escape(title)}</text>'
            f'{"".join(ticks)}<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>'
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>{body}{leg}'
            f'<text x="{(x0 + x1) / 2}" y="{H - 6}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text>'
            f'<text x="12" y="{(y0 + y1) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(y0 + y1) / 2})">{html.escape(ylabel)}</text></svg></figure>')


def _polyline(xs, ys, xlim, ylim, color, dash="") -> str:
    x0, x1, y0, y1 = PAD, W - 12, H - PAD, 24
    px = _scale(xs, *xlim, x0, x1)
    py = _scale(np.clip(ys, *ylim), *ylim, y0, y1)
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.8"{d}/>'


def _bars(values, labels, ylim, color, annotations=None) -> str:
    x0, x1, y0, y1 = PAD, W - 12, H - PAD, 24
    n = len(values)
    bw = (x1 - x0) / n
    out = []
    for i, v in enumerate(values):
        v = 0.0 if v is None or not np.isfinite(v) else v
        top = _scale(min(max(v, ylim[0]), ylim[1]), *ylim, y0, y1)
        base = _scale(max(ylim[0], 0), *ylim, y0, y1)
        y, h = (top, base - top) if top < base else (base, top - base)
        out.append(f'<rect x="{x0 + i * bw + 3:.1f}" y="{y:.1f}" width="{bw - 6:.1f}" height="{h:.1f}" fill="{color}"/>'
                   f'<text x="{x0 + (i + .5) * bw:.1f}" y="{y0 + 28}" font-size="9" text-anchor="middle">'
                   f'{html.escape(str(labels[i]))}</text>')
        if annotations:
            out.append(f'<text x="{x0 + (i + .5) * bw:.1f}" y="{y - 3:.1f}" font-size="9" text-anchor="middle">'
                       f'{html.escape(annotations[i])}</text>')
    return "".join(out)


def roc_plot(y, p, bayes) -> str:
    body = [_polyline([0, 1], [0, 1], (0, 1), (0, 1), COLORS["grey"], "4 3")]
    legend = []
    fpr, tpr, _ = roc_curve(y, p)
    body.append(_polyline(fpr, tpr, (0, 1), (0, 1), COLORS["model"]))
    legend.append(("model", COLORS["model"]))
    if len(bayes):
        fpr, tpr, _ = roc_curve(y, bayes)
        body.append(_polyline(fpr, tpr, (0, 1), (0, 1), COLORS["bayes"], "5 2"))
        legend.append(("Bayes-optimal (true probability)", COLORS["bayes"]))
    return _frame("ROC (test: random control stratum)", "false positive rate", "true positive rate",
                  (0, 1), (0, 1), "".join(body), legend)


def calibration_plot(y, p, bins=10) -> str:
    q = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(q, p, side="right") - 1, 0, bins - 1)
    mp = np.array([p[idx == b].mean() for b in range(bins) if (idx == b).any()])
    my = np.array([y[idx == b].mean() for b in range(bins) if (idx == b).any()])
    hi = float(max(mp.max(), my.max()) * 1.1)
    body = _polyline([0, hi], [0, hi], (0, hi), (0, hi), COLORS["grey"], "4 3")
    body += _polyline(mp, my, (0, hi), (0, hi), COLORS["model"])
    x0, x1, y0, y1 = PAD, W - 12, H - PAD, 24
    body += "".join(f'<circle cx="{_scale(a, 0, hi, x0, x1):.1f}" cy="{_scale(b, 0, hi, y0, y1):.1f}" r="3" '
                    f'fill="{COLORS["model"]}"/>' for a, b in zip(mp, my))
    return _frame("Calibration (deciles of score)", "mean predicted probability", "observed rate",
                  (0, hi), (0, hi), body, [("model", COLORS["model"])])


def lift_plot(y, p) -> str:
    order = np.argsort(-p, kind="stable")
    parts = np.array_split(order, 10)
    rates = [float(y[i].mean()) for i in parts]
    base = float(y.mean())
    hi = max(rates) * 1.15
    body = _bars(rates, [f"{i + 1}" for i in range(10)], (0, hi), COLORS["model"],
                 [f"{r / base:.1f}×" for r in rates])
    body += _polyline([0, 10], [base, base], (0, 10), (0, hi), COLORS["bayes"], "4 3")
    return _frame("Lift by score decile (1 = riskiest)", "decile", "observed rate", (0, 10), (0, hi), body,
                  [("observed rate", COLORS["model"]), (f"base rate {base:.3f}", COLORS["bayes"])])


def class_plot(rates: dict, counts: dict) -> str:
    vals = [rates.get(c) or 0.0 for c in CLASSES]
    hi = max(vals) * 1.2 or 1.0
    body = _bars(vals, [f"{c} (n={counts.get(c, 0)})" for c in CLASSES], (0, hi), COLORS["model"],
                 [f"{v:.3f}" for v in vals])
    return _frame("Observed rate by class (test)", "class", "observed rate", (0, 4), (0, hi), body)


def _true_effects(model: RiskModel, meta: dict) -> dict:
    """Synthetic models: the generator's true effect of each numeric factor, on the logit scale (≈ 1.7 × probit
    after integrating the hidden noise), other factors at the reference entity."""
    world = (meta.get("data") or {}).get("world")
    if not world:
        return {}
    params = WorldParams(b0=world["b0"], scale=world["scale"], sigma=world["sigma"])
    ref = {name: np.array([model.reference[j]]) for j, name in enumerate(MODEL_INPUTS)}
    for name in CATEGORIES:
        ref[name] = np.array([CATEGORIES[name][int(ref[name][0])]])
    out = {}
    for j, name in enumerate(MODEL_INPUTS):
        if name in CATEGORIES:
            continue
        grid = factor_grid(name)
        frame = {k: np.repeat(v, len(grid)) for k, v in ref.items()}
        frame[name] = grid
        eta = true_index(frame, params, {}, {})
        out[name] = 1.7 * eta / np.sqrt(1 + params.sigma ** 2)
    return out


def factor_plots(model: RiskModel, limits: dict, meta: dict | None = None) -> list[str]:
    if model.tables is None:
        return ["<p>Factor effects are drawn for additive models only; this model is not additive.</p>"]
    truth = _true_effects(model, meta or {})
    out = []
    for j, name in enumerate(MODEL_INPUTS):
        table = model.tables[j]
        grid = factor_grid(name)
        if name in CATEGORIES:
            labels = [category_label(name, c, "en")[:10] if name != "industry_section" else c
                      for c in CATEGORIES[name]]
            vals = list(table[1:])
            lo, hi = min(min(vals), 0) * 1.1 - 0.05, max(max(vals), 0) * 1.1 + 0.05
            body = _bars(vals, labels, (lo, hi), COLORS["model"])
            out.append(_frame(f"{name}", "category", "logit contribution", (0, len(vals)), (lo, hi), body))
            continue
        xmax = limits.get(name, float(grid[-1]))
        xmin = 0.1 if name == "subscribed_capital" else 0.0
        m = (grid <= xmax) & (grid >= xmin)
        at_ref = float(np.interp(model.reference[j], grid, table))
        xs, ys = grid[m], table[m] - at_ref  # both curves are 0 at the reference entity's value
        series = [(ys, COLORS["model"], "")]
        legend = [("learned", COLORS["model"])]
        if name in truth:
            t = truth[name] - float(np.interp(model.reference[j], grid, truth[name]))
            series.append((t[m], COLORS["bayes"], "5 2"))
            legend.append(("true (generator)", COLORS["bayes"]))
        if name == "subscribed_capital":
            xs = np.log10(np.maximum(xs, 0.01))
            xlabel = "log10 subscribed capital (¥10k)"
        else:
            xlabel = FACTOR_BY_NAME[name].label_en
        lo = min(float(v.min()) for v, _, _ in series) - 0.05
        hi = max(float(v.max()) for v, _, _ in series) + 0.05
        xlim = (float(xs.min()), float(xs.max()))
        body = "".join(_polyline(xs, v, xlim, (lo, hi), c, dash) for v, c, dash in series)
        out.append(_frame(name, xlabel, "logit effect vs reference", xlim, (lo, hi), body, legend))
    return out


def render_report(model: RiskModel, metrics: dict, meta: dict, version: str) -> str:
    ev = model.evaluation or {}
    y = np.asarray(ev.get("y", []), float)
    p = np.asarray(ev.get("p", []), float)
    bayes = np.asarray(ev.get("bayes", []), float)
    synthetic = metrics.get("synthetic", False)
    plots = []
    if len(y):
        plots = [roc_plot(y, p, bayes), calibration_plot(y, p), lift_plot(y, p),
                 class_plot(metrics.get("observed_rate_by_class", {}), metrics.get("n_test_by_class", {}))]
    limits = {"years_in_business": 30.0, "subscribed_capital": 1e5, "employee_count": 200.0,
              "annual_report_late_3y": 3.0, "penalties_3y": 5.0, "complaints_12m": 15.0, "reg_changes_24m": 8.0,
              "shared_address_count": 40.0, "linked_bad_entities": 8.0}
    effects = factor_plots(model, limits, meta)
    keys = ["auc", "bayes_auc", "base_rate", "precision_at_k", "precision_at_k_ci95", "oracle_precision_at_k",
            "visits_avoided_per_100", "relative_reduction_lawabiding_visits", "brier", "bayes_brier",
            "indicator_auc", "indicator_precision_at_k", "n_test", "k", "n_train", "chosen", "validation_auc",
            "class_shares", "class_shares_after_overrides", "target_mix", "observed_rate_by_class", "targets",
            "cutoffs", "calibration"]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(metrics.get(k), ensure_ascii=False))}"
                   f"</td></tr>" for k in keys if k in metrics)
    banner = ("<p class='warn'>SYNTHETIC DATA — every figure below comes from a simulated registry with a known "
              "ground truth (合成数据，仅用于验证方法).</p>" if synthetic else
              "<p>Trained on recorded inspection outcomes.</p>")
    weights = meta.get("indicator_weights")
    wtable = ""
    if weights:
        wtable = ("<h2>Indicator score weights (expert + entropy + CRITIC)</h2><table><tr><th>indicator</th><th>group"
                  "</th><th>expert</th><th>entropy</th><th>CRITIC</th><th>combined</th></tr>" + "".join(
                      f"<tr><td>{html.escape(w['name'])}</td><td>{html.escape(w['group'])}</td><td>{w['expert']}</td>"
                      f"<td>{w['entropy']}</td><td>{w['critic']}</td><td>{w['combined']}</td></tr>" for w in weights)
                  + "</table>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Risk model {html.escape(version)}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:1220px;margin:1em auto;padding:0 1em}}
figure{{display:inline-block;margin:4px;border:1px solid #ddd}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}} .warn{{background:#fff8c5;
padding:.5em;border:1px solid #d4a72c}}</style></head><body>
<h1>Risk model {html.escape(version)} <small>({html.escape(model.kind)})</small></h1>
{banner}
<p>Test set: the random control stratum of the latest campaign (never model-selected). k = top 10 %.
Bayes-optimal = the true probability given the observed factors (synthetic only).</p>
<h2>Performance</h2>{"".join(plots)}
<h2>Metrics</h2><table>{rows}</table>
<h2>Factor effects (logit, relative to the reference entity; synthetic models also show the true effect)</h2>
{"".join(effects)}
{wtable}
<h2>Metadata</h2><pre>{html.escape(json.dumps(meta, ensure_ascii=False, indent=2, default=str))}</pre>
</body></html>"""
