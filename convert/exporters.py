"""The exporters, keyed on the names of `edge_runtime.model_files.formats.FORMATS`, and how the CLI's
`--format/--quantize/--precision` words pick rows of that table."""

from __future__ import annotations

from convert.job import Exporter
from convert.onnx_export import export_onnx_fp32, export_onnx_int8
from convert.tflite_export import export_tflite_dynamic, export_tflite_fp16, export_tflite_fp32, export_tflite_int8
from edge_runtime.model_files.formats import FORMATS, ModelFormat, get_backend, get_format

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
EXPORTABLE_ROWS: tuple[ModelFormat, ...] = tuple(get_format(name) for name in EXPORTABLE)
# The family words of the CLI (`--format tflite` / `--format onnx`): the backends of the exports.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(row.backend for row in EXPORTABLE_ROWS))
# What a family word means alone, and with `--quantize` (full integer).
DEFAULT_PRECISION, QUANTIZED_PRECISION = "fp32", "int8"
# The `--precision` words: the other precisions some family is exported in.
PRECISION_CHOICES: tuple[str, ...] = tuple(
    dict.fromkeys(row.precision for row in EXPORTABLE_ROWS if row.precision not in (DEFAULT_PRECISION, QUANTIZED_PRECISION))
)


def needs_calibration(row: ModelFormat) -> bool:
    """Full-integer formats measure activation ranges on real faces; the others need none."""
    return row.precision == QUANTIZED_PRECISION


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


def family_variant(family: str, quantize: bool = False, precision: str | None = None) -> str:
    """The format a family word stands for: its DEFAULT_PRECISION row, its QUANTIZED_PRECISION
    row with `quantize`, or its `precision` row.

    Raises:
        ValueError: a precision the family is not exported in (one line, for a usage error).
    """
    wanted = QUANTIZED_PRECISION if quantize else precision or DEFAULT_PRECISION
    rows = [row for row in EXPORTABLE_ROWS if row.backend == family]
    for row in rows:
        if row.precision == wanted:
            return row.name
    offered = [p for p in (row.precision for row in rows) if p != QUANTIZED_PRECISION]
    quantized = f" and --quantize ({QUANTIZED_PRECISION})" if any(row.precision == QUANTIZED_PRECISION for row in rows) else ""
    owners = " or ".join(get_backend(row.backend).label for row in EXPORTABLE_ROWS if row.precision == wanted)
    raise ValueError(f"--precision {wanted} is a {owners} variant; {get_backend(family).label} has {', '.join(offered)}{quantized}")


def select_formats(words: list[str], quantize: bool = False, precision: str | None = None) -> list[str]:
    """Translates CLI words into format names.

    A family word (`tflite`, `onnx`) is its fp32 row, its int8 row with `quantize`, or its
    `precision` row (see `family_variant`); `all` is every exportable format; a format name
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
        elif word in FAMILIES:
            names.append(family_variant(word, quantize, precision))
        else:
            if quantize or precision:
                raise ValueError(f"--format {word} names one variant; it takes no --quantize or --precision")
            names.append(word)
    return [row.name for row in export_rows(names)]
