"""Keras backend: the master model, for comparison and for machines with TensorFlow.
The only place in `edge_runtime` that imports TensorFlow, and only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.errors import first_line
from edge_runtime.keras_file import keras_file_problem
from edge_runtime.metadata import MetadataError, read_sidecar


class KerasBackend(Backend):
    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        try:
            metadata = read_sidecar(model_path)
        except MetadataError as error:
            raise BackendError(str(error)) from None
        super().__init__(model_path, metadata)
        problem = keras_file_problem(model_path)  # Keras would call a truncated file "File not found"
        if problem:
            raise BackendError(problem)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import keras
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
            self.model = keras.models.load_model(model_path, compile=False)
        except Exception as error:  # Keras raises many types for a bad file.
            raise BackendError(f"{model_path}: not a loadable Keras model ({first_line(error)})") from None
        self._check_shapes(self.model.input_shape, int(self.model.output_shape[-1]))
        self._call = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(batch), dtype=np.float32)

    def close(self) -> None:
        self.model = None
