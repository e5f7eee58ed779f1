"""Teacher targets saved to a file: a trained network's probabilities for every training and
validation face, averaged over its test-time views, so that a student can learn from them
later, on another machine, without the teacher's weights.

A teacher of tens of millions of parameters is hundreds of megabytes with its optimizer
state; its targets for FER-2013 are under a megabyte. They are computed on the faces as they
are (not on each epoch's augmented copy, which online `--teacher` distillation sees).
A fingerprint of the training faces ties a file to the data it was computed on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edge_runtime.error_text import first_line
from edge_runtime.labels import NUM_CLASSES
from edge_runtime.outputs.atomic import atomic_path

TARGETS_FILE = "targets.npz"


class TargetsError(ValueError):
    """A targets file that cannot be used with this data; the message names it."""


def fingerprint(images: np.ndarray) -> str:
    """A short hash of the training faces (uint8, in the loader's order)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


def write_targets(path: Path, train: np.ndarray, val: np.ndarray, views: str, data_fingerprint: str) -> None:
    """Writes the probabilities (train and val) with the views and the data fingerprint, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                train=train.astype(np.float32),
                val=val.astype(np.float32),
                views=np.array(views),
                fingerprint=np.array(data_fingerprint),
            )


def load_targets(paths: list[str], data_fingerprint: str, train_count: int, val_count: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several teachers' targets for the train and val faces.

    Raises:
        TargetsError: a file that cannot be read, or was computed on other faces.
    """
    trains, vals = [], []
    for path in paths:
        try:
            with np.load(path) as saved:
                train, val, saved_fingerprint = saved["train"], saved["val"], str(saved["fingerprint"])
        except (OSError, KeyError, ValueError) as error:
            raise TargetsError(f"{path}: cannot read teacher targets ({first_line(error, 120)}); expected a {TARGETS_FILE}") from None
        if saved_fingerprint != data_fingerprint:
            raise TargetsError(f"{path}: computed on other training faces (fingerprint {saved_fingerprint}, this data {data_fingerprint})")
        if train.shape != (train_count, NUM_CLASSES) or val.shape != (val_count, NUM_CLASSES):
            raise TargetsError(
                f"{path}: holds {train.shape} train and {val.shape} val targets; expected ({train_count}, {NUM_CLASSES}) and "
                f"({val_count}, {NUM_CLASSES})"
            )
        trains.append(train)
        vals.append(val)
    return np.mean(trains, axis=0), np.mean(vals, axis=0)
