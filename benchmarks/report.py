"""Turning rows into what people read: a console table, a Markdown table, and the JSON file.

Each command names its columns once (COLUMNS); the console and the Markdown table both read
them, so the README table and the terminal never disagree.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks.rows import OK
from edge_runtime.outputs.atomic import write_json_atomic, write_text_atomic

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Column:
    """One table column: the row key, its header, and a format spec for numbers."""

    key: str
    header: str
    spec: str = ""

    def cell(self, row: dict) -> str:
        value = row.get(self.key)
        if value is None or value == "":
            return "-"
        if isinstance(value, float) and self.spec:
            return format(value, self.spec)
        return str(value)


COLUMNS: dict[str, tuple[Column, ...]] = {
    "models": (
        Column("name", "configuration"),
        Column("status", "status"),
        Column("size_mb", "size MB", ".2f"),
        Column("load_ms", "load ms", ".0f"),
        Column("first_ms", "first ms", ".2f"),
        Column("p50_ms", "p50 ms", ".3f"),
        Column("p90_ms", "p90 ms", ".3f"),
        Column("p99_ms", "p99 ms", ".3f"),
        Column("min_ms", "min ms", ".3f"),
        Column("std_ms", "std ms", ".3f"),
        Column("throughput_b1", "faces/s b1", ".0f"),
        Column("throughput_batch", "faces/s bN", ".0f"),
        Column("peak_rss_mb", "peak MB", ".0f"),
        Column("accuracy", "accuracy", ".4f"),
    ),
    "pipeline": (
        Column("name", "configuration"),
        Column("status", "status"),
        Column("fps", "FPS", ".1f"),
        Column("speedup", "x seed", ".1f"),
        Column("faces_per_frame", "faces/frame", ".2f"),
        Column("read_p50_ms", "read p50", ".2f"),
        Column("read_p95_ms", "read p95", ".2f"),
        Column("detect_p50_ms", "detect p50", ".2f"),
        Column("detect_p95_ms", "detect p95", ".2f"),
        Column("preprocess_p50_ms", "prep p50", ".2f"),
        Column("preprocess_p95_ms", "prep p95", ".2f"),
        Column("infer_p50_ms", "infer p50", ".2f"),
        Column("infer_p95_ms", "infer p95", ".2f"),
        Column("draw_p50_ms", "draw p50", ".2f"),
        Column("draw_p95_ms", "draw p95", ".2f"),
        Column("peak_rss_mb", "peak MB", ".0f"),
    ),
    "accuracy": (
        Column("name", "model"),
        Column("status", "status"),
        Column("n", "faces"),
        Column("accuracy", "top-1", ".4f"),
        Column("macro_f1", "macro-F1", ".4f"),
        Column("ece", "ECE", ".4f"),
    ),
    "streams": (
        Column("name", "run"),
        Column("status", "status"),
        Column("sources", "sources"),
        Column("fps", "FPS (all)", ".1f"),
        Column("fps_per_source", "FPS per source", ".1f"),
        Column("dropped_share", "dropped", ".2%"),
        Column("realtime", "real time"),
    ),
    "scene": (
        Column("name", "model"),
        Column("status", "status"),
        Column("faces", "faces"),
        Column("recall", "recall", ".3f"),
        Column("recall_iou_only", "recall (IoU only)", ".3f"),
        Column("label_accuracy", "label acc (detected)", ".4f"),
        Column("end_to_end_accuracy", "end-to-end acc", ".4f"),
        Column("crop_accuracy", "crop acc (all)", ".4f"),
        Column("crop_accuracy_detected", "crop acc (detected)", ".4f"),
        Column("false_positives_per_frame", "false/frame", ".3f"),
        Column("stray_detections_per_frame", "stray/frame", ".3f"),
        Column("fps", "FPS", ".1f"),
    ),
}


# A rule under the header and nothing else: the console table reads like the Markdown one and
# survives being piped into a file or a terminal without box-drawing characters.
HEADER_RULE = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)


def text_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """An aligned plain-text table (names left, numbers right), then one line per row that was
    not measured, saying why."""
    table = Table(box=HEADER_RULE, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="")
    for i, column in enumerate(columns):
        table.add_column(column.header, justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(column.cell(row)) for column in columns))
    # As wide as the table needs, never wrapped to the terminal: the output is also read from files.
    console = Console(file=io.StringIO(), width=100_000, color_system=None, markup=False, highlight=False, emoji=False)
    console.print(table)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    return "\n".join(lines + notes(rows))


def notes(rows: Sequence[dict]) -> list[str]:
    return [f"{row['name']}: {row['status']}: {row.get('reason') or row.get('error') or ''}" for row in rows if row.get("status") != OK]


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A GitHub Markdown table (numbers right-aligned), with the not-measured rows listed below."""
    header = "| " + " | ".join(c.header for c in columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(c.cell(row).replace("|", "\\|") for c in columns) + " |" for row in rows]
    extra = [f"- `{line}`" for line in notes(rows)]
    return "\n".join([header, rule, *body] + ([""] + extra if extra else [])) + "\n"


def floor_lines(floor: dict | None) -> list[str]:
    """The compute-floor paragraph printed under the models table."""
    if not floor:
        return []
    if "error" in floor and "macs" not in floor:
        return [f"Compute floor: not available ({floor['error']})"]
    lines = [f"Compute floor: {floor['macs'] / 1e6:.1f} M multiply-adds per face ({floor['mac_method']}; {Path(floor['model']).name})",
             f"  CPU peak: {floor['peak_method']}"]
    for entry in floor["per_threads"]:
        if not entry.get("peak_gflops"):
            lines.append(f"  {entry['threads']} thread(s): peak not measured ({entry.get('error', 'no result')})")
            continue
        peak, floor_time = entry["peak_gflops"], entry["floor_ms"]
        libraries = ", ".join(f"{name} {value:.1f}" for name, value in (entry.get("peak_by_library") or {}).items())
        parts = [f"  {entry['threads']} thread(s): peak {peak:.1f} GFLOP/s{f' ({libraries})' if libraries else ''}"
                 f" -> fp32 floor {floor_time:.3f} ms per face"]
        for key, what in (("best_fp32", "best fp32"), ("best", "best overall")):
            if entry.get(f"{key}_p50_ms"):
                ratio = f", {entry[f'{key}_over_floor']:.2f}x the floor" if entry.get(f"{key}_over_floor") else ""
                parts.append(f"{what} p50 {entry[f'{key}_p50_ms']:.3f} ms ({entry[f'{key}_row']}{ratio})")
        lines.append("; ".join(parts))
    lines.append("  (int8 and dynamic-range rows can beat the fp32 floor: integer dot-product instructions outrun float FMAs)")
    return lines


def render_text(report: dict) -> str:
    """Everything the console shows for a report."""
    command = report["command"]
    parts = [text_table(report["rows"], COLUMNS[command])]
    if command == "models":
        parts += floor_lines(report.get("compute_floor"))
    if command == "accuracy" and report.get("per_class"):
        parts.append(per_class_table(report))
    return "\n".join(parts)


def render_markdown(report: dict, command_line: str = "") -> str:
    """The Markdown for the README: the command that made it, the machine, the table."""
    env = report.get("environment", {})
    cpu = env.get("cpu", {})
    intro = []
    if command_line:
        intro.append(f"`{command_line}`\n")
    if env:
        intro.append(f"Machine: {cpu.get('model', '?')}, {env.get('usable_cores', '?')} cores, {env.get('os', '?')}; "
                     f"load average at start {env.get('load_average')}.\n")
    body = markdown_table(report["rows"], COLUMNS[report["command"]])
    tail = []
    if report["command"] == "models" and report.get("compute_floor"):
        tail = ["", *[line.strip() + "  " for line in floor_lines(report["compute_floor"])]]
    if report["command"] == "accuracy" and report.get("per_class"):
        tail = ["", "```", per_class_table(report), "```"]
    return "\n".join(intro + [body] + tail) + "\n"


def per_class_table(report: dict) -> str:
    """Per-class precision/recall/F1/support and the confusion matrix (rows true, columns predicted)."""
    labels = report["labels"]
    lines = ["class      precision  recall     f1  support"]
    for label in labels:
        c = report["per_class"][label]
        lines.append(f"{label:<10} {c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>6.4f} {c['support']:>8d}")
    lines.append("")
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * 10 + "".join(f"{label[:7]:>8}" for label in labels))
    for label, counts in zip(labels, report["confusion_matrix"]):
        lines.append(f"{label:<10}" + "".join(f"{v:>8d}" for v in counts))
    return "\n".join(lines)


def write_json(path: Path, report: dict) -> None:
    write_json_atomic(path, {"schema_version": SCHEMA_VERSION, **report})


def write_markdown(path: Path, report: dict, command_line: str = "") -> None:
    write_text_atomic(path, render_markdown(report, command_line))
