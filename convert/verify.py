"""Proof that an export computes what the Keras model computes.

Each exported file is opened through the runtime that will run it at the edge
(`edge_runtime.backends.load_backend`: LiteRT or ONNX Runtime, reading the file's own
metadata) and compared with Keras on the same preprocessed faces.

Pass criteria, by precision (the default thresholds: PARITY_THRESHOLDS):
    fp32              max |p_export - p_keras| <= max_diff: a float export must be the same
                      function up to float rounding.
    fp16, dynamic     top-1 agreement >= min_agreement, like int8: half-precision or int8
                      weights move probabilities by about 1e-3, which no single max-difference
                      threshold separates from a real fault, while a wrong graph or wrong input
                      scaling drops agreement far below min_agreement.
    int8              top-1 agreement >= min_agreement.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.calibration import FaceSet
from convert.errors import ConvertError
from convert.quiet import native_stderr_silenced
from edge_runtime.backends import BackendError, load_backend
from edge_runtime.labels import NUM_CLASSES
from edge_runtime.model_files.formats import ModelFormat, get_backend
from fer_data import prediction
from fer_data.metrics import classification_report

PREDICT_BATCH = 256


@dataclass(frozen=True)
class Thresholds:
    """Pass thresholds: `max_diff` for fp32 exports, `min_agreement` for all others."""

    max_diff: float
    min_agreement: float


# How close an export must stay to Keras, unless the caller says otherwise: the one place these
# figures are written (edge-convert's defaults, `convert_model`'s and the tests read them).
PARITY_THRESHOLDS = Thresholds(max_diff=1e-4, min_agreement=0.97)


def judged_by_max_diff(precision: str) -> bool:
    """True for the precision whose exports must match Keras up to float rounding (fp32); the
    others are judged by top-1 agreement."""
    return precision == "fp32"


def predict_in_batches(predict, batch: np.ndarray) -> np.ndarray:
    """Runs `predict` over `batch` PREDICT_BATCH faces at a time, so memory stays flat on large verification sets."""
    return prediction.predict_in_batches(predict, batch, PREDICT_BATCH, NUM_CLASSES)


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> dict:
    """Agreement and probability differences of `candidate` against `reference`, and both
    accuracies where `labels` are known."""
    difference = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    stats = {
        "n": int(reference.shape[0]),
        "agreement": float(np.mean(candidate.argmax(1) == reference.argmax(1))),
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
    }
    if labels is not None:
        keras_accuracy = classification_report(labels, reference)["accuracy"]
        export_report = classification_report(labels, candidate)
        stats.update(
            keras_accuracy=keras_accuracy,
            export_accuracy=export_report["accuracy"],
            accuracy_delta=export_report["accuracy"] - keras_accuracy,
            export_macro_f1=export_report["macro_f1"],
        )
    return stats


def judge(precision: str, stats: dict, thresholds: Thresholds) -> tuple[bool, str, dict]:
    """Applies the criterion for `precision` (see the module docstring).

    Returns:
        (passed, one-line reason, the criterion as recorded in the report).
    """
    if judged_by_max_diff(precision):
        criterion = {"metric": "max_abs_diff", "max": thresholds.max_diff}
        passed = stats["max_abs_diff"] <= thresholds.max_diff
        verdict = "<=" if passed else ">"
        reason = f"max |difference| {stats['max_abs_diff']:.2e} {verdict} {thresholds.max_diff:.0e}"
    else:
        criterion = {"metric": "agreement", "min": thresholds.min_agreement}
        passed = stats["agreement"] >= thresholds.min_agreement
        verdict = ">=" if passed else "<"
        reason = f"top-1 agreement {stats['agreement']:.2%} {verdict} {thresholds.min_agreement:.0%}"
    return passed, reason, criterion


def verify_export(path: Path, row: ModelFormat, faces: FaceSet, keras_probabilities: np.ndarray, thresholds: Thresholds) -> dict:
    """Runs the exported file in its own runtime and compares it with Keras.

    Returns:
        The verification part of the report: data, runtime, statistics, criterion, verdict.

    Raises:
        ConvertError: when the runtime cannot load or run the file.
    """
    try:
        with native_stderr_silenced(), load_backend(path, backend=row.backend) as backend:
            probabilities = predict_in_batches(backend.predict, faces.batch)
            runtime = _runtime_name(backend, row.backend)
    except BackendError as error:
        raise ConvertError(f"{row.name}: the exported file does not run: {error}") from None
    stats = compare(keras_probabilities, probabilities, faces.labels)
    passed, reason, criterion = judge(row.precision, stats, thresholds)
    return {
        "runtime": runtime,
        "data": faces.source,
        "split": faces.split,
        **stats,
        "criterion": criterion,
        "passed": passed,
        "reason": reason,
    }


def _runtime_name(backend, backend_name: str) -> str:
    """The package that ran the file, with its version ("ai_edge_litert 2.3.0", "onnxruntime 1.32.0")."""
    # A backend that can run on several packages says which one it loaded; else the table's only one.
    module = getattr(backend, "runtime", None) or get_backend(backend_name).runtime_packages[0]
    try:
        return f"{module} {importlib.metadata.version(module.replace('_', '-'))}"
    except importlib.metadata.PackageNotFoundError:
        return module


def format_table(rows: list[dict]) -> str:
    """A fixed-width table of export results (one dict per export, as in `ExportResult.summary`)."""
    headers = ("format", "file", "size", "agree", "max diff", "mean diff", "keras acc", "export acc", "result")
    lines = [headers]
    for row in rows:
        verification = row.get("verification")
        if verification is None:
            cells = ("-",) * 5 + ("not verified",)
        else:
            cells = (
                f"{verification['agreement']:.2%}",
                f"{verification['max_abs_diff']:.2e}",
                f"{verification['mean_abs_diff']:.2e}",
                _percent(verification.get("keras_accuracy")),
                _percent(verification.get("export_accuracy")),
                "ok" if verification["passed"] else f"FAILED: {verification['reason']}",
            )
        lines.append((row["format"], row["file"], _size(row["size_bytes"]), *cells))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(headers) - 1)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + str(line[-1]) for line in lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.2f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"
