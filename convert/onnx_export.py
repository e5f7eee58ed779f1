"""ONNX exports: float32 through tf2onnx, and static int8 in QDQ form through ONNX Runtime.

`tf2onnx.convert.from_keras` fails on Keras 3 models, so the serving tf.function (explicit
input signature, dynamic batch) is converted instead. The metadata goes into the file's
`metadata_props` under `edge_emotion`, where the ONNX backend reads it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from convert.errors import ConvertError
from convert.job import INPUT_NAME, OUTPUT_NAME, ExportJob
from convert.quiet import logger_quieted, native_stderr_silenced
from convert.work_dir import WORK_DIR_PREFIX
from edge_runtime.error_text import first_line
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, ModelMetadata

# Opset 17 (ONNX 1.12, 2022) runs on every ONNX Runtime of the last years, Raspberry Pi wheels included.
OPSET = 17
CALIBRATION_BATCH = 32


def export_onnx_fp32(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Float32 ONNX with a dynamic batch dimension."""
    metadata = job.metadata(format_name, {"opset": OPSET, "weights": "float32", "activations": "float32"})
    model = _with_metadata(_float_model(job, format_name), metadata)
    _check_and_save(model, target, format_name)
    return metadata


def export_onnx_int8(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Static int8: QuantizeLinear/DequantizeLinear pairs around every conv and matmul, signed
    int8 activations and per-channel signed int8 weights. Input and output stay float32.

    The QDQ form with S8S8 is what ONNX Runtime's x86 kernels run fast (about 2.4x fp32 on a
    small CNN); the older QOperator form with S8S8 ran several times slower than fp32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    faces = job.calibration_batch(format_name)
    float_model = _float_model(job, format_name)
    # Named with the process id (`convert.work_dir`): three models, several MB, that the next
    # run deletes when this process is killed.
    with tempfile.TemporaryDirectory(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-") as work:
        float_path, prepared_path, quantized_path = (Path(work) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(float_model, float_path)
        try:
            with logger_quieted("root"), native_stderr_silenced():
                # Shape inference and graph cleanup so every tensor gets quantisation parameters;
                # ONNX's own shape inference suffices for a CNN (the symbolic pass needs sympy).
                quant_pre_process(str(float_path), str(prepared_path), skip_symbolic_shape=True)
                quantize_static(
                    str(prepared_path),
                    str(quantized_path),
                    _CalibrationReader(faces),
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax,
                )
        except Exception as error:  # ONNX Runtime's tools raise many types.
            raise ConvertError(f"{format_name}: ONNX Runtime quantisation failed ({first_line(error)})") from None
        quantized = onnx.load(str(quantized_path))
    extra = {
        "opset": OPSET,
        "quant_format": "QDQ",
        "weights": "int8 (per-channel, symmetric)",
        "activations": "int8",
        "calibration_method": "MinMax",
        "calibration_size": len(faces),
    }
    metadata = job.metadata(format_name, extra)
    # The quantiser's own notes ("onnx.quant.pre_process" ...) give way to ours.
    del quantized.metadata_props[:]
    _check_and_save(_with_metadata(quantized, metadata), target, format_name)
    return metadata


class _CalibrationReader:
    """Feeds the calibration faces to ONNX Runtime's calibrator in fixed-size batches."""

    def __init__(self, faces: np.ndarray) -> None:
        self._batches = iter([{INPUT_NAME: faces[i : i + CALIBRATION_BATCH]} for i in range(0, len(faces), CALIBRATION_BATCH)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # Part of the reader interface; calibration reads the faces once.
        pass


def _float_model(job: ExportJob, format_name: str):
    """The float32 ONNX graph, converted once per run and shared by both ONNX exporters."""
    if "onnx_fp32" not in job.cache:
        import tf2onnx

        try:
            with logger_quieted("tf2onnx"), native_stderr_silenced():
                model, _ = tf2onnx.convert.from_function(job.serving_function(), input_signature=job.input_signature(), opset=OPSET)
        except Exception as error:  # tf2onnx raises many types.
            raise ConvertError(f"{format_name}: tf2onnx could not convert the model ({first_line(error)})") from None
        _rename_output(model, OUTPUT_NAME)
        model.producer_name = "edge-emotion"
        job.cache["onnx_fp32"] = model
    copy = type(job.cache["onnx_fp32"])()
    copy.CopyFrom(job.cache["onnx_fp32"])
    return copy


def _rename_output(model, new_name: str) -> None:
    """tf2onnx names the output after the TensorFlow tensor ("Identity:0"); users see a clear name."""
    old_name = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [new_name if name == old_name else name for name in node.output]
        node.input[:] = [new_name if name == old_name else name for name in node.input]
    model.graph.output[0].name = new_name


def _with_metadata(model, metadata: ModelMetadata):
    import onnx

    onnx.helper.set_model_props(model, {ONNX_METADATA_KEY: metadata.to_json()})
    model.doc_string = f"Facial-emotion classifier ({metadata.format}); labels: {', '.join(metadata.labels)}"
    return model


def _check_and_save(model, target: Path, format_name: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        reason = first_line(error, default="invalid model")
        raise ConvertError(f"{format_name}: the exported ONNX model fails onnx.checker ({reason})") from None
    onnx.save(model, str(target))
