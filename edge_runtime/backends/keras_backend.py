"""Keras backend: the master model, for comparison and for machines with TensorFlow.
The only place in `edge_runtime` that imports TensorFlow, and only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.model_files.keras_file import KerasFileError, keras_file_problem, load_keras_file


class KerasBackend(Backend):
    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        super().__init__(model_path, self.sidecar_metadata(model_path))
        problem = keras_file_problem(model_path)  # Keras would call a truncated file "File not found"
        if problem:
            raise BackendError(problem)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError:
            raise self.missing_runtime("TensorFlow") from None
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # TensorFlow already started; its thread pools are fixed for this process.
        try:
            self.model = load_keras_file(model_path, checked=True)
        except KerasFileError as error:
            raise BackendError(str(error)) from None
        self._check_shapes(self.model.input_shape, int(self.model.output_shape[-1]))
        self._call = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(batch), dtype=np.float32)

    def close(self) -> None:
        self.model = None
