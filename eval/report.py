"""Writing an evaluation: results.json, report.md and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval import metrics as m
from eval.harness import ConfigResult, EvalResult

SUMMARY_COLUMNS = [
    *(f"hit@{k}" for k in m.HIT_KS),
    "mrr",
    "doc_recall@5",
    "em",
    "f1",
    "coverage",
    "citation",
    "abstain_unanswerable",
    "false_refusal",
    "total_p50_ms",
    "total_p95_ms",
]
TYPE_COLUMNS = [
    "n",
    "hit@1",
    "hit@5",
    "mrr",
    "em",
    "f1",
    "citation",
    "abstain_unanswerable",
    "false_refusal",
    "total_p50_ms",
]
SWEEP_COLUMNS = [
    "threshold",
    "coverage",
    "em",
    "f1",
    "f1_answered",
    "citation",
    "abstain_unanswerable",
    "false_refusal",
    "overall_f1",
]
PLOT_METRICS = ["hit@1", "hit@5", "mrr", "em", "f1", "citation", "abstain_unanswerable"]


def fmt(value: float | None, key: str = "") -> str:
    """A table cell: '—' when not measured, ms with one decimal, counts as integers."""
    if value is None:
        return "—"
    if key.endswith("_ms"):
        return f"{value:.1f}"
    if key in ("n", "errors"):
        return str(int(value))
    if key == "threshold":
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_table(results: Sequence[ConfigResult]) -> str:
    """One row per configuration, the headline metrics side by side."""
    rows = []
    for r in results:
        if r.skipped:
            rows.append([r.label, f"skipped: {r.skipped}", *[""] * (len(SUMMARY_COLUMNS))])
            continue
        best = fmt(r.best_threshold, "threshold")
        rows.append([r.label, *(fmt(r.metrics.get(c), c) for c in SUMMARY_COLUMNS), best])
    return table(["config", *SUMMARY_COLUMNS, "best thr"], rows)


def latency_table(results: Sequence[ConfigResult]) -> str:
    cols = [f"{s}_{p}_ms" for s in m.STAGES for p in ("p50", "p95")]
    rows = [[r.label, *(fmt(r.metrics.get(c), c) for c in cols)] for r in results if not r.skipped]
    return table(["config", *cols], rows)


def type_table(result: ConfigResult) -> str:
    rows = [[t, *(fmt(ms.get(c), c) for c in TYPE_COLUMNS)] for t, ms in result.by_type.items()]
    return table(["type", *TYPE_COLUMNS], rows)


def sweep_table(points: Sequence[dict], step: float = 0.05) -> str:
    every = max(1, round(step / (points[1]["threshold"] - points[0]["threshold"])))
    shown = points[::every]
    return table(SWEEP_COLUMNS, [[fmt(p[c], c) for c in SWEEP_COLUMNS] for p in shown])


def near_best(points: Sequence[dict], n: int) -> tuple[float, float, int] | None:
    """(lowest, highest, count) of the thresholds whose overall F1 is within 1/n of the best."""
    scored = [p for p in points if p["overall_f1"] is not None]
    if not scored:
        return None
    best = max(p["overall_f1"] for p in scored)
    near = [p["threshold"] for p in scored if p["overall_f1"] >= best - 1 / max(n, 1) + 1e-9]
    return min(near), max(near), len(near)


def _runs(results: Sequence[ConfigResult]) -> list[ConfigResult]:
    """One result per distinct run (threshold variants share a sweep)."""
    seen, out = set(), []
    for r in results:
        if not r.skipped and r.config.run_key not in seen and len(r.sweep) > 1:
            seen.add(r.config.run_key)
            out.append(r)
    return out


def run_label(r: ConfigResult) -> str:
    return ",".join(r.label.split(",")[:-1]) or "default"


def write_markdown(result: EvalResult, plots: dict[str, str]) -> str:
    """report.md's text."""
    parts = [
        "# Verbatim evaluation",
        "",
        f"- questions: `{result.questions_file}`",
        f"- target: {result.target}",
        f"- started: {result.started_at}, took {result.seconds:.1f} s",
        "- `thr=service`: the service's own abstention; `thr=X`: an answer stands iff its "
        "score >= X (decided offline from the recorded scores).",
        "- hit@k is reported only for k <= the configuration's top_k (— otherwise).",
    ]
    if result.warnings:
        parts += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    parts += ["", "## Comparison", "", comparison_table(result.results)]
    if "metrics" in plots:
        parts += ["", f"![metrics by configuration]({plots['metrics']})"]
    parts += ["", "## Latency (ms)", "", latency_table(result.results)]
    if "latency" in plots:
        parts += ["", f"![latency]({plots['latency']})"]
    parts += ["", "## Abstention threshold sweep", ""]
    parts.append(
        "An answer stands iff its score >= threshold. `overall_f1` scores every question "
        "(a refused unanswerable question 1, an answered one 0) and picks the best threshold."
    )
    for r in _runs(result.results):
        parts += ["", f"### {run_label(r)} (best threshold {fmt(r.best_threshold, 'threshold')})"]
        near = near_best(r.sweep, int(r.metrics.get("n") or 1))
        if near:
            parts += [
                "",
                f"Within one question of the best overall F1: thresholds {near[0]:.2f}–"
                f"{near[1]:.2f} ({near[2]} of {len(r.sweep)} grid points); on a small set "
                "these are not distinguishable.",
            ]
        parts += ["", sweep_table(r.sweep)]
    if "threshold" in plots:
        parts += ["", f"![threshold curve]({plots['threshold']})"]
    parts += ["", "## By question type"]
    for r in result.results:
        if not r.skipped:
            parts += ["", f"### {r.label}", "", type_table(r)]
    parts += ["", "## Metric definitions", "", (m.__doc__ or "").split("\n\n", 1)[-1].strip(), ""]
    return "\n".join(parts)


def write_plots(result: EvalResult, out: Path) -> dict[str, str]:
    """metrics.png, threshold.png and latency.png in ``out``; name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in result.results if not r.skipped]
    if not done:
        return {}
    plots: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(PLOT_METRICS)), 4.5))
    width = 0.8 / len(done)
    for i, r in enumerate(done):
        values = [r.metrics.get(k) or 0.0 for k in PLOT_METRICS]
        xs = [j + i * width for j in range(len(PLOT_METRICS))]
        ax.bar(xs, values, width, label=r.label)
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(PLOT_METRICS))],
        PLOT_METRICS,
        rotation=20,
        ha="right",
    )
    ax.set_ylim(0, 1.05)
    ax.set_title("Metrics by configuration")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(out / "metrics.png", dpi=110)
    plt.close(fig)
    plots["metrics"] = "metrics.png"

    runs = _runs(done)
    if runs:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
        for r in runs:
            xs = [p["threshold"] for p in r.sweep]
            for ax, key in zip(axes, ("f1", "coverage", "overall_f1"), strict=True):
                ax.plot(xs, [p[key] or 0.0 for p in r.sweep], label=run_label(r))
                ax.set_title(key)
                ax.set_xlabel("abstention threshold")
                ax.set_ylim(0, 1.05)
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "threshold.png", dpi=110)
        plt.close(fig)
        plots["threshold"] = "threshold.png"

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, stage in zip(axes, ("retrieve", "read", "total"), strict=True):
        series = {run_label(r): _times(r, stage) for r in runs or done}
        every = [t for times in series.values() for t in times]
        if not every:
            continue
        bins = np.histogram_bin_edges(every, bins=20)
        for label, times in series.items():
            if times:
                ax.hist(times, bins=bins, histtype="step", linewidth=1.5, label=label)
        ax.set_title(f"{stage} (ms)")
        ax.set_ylabel("questions")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    plots["latency"] = "latency.png"
    return plots


def _times(result: ConfigResult, stage: str) -> list[float]:
    return [
        rec["timings_ms"][stage]
        for rec in result.records
        if rec.get("timings_ms") and rec["timings_ms"].get(stage) is not None
    ]


def write_all(result: EvalResult, out: Path) -> list[Path]:
    """Write results.json, the plots and report.md into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(result.to_json(), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    plots = write_plots(result, out)
    (out / "report.md").write_text(write_markdown(result, plots), encoding="utf-8")
    return [out / "results.json", out / "report.md", *(out / p for p in plots.values())]
