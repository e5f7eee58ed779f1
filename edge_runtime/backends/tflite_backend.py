"""TFLite backend: LiteRT (`ai_edge_litert`), else `tflite_runtime`. Never TensorFlow: only the
Keras backend imports it, so the runtime installs and imports without it.

Full-integer models take int8 (or uint8) input: the float batch is quantised with the input
tensor's own scale and zero point, and the output dequantised with the output's, so callers
always see float probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.error_text import first_line

DEFAULT_THREADS = 2  # LiteRT defaults to 1 thread; a Raspberry Pi and this machine have more.


def tflite_interpreter_class() -> tuple[type, str]:
    """The first TFLite interpreter class that imports: LiteRT, else `tflite_runtime`.

    Public so that tools which inspect a TFLite graph (edge-bench counts its MACs) open it with
    the interpreter the backend runs it with.

    Returns:
        (the `Interpreter` class, the name of the package it came from).

    Raises:
        BackendError: neither package is installed (the message says what to install).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise TFLiteBackend.missing_runtime("LiteRT") from None


class TFLiteBackend(Backend):
    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        super().__init__(model_path, self.sidecar_metadata(model_path))
        interpreter_class, self.runtime = tflite_interpreter_class()
        try:
            self.interpreter = interpreter_class(model_path=str(model_path), num_threads=threads or DEFAULT_THREADS)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise BackendError(f"{model_path}: not a loadable TFLite model ({first_line(error)})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._check_shapes(self.input["shape"], int(self.output["shape"][-1]))
        self.input_dtype = np.dtype(self.input["dtype"])
        self.output_dtype = np.dtype(self.output["dtype"])
        self._batch_size = int(self.input["shape"][0])

    def _resize(self, batch_size: int) -> None:
        # Re-allocating is costly, so it happens only when the number of faces changes.
        self.interpreter.resize_tensor_input(self.input["index"], [batch_size, *self.metadata.input_shape])
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch_size = batch_size

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch_size:
            self._resize(batch.shape[0])
        self.interpreter.set_tensor(self.input["index"], _quantize(batch, self.input, self.input_dtype))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output, self.output_dtype)

    def close(self) -> None:
        self.interpreter = None


def _quantize(batch: np.ndarray, detail: dict, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float32:
        return batch
    scale, zero_point = detail["quantization"]
    if not scale:
        raise BackendError(f"input tensor of dtype {dtype} has no quantisation scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(batch / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float32:
        return values.astype(np.float32, copy=True)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
