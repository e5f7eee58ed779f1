"""Real faces for int8 calibration and for verification.

Calibration must see the pixels the model saw in training, so faces come from FER-2013 (the
data the model was trained on, found through its run's config.json, unless the user names
another set) and pass through the training preprocessing, `gray48_to_input`. Samples are
stratified by class and seeded: a conversion repeated on the same data calibrates on the same
faces, and a rare class (disgust is 1.5% of FER-2013) is never left out of the ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.errors import ConvertError
from edge_runtime.labels import NUM_CLASSES
from edge_runtime.preprocess import InputSpec, gray48_to_input
from fer_data.fer2013 import DataError, FerData, Split, load_fer2013

CALIBRATION_SEED = 0
VERIFICATION_SEED = 1


@dataclass(frozen=True)
class FaceSet:
    """Model-ready faces drawn from one data set.

    Attributes:
        batch: float32 (N, 48, 48, 1), preprocessed like the training data.
        labels: label indices (N,).
        source: where the faces came from.
        split: the FER-2013 split they were drawn from.
    """

    batch: np.ndarray
    labels: np.ndarray
    source: str
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def training_data_path(model_path: Path) -> Path | None:
    """The data set a model was trained on, from `config.json` in the model's run folder.

    The `data` field is written as given on the edge-train command line, so a relative path may
    be relative to the directory edge-train ran in. That directory is recovered from the run's
    own `out` field when it matches the run folder; the current directory, the run folder and
    its parent are tried too. The first candidate that exists wins.

    Returns:
        The data path, or None when there is no config or none of the candidates exists.
    """
    run_dir = model_path.resolve().parent
    config_file = run_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, str) or not data:
        return None
    data_path = Path(data).expanduser()
    if data_path.is_absolute():
        return data_path if data_path.exists() else None
    candidates = []
    launch_dir = _launch_dir(run_dir, config.get("out"))
    if launch_dir is not None:
        candidates.append(launch_dir / data_path)
    candidates += [Path.cwd() / data_path, run_dir / data_path, run_dir.parent / data_path]
    found = next((c for c in candidates if c.exists()), None)
    return None if found is None else found.resolve()


def _launch_dir(run_dir: Path, out: object) -> Path | None:
    """The directory edge-train ran in, when the run's `out` (as typed) ends the run folder's path."""
    if not isinstance(out, str) or not out or Path(out).is_absolute():
        return None
    parts = Path(out).parts
    if tuple(run_dir.parts[-len(parts) :]) != parts or len(run_dir.parts) <= len(parts):
        return None
    return run_dir.parents[len(parts) - 1]


def load_data(path: Path, role: str) -> FerData:
    """Loads FER-2013 (folder layout or CSV) for `role` ("calibration" or "verification").

    Raises:
        ConvertError: a missing, unreadable or empty data set, naming the option to fix.
    """
    try:
        return load_fer2013(path)
    except DataError as error:
        raise ConvertError(f"{role} data: {error}") from None
    except OSError as error:
        raise ConvertError(f"{role} data: {path}: cannot read ({error.strerror})") from None


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded sample of `size` faces with the class proportions of `labels`.

    Every class present keeps at least one face. `size` <= 0 or >= len(labels) returns all
    indices (in order).
    """
    total = int(labels.shape[0])
    if size <= 0 or size >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    # Largest-remainder rounding keeps the total at `size` while following the class shares.
    quotas = counts * size / total
    take = np.floor(quotas).astype(np.int64)
    take = np.where((counts > 0) & (take == 0), 1, take)
    remainder_order = np.argsort(-(quotas - np.floor(quotas)), kind="stable")
    for index in remainder_order:
        if take.sum() >= size:
            break
        if take[index] < counts[index]:
            take[index] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=int(take[c]), replace=False) for c in range(NUM_CLASSES) if take[c]]
    return np.sort(np.concatenate(chosen))


def calibration_faces(data: FerData, spec: InputSpec, size: int) -> FaceSet:
    """A stratified, seeded sample of the train split, preprocessed like the training data.

    Raises:
        ConvertError: when the data set has no train faces.
    """
    split = data.split("train")
    if len(split) == 0:
        where = "Training rows" if data.layout == "csv" else "images in train/<class>/"
        raise ConvertError(f"calibration data: {data.source}: no training faces; expected {where}")
    return _sample(split, spec, size, CALIBRATION_SEED, data.source, "train")


def verification_faces(data: FerData, spec: InputSpec, size: int) -> FaceSet:
    """A stratified, seeded sample of the validation split (FER-2013 PublicTest); all of it when `size` is 0.

    Raises:
        ConvertError: when the data set has no validation faces.
    """
    split = data.split("val")
    if len(split) == 0:
        where = "PublicTest rows" if data.layout == "csv" else "PublicTest_* images in test/<class>/"
        raise ConvertError(f"verification data: {data.source}: no validation faces; expected {where}, or pass --verify-data or --no-verify")
    return _sample(split, spec, size, VERIFICATION_SEED, data.source, "val")


def _sample(split: Split, spec: InputSpec, size: int, seed: int, source: str, name: str) -> FaceSet:
    indices = stratified_indices(split.labels, size, seed)
    return FaceSet(gray48_to_input(split.images[indices], spec), split.labels[indices], source, name)
