"""PNG charts of a report: batch-1 latency per format and thread count (`models`), FPS per
pipeline configuration (`pipeline`), the confusion matrix (`accuracy`), and recall and
accuracies per model (`scene`). matplotlib comes with the `train` extra only, so it is imported
here, when a chart is asked for."""

from __future__ import annotations

from pathlib import Path

from benchmarks.rows import OK, module_available
from edge_runtime.outputs.atomic import atomic_path

MATPLOTLIB_HINT = "the --plot option needs matplotlib: pip install matplotlib (the [train] extra has it)"


class PlotError(RuntimeError):
    """A chart cannot be drawn; the message says why."""


def check_plotting() -> None:
    """Raises PlotError (before any benchmark runs) when matplotlib is not installed."""
    if not module_available("matplotlib"):
        raise PlotError(MATPLOTLIB_HINT)


def write_plot(path: Path, report: dict) -> None:
    """Draws the chart for `report["command"]` into a PNG at `path` (written atomically)."""
    check_plotting()
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    drawers = {"models": _models, "pipeline": _pipeline, "accuracy": _accuracy, "scene": _scene}
    figure = drawers[report["command"]](plt, report)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=120, format="png")
    plt.close(figure)


def _ok(report: dict) -> list[dict]:
    return [row for row in report["rows"] if row.get("status") == OK]


def _models(plt, report: dict):
    rows = _ok(report)
    configs = list(dict.fromkeys(f"{r.get('format')}/{r.get('backend')}" for r in rows))
    threads = sorted({r["threads"] for r in rows})
    figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(configs) + 2), 4.5))
    width = 0.8 / max(1, len(threads))
    for position, count in enumerate(threads):
        values = {f"{r.get('format')}/{r.get('backend')}": r["p50_ms"] for r in rows if r["threads"] == count}
        xs = [i + position * width for i in range(len(configs))]
        axis.bar(xs, [values.get(c, 0.0) for c in configs], width, label=f"{count} thread(s)")
    axis.set_xticks([i + width * (len(threads) - 1) / 2 for i in range(len(configs))], configs, rotation=30, ha="right")
    axis.set_ylabel("batch-1 latency, p50 (ms)")
    axis.set_yscale("log")
    axis.set_title("Latency per format and thread count")
    axis.legend()
    return figure


def _pipeline(plt, report: dict):
    rows = _ok(report)
    figure, axis = plt.subplots(figsize=(8, max(3, 0.4 * len(rows) + 1.5)))
    names = [r["name"] for r in rows]
    colors = ["tab:red" if r["name"] == "seed-style" else "tab:blue" for r in rows]
    axis.barh(names, [r["fps"] for r in rows], color=colors)
    for y, row in enumerate(rows):
        label = f"{row['fps']:.1f}" + (f"  ({row['speedup']:.1f}x)" if row.get("speedup") and row["name"] != "seed-style" else "")
        axis.text(row["fps"], y, " " + label, va="center", fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("frames per second")
    axis.set_title("End-to-end FPS per pipeline configuration")
    return figure


def _accuracy(plt, report: dict):
    """Confusion matrix beside the reliability diagram (accuracy against confidence per bin)."""
    labels, matrix = report["labels"], report["confusion_matrix"]
    figure, (axis, reliability) = plt.subplots(1, 2, figsize=(12, 5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    for i, counts in enumerate(matrix):
        for j, value in enumerate(counts):
            axis.text(j, i, str(value), ha="center", va="center", fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"top-1 {report['accuracy']:.4f} on {report['n']} faces")
    bins = [b for b in report.get("reliability", []) if b["count"]]
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    reliability.bar(centers, [b["accuracy"] for b in bins], width=width * 0.9, label="accuracy", alpha=0.8)
    reliability.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    reliability.set_xlim(0, 1)
    reliability.set_ylim(0, 1)
    reliability.set_xlabel("confidence (top probability)")
    reliability.set_ylabel("accuracy")
    reliability.set_title(f"reliability, ECE {report.get('ece', float('nan')):.3f}")
    reliability.legend(loc="upper left")
    figure.tight_layout()
    return figure


def _scene(plt, report: dict):
    rows = _ok(report)
    keys = ("recall", "label_accuracy", "end_to_end_accuracy", "crop_accuracy_detected")
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(rows))
    for position, row in enumerate(rows):
        axis.bar([i + position * width for i in range(len(keys))], [row[k] for k in keys], width, label=row["name"])
    axis.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(keys))], keys)
    axis.set_ylim(0, 1)
    axis.set_title("Scene: detection and accuracy")
    axis.legend(fontsize=8)
    return figure
