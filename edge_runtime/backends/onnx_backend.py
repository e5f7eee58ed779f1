"""ONNX Runtime backend. Static int8 QDQ models keep float input and output, so no
quantisation happens here; ONNX Runtime runs the QDQ graph with integer kernels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.error_text import first_line
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, MetadataError, ModelMetadata, read_sidecar


class ONNXBackend(Backend):
    def __init__(
        self, model_path: Path, threads: int | None = None, providers: list[str] | None = None, allow_spinning: bool = False
    ) -> None:
        # onnxruntime >= 1.29 records usage events under ~/.cache and uploads them; a device
        # that looks at people's faces should not phone home unasked. A user who wants it sets
        # ORT_DISABLE_TELEMETRY=0 before the run.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import onnxruntime as ort
        except ImportError:
            raise self.missing_runtime("onnxruntime") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime's pool threads spin for a while after each run. In the frame loop the
        # next thing to run is the face detector, which they then starve of cores, for a gain
        # far smaller than what detection loses (docs/performance.md, "ONNX Runtime's spinning threads").
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        # Prefer what the machine has (CUDA, CoreML...), always ending with the CPU.
        available = ort.get_available_providers()
        chosen = providers or [p for p in available if p != "TensorrtExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=chosen)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types.
            raise BackendError(f"{model_path}: not a loadable ONNX model ({first_line(error)})") from None
        super().__init__(model_path, _read_metadata(self.session, model_path))
        model_input = self.session.get_inputs()[0]
        model_output = self.session.get_outputs()[0]
        self.input_name, self.output_name = model_input.name, model_output.name
        classes = model_output.shape[-1] if isinstance(model_output.shape[-1], int) else None
        self._check_shapes(model_input.shape, classes)
        self.providers = self.session.get_providers()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0].astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None


def _read_metadata(session, model_path: Path) -> ModelMetadata:
    props = session.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY in props:
        try:
            return ModelMetadata.from_json(props[ONNX_METADATA_KEY], f"{model_path} metadata_props")
        except MetadataError as error:
            raise BackendError(str(error)) from None
    try:
        return read_sidecar(model_path)
    except MetadataError as error:
        raise BackendError(str(error)) from None
