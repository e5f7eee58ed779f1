"""Predicting a large array of faces a slice at a time, so memory stays flat (training-time
evaluation, export verification and the accuracy benchmarks all do it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def predict_in_batches(predict: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, batch_size: int, classes: int) -> np.ndarray:
    """Runs `predict` on consecutive slices of `faces` and stacks the results.

    Args:
        predict: maps a slice of faces to an (n, classes) array of probabilities.
        faces: the faces (anything numpy can slice along the first axis).
        batch_size: faces per call.
        classes: width of the result when `faces` is empty.

    Returns:
        float32 probabilities, one row per face.
    """
    chunks = [np.asarray(predict(faces[start : start + batch_size]), np.float32) for start in range(0, len(faces), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, classes), np.float32)
