"""Classification metrics in plain numpy, shared by training reports, export checks and
`edge-bench accuracy`, so every tool computes "accuracy" the same way."""

from __future__ import annotations

import numpy as np

from edge_runtime.labels import LABELS, NUM_CLASSES


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def expected_calibration_error(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 15) -> tuple[float, list[dict]]:
    """ECE over equal-width confidence bins, and the per-bin table for a reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, ece = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        count = int(in_bin.sum())
        if count:
            accuracy, mean_conf = float(correct[in_bin].mean()), float(confidence[in_bin].mean())
            ece += count / len(y_true) * abs(accuracy - mean_conf)
        else:
            accuracy = mean_conf = None
        table.append({"low": float(low), "high": float(high), "count": count, "accuracy": accuracy, "confidence": mean_conf})
    return float(ece), table


def classification_report(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix and ECE.

    Args:
        y_true: label indices (N,).
        probabilities: (N, NUM_CLASSES) model outputs.
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred)
    per_class = {}
    f1_scores = []
    for index, label in enumerate(LABELS):
        true_positive = matrix[index, index]
        predicted, actual = matrix[:, index].sum(), matrix[index, :].sum()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1_scores.append(f1)
        per_class[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(actual)}
    ece, reliability = expected_calibration_error(probabilities, y_true)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_f1": float(np.mean(f1_scores)),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "labels": list(LABELS),
        "ece": ece,
        "reliability": reliability,
    }
