"""TFLite exports: float32, float16 weights, dynamic-range int8 weights, and full-integer int8.

Every variant converts the same frozen serving graph (dynamic batch dimension; LiteRT resizes
the input to the number of faces). The file holds only the graph; its metadata goes into a
JSON sidecar that the caller writes next to it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from convert.errors import ConvertError
from convert.job import ExportJob
from convert.quiet import native_stderr_silenced
from edge_runtime.error_text import first_line
from edge_runtime.model_files.metadata import ModelMetadata


def export_tflite_fp32(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Float32 TFLite: the Keras graph as is."""
    _write(_convert(job, format_name, configure=None), target)
    return job.metadata(format_name, {"weights": "float32", "activations": "float32"})


def export_tflite_fp16(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Float16 weights, dequantised to float32 when the interpreter loads the model."""
    import tensorflow as tf

    def configure(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    _write(_convert(job, format_name, configure), target)
    return job.metadata(format_name, {"weights": "float16", "activations": "float32"})


def export_tflite_dynamic(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Dynamic-range quantisation: int8 weights, float activations, no calibration."""
    import tensorflow as tf

    def configure(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

    _write(_convert(job, format_name, configure), target)
    return job.metadata(format_name, {"weights": "int8", "activations": "float32 (dynamic range)"})


def export_tflite_int8(job: ExportJob, format_name: str, target: Path) -> ModelMetadata:
    """Full-integer int8: int8 weights and activations, int8 input and output unless `job.float_io`.

    `TFLITE_BUILTINS_INT8` alone is allowed, so the converter fails rather than leaving a float
    op in the graph. The edge network takes raw 0-255 pixels, so the int8 input quantisation is
    lossless (scale 1, zero point -128) when the calibration faces span the full pixel range.
    """
    import tensorflow as tf

    faces = job.calibration_batch(format_name)

    def representative_dataset():
        # One face at a time: the calibrator records per-tensor min/max over every face.
        for index in range(len(faces)):
            yield [faces[index : index + 1]]

    def configure(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.float32 if job.float_io else tf.int8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type

    content = _convert(job, format_name, configure)
    _write(content, target)
    extra = {
        "weights": "int8 (per-channel)",
        "activations": "int8",
        "calibration_size": len(faces),
        **_io_quantization(content),
    }
    return job.metadata(format_name, extra)


def _convert(job: ExportJob, format_name: str, configure) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([job.frozen_function()], job.source.model)
    if configure is not None:
        configure(converter)
    with warnings.catch_warnings(), native_stderr_silenced():
        # "Statistics for quantized inputs were expected": the calibrator measures them itself.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs", category=UserWarning)
        try:
            return converter.convert()
        except Exception as error:  # The converter raises ConverterError, RuntimeError, ValueError...
            raise ConvertError(f"{format_name}: the TFLite converter failed ({first_line(error)})") from None


def _write(content: bytes, target: Path) -> None:
    target.write_bytes(content)


def _io_quantization(content: bytes) -> dict:
    """The input and output tensors' dtype, scale and zero point, read back from the converted model."""
    with native_stderr_silenced():
        interpreter = _interpreter(content)
    result = {}
    for role, detail in (("input", interpreter.get_input_details()[0]), ("output", interpreter.get_output_details()[0])):
        scale, zero_point = detail["quantization"]
        result[f"{role}_quantization"] = {
            "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale),
            "zero_point": int(zero_point),
        }
    return result


def _interpreter(content: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - the same class from TensorFlow
    return Interpreter(model_content=content)
