"""The exporters, keyed on the names of `edge_runtime.formats.FORMATS`, and how the CLI's
`--format/--quantize/--precision` words pick rows of that table."""

from __future__ import annotations

from convert.job import Exporter
from convert.onnx_export import export_onnx_fp32, export_onnx_int8
from convert.tflite_export import export_tflite_dynamic, export_tflite_fp16, export_tflite_fp32, export_tflite_int8
from edge_runtime.formats import FORMATS, ModelFormat, get_format

EXPORTERS: dict[str, Exporter] = {
    "tflite-fp32": export_tflite_fp32,
    "tflite-fp16": export_tflite_fp16,
    "tflite-dynamic": export_tflite_dynamic,
    "tflite-int8": export_tflite_int8,
    "onnx-fp32": export_onnx_fp32,
    "onnx-int8": export_onnx_int8,
}

# The formats `--format all` writes, in table order.
EXPORTABLE: tuple[str, ...] = tuple(row.name for row in FORMATS if row.name in EXPORTERS)
# The family words of the CLI: `--format tflite` / `--format onnx`.
FAMILIES: tuple[str, ...] = ("tflite", "onnx")


def needs_calibration(row: ModelFormat) -> bool:
    """Full-integer formats measure activation ranges on real faces; the others need none."""
    return row.precision == "int8"


def export_rows(names: list[str] | tuple[str, ...]) -> list[ModelFormat]:
    """FORMATS rows for exportable format names, duplicates dropped, order kept.

    Raises:
        ValueError: an unknown name, or one (such as "keras") that has no exporter.
    """
    rows: list[ModelFormat] = []
    for name in names:
        row = get_format(name)
        if row.name not in EXPORTERS:
            raise ValueError(f"Format '{name}' is the source format, not an export. Choose one of: {', '.join(EXPORTABLE)}.")
        if row not in rows:
            rows.append(row)
    return rows


def select_formats(words: list[str], quantize: bool = False, precision: str | None = None) -> list[str]:
    """Translates CLI words into format names.

    `tflite` is tflite-fp32, or tflite-int8 with `quantize`, or tflite-<precision>; `onnx` is
    onnx-fp32 or onnx-int8 with `quantize`; `all` is every exportable format; a format name
    stands for itself.

    Raises:
        ValueError: `quantize` together with `precision`, or a modifier that the chosen
            formats do not take (one line, for a usage error).
    """
    if quantize and precision:
        raise ValueError("--quantize (full int8) and --precision choose different variants; give one of them")
    names: list[str] = []
    for word in words:
        if word == "all":
            if quantize or precision:
                raise ValueError("--format all writes every variant; it takes no --quantize or --precision")
            names += EXPORTABLE
        elif word == "tflite":
            names.append("tflite-int8" if quantize else f"tflite-{precision or 'fp32'}")
        elif word == "onnx":
            if precision:
                raise ValueError(f"--precision {precision} is a TFLite variant; ONNX has fp32 and --quantize (int8)")
            names.append("onnx-int8" if quantize else "onnx-fp32")
        else:
            if quantize or precision:
                raise ValueError(f"--format {word} names one variant; it takes no --quantize or --precision")
            names.append(word)
    return [row.name for row in export_rows(names)]
