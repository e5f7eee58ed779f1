"""convert: exports a trained `.keras` model to TFLite and ONNX, and proves that every export
computes what the Keras model computes.

The format names come from `edge_runtime.model_files.formats.FORMATS`; `convert.exporters.EXPORTERS` maps
each exportable name to the function that writes it. `convert_model` is the library entry
point (the `edge-convert` CLI and the benchmarks call it); TensorFlow is imported only once the
cheap checks on the model file, the data and the output folder have passed.
"""

from convert.api import ConvertConfig, ExportResult, convert_model, run_conversion
from convert.errors import ConvertError

__all__ = ["ConvertConfig", "ConvertError", "ExportResult", "convert_model", "run_conversion"]
