"""The faces a benchmark feeds a model.

Timed runs rotate through a pool of distinct faces, so no run reuses the input (or the output
buffer contents) of the one before it and no cache flatters the numbers. The pool holds real
FER-2013 faces when `--data` is given, else seeded random faces (a CNN's cost does not depend
on what the pixels show).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.outputs.atomic import atomic_path
from edge_runtime.preprocess import FACE_SIZE
from fer_data.fer2013 import Split, load_fer2013

DEFAULT_POOL_SIZE = 256


def random_faces(count: int, seed: int = 0, size: int = FACE_SIZE) -> np.ndarray:
    """`count` seeded uniform-noise uint8 faces (count, size, size)."""
    return np.random.default_rng(seed).integers(0, 256, (count, size, size), dtype=np.uint8)


def pool_from_split(split: Split, count: int, seed: int = 0) -> np.ndarray:
    """`count` faces drawn from a split without replacement (cycling when it is smaller)."""
    if len(split) == 0:
        raise ValueError("cannot draw faces from an empty split")
    order = np.random.default_rng(seed).permutation(len(split))
    return split.images[np.resize(order, count)]


def load_eval_split(data: str | Path, split: str) -> Split:
    """The evaluation split of a FER-2013 CSV or folder (`test` means all of test/ in the folder layout).

    Raises:
        DataError: bad data, or an empty split.
    """
    from fer_data.fer2013 import DataError

    fer = load_fer2013(data)
    chosen = fer.evaluation_split(split)
    if len(chosen) == 0:
        raise DataError(f"{data}: the {split} split is empty; choose another --split")
    return chosen


def write_inputs(path: Path, pool: np.ndarray, evaluation: Split | None = None) -> Path:
    """Saves the face pool (and the faces to score accuracy on) for a benchmark subprocess."""
    arrays = {"pool": pool}
    if evaluation is not None:
        arrays["eval_images"] = evaluation.images
        arrays["eval_labels"] = evaluation.labels
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def read_inputs(path: str | Path) -> tuple[np.ndarray, Split | None]:
    """Reads what `write_inputs` saved."""
    with np.load(path) as archive:
        pool = archive["pool"]
        evaluation = Split(archive["eval_images"], archive["eval_labels"]) if "eval_images" in archive else None
    return pool, evaluation
