"""The interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_runtime.model_files.formats import BackendInfo, backend_for_class
from edge_runtime.model_files.metadata import MetadataError, ModelMetadata, read_sidecar
from edge_runtime.preprocess import faces_to_batch


class BackendError(RuntimeError):
    """A model cannot be loaded or run; the message names the file and the fix."""


class Backend(ABC):
    """A loaded model on one runtime.

    Subclasses set `metadata` and implement `_run`, which takes a float32 batch prepared by
    the one preprocessing function and returns float32 probabilities. Quantisation to a
    model's integer input happens inside `_run`, from the model's own parameters.
    """

    # The BACKENDS row that names the class, and its name: set from the table for every class
    # a row names, so no class writes its name a second time. Classes no row names (test
    # fakes) set `name` themselves.
    info: BackendInfo | None = None
    name: str = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        row = backend_for_class(cls.__module__, cls.__name__)
        if row is not None:
            cls.info, cls.name = row, row.name

    @classmethod
    def missing_runtime(cls, needed: str) -> BackendError:
        """The error for a runtime package that is not installed: what is needed and the command that adds it."""
        return BackendError(f"The {cls.info.label} backend needs {needed}: {cls.info.install_hint}")

    def __init__(self, model_path: Path, metadata: ModelMetadata) -> None:
        self.model_path = Path(model_path)
        self.metadata = metadata

    @staticmethod
    def sidecar_metadata(model_path: Path) -> ModelMetadata:
        """The metadata in the `.json` file beside a model whose format has no room for it
        (TFLite, Keras); the sidecar's problem as a BackendError.

        Raises:
            BackendError: the sidecar is missing or does not hold valid metadata.
        """
        try:
            return read_sidecar(model_path)
        except MetadataError as error:
            raise BackendError(str(error)) from None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    def predict(self, batch: np.ndarray, flip_average: bool = False) -> np.ndarray:
        """Probabilities (N, classes) for a preprocessed float32 batch (N, H, W, C).

        Args:
            batch: model input from the one preprocessing function.
            flip_average: test-time augmentation: average each face's probabilities with those
                of its mirror image (the network was trained with flips). Both go through the
                model in one call, so it costs one batch twice the size.
        """
        if batch.shape[0] == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if flip_average:
            doubled = self._run(np.ascontiguousarray(np.concatenate([batch, batch[:, :, ::-1]]), dtype=np.float32))
            count = batch.shape[0]
            return (doubled[:count] + doubled[count:]) / 2
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))

    def predict_faces(self, faces: Sequence[np.ndarray], flip_average: bool = False) -> np.ndarray:
        """Probabilities for face crops of any size, all in one model call."""
        return self.predict(faces_to_batch(faces, self.metadata.input), flip_average)

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027 - optional: most runtimes free themselves
        """Releases the runtime's resources."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_shapes(self, input_shape: Sequence, output_classes: int | None) -> None:
        """Fails when the model file and its metadata disagree."""
        expected = tuple(self.metadata.input_shape)
        actual = tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in list(input_shape)[1:])
        if any(a is not None and a != e for a, e in zip(actual, expected)) or len(actual) != len(expected):
            raise BackendError(
                f"{self.model_path}: input shape {list(input_shape)} does not match its metadata {list(expected)}"
            )
        if output_classes is not None and output_classes > 0 and output_classes != len(self.labels):
            raise BackendError(
                f"{self.model_path}: {output_classes} outputs but its metadata lists {len(self.labels)} labels"
            )
