"""`edge-bench accuracy`: one model file, through the runtime's own backend, on a FER-2013 split.

The faces go through `Backend.predict_faces`, the runtime's one preprocessing function and its
int8 (de)quantisation included, so the figure is what `edge-run` users get from that file
(on the data set's own crops; `edge-bench scene` measures faces found by the detector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.environment import environment
from benchmarks.inputs import load_eval_split
from benchmarks.rows import ok_row
from edge_runtime.backends import BackendError, load_backend
from edge_runtime.labels import LABELS
from edge_runtime.model_files.bundled import resolve_model
from fer_data.metrics import classification_report
from fer_data.prediction import predict_in_batches

CHUNK = 256


@dataclass(frozen=True)
class AccuracyConfig:
    """Settings of `edge-bench accuracy`.

    Attributes:
        data: FER-2013 folder or CSV.
        model: model file; None for the bundled default model on its default backend.
        backend: "auto" (by suffix) or a BACKENDS name.
        split: "val" (PublicTest), "test" (PrivateTest; in the folder layout all of test/) or "train".
        threads: inference threads.
        flip_average: average each face's probabilities with its mirror image's.
    """

    data: Path
    model: Path | None = None
    backend: str = "auto"
    split: str = "test"
    threads: int | None = None
    flip_average: bool = True

    def settings(self) -> dict:
        return {"data": str(self.data), "model": str(self.model) if self.model else None, "backend": self.backend,
                "split": self.split, "threads": self.threads, "flip_average": self.flip_average}


def align_to_labels(probabilities: np.ndarray, model_labels: tuple[str, ...], where: str) -> np.ndarray:
    """Reorders a model's output columns into LABELS order (metrics index by LABELS).

    Raises:
        BackendError: the model's labels are not the project's labels.
    """
    if tuple(model_labels) == LABELS:
        return probabilities
    if sorted(model_labels) != sorted(LABELS):
        raise BackendError(f"{where}: its labels {list(model_labels)} are not {list(LABELS)}; it cannot be scored on FER-2013")
    return probabilities[:, [list(model_labels).index(label) for label in LABELS]]


def predict_split(backend, images: np.ndarray, flip_average: bool = False) -> np.ndarray:
    """Probabilities for every face, CHUNK faces per call."""
    return predict_in_batches(lambda faces: backend.predict_faces(list(faces), flip_average), images, CHUNK, len(backend.labels))


def run_accuracy(config: AccuracyConfig, load=load_backend) -> dict:
    """Scores the model; returns the report (top-level accuracy, n, macro_f1, per_class, confusion matrix).

    Raises:
        DataError: bad data or an empty split.
        BackendError: the model cannot be loaded or does not fit the data.
    """
    split = load_eval_split(config.data, config.split)
    path, backend_name = resolve_model(config.model, config.backend)
    with load(path, backend_name, threads=config.threads) as backend:
        probabilities = align_to_labels(predict_split(backend, split.images, config.flip_average), backend.labels, str(path))
        used = backend.name or backend_name
        fmt = backend.metadata.format
    report = classification_report(split.labels, probabilities)
    row = ok_row(f"{path.name} ({used})", model=str(path), backend=used, format=fmt, split=config.split,
                 n=report["n"], accuracy=report["accuracy"], macro_f1=report["macro_f1"], ece=report["ece"])
    settings = config.settings() | {"model": str(path), "backend": used}
    return {"command": "accuracy", "environment": environment(), "settings": settings, "rows": [row], **report}
