"""The Keras model being converted: cheap checks first, then loading it with TensorFlow.

`check_model_file` runs before TensorFlow is imported, so a wrong path or a stray file fails in
a fraction of a second. `load_source_model` then loads the network and checks that it is an
emotion classifier the runtime can drive: one 48x48x1 input and seven probabilities out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.errors import ConvertError
from convert.quiet import native_stderr_silenced
from edge_runtime.error_text import first_sentences
from edge_runtime.labels import NUM_CLASSES
from edge_runtime.model_files.formats import install_hint
from edge_runtime.model_files.keras_file import KerasFileError, keras_file_problem, load_keras_file
from edge_runtime.model_files.metadata import MetadataError, ModelMetadata, file_sha256, read_sidecar, sidecar_path
from edge_runtime.preprocess import FACE_SIZE

EXPECTED_INPUT = (FACE_SIZE, FACE_SIZE, 1)
# Keras explains a refused file in sentences: what it found (a Lambda layer's Python code), why
# it refuses it, then how to switch that protection off, which edge-convert does not offer.
# Room for the first two, never a sentence cut in half.
KERAS_REASON_LIMIT = 240


@dataclass(frozen=True)
class SourceModel:
    """A loaded Keras model and what its sidecar says about it.

    Attributes:
        path: the .keras file.
        model: the `keras.Model`.
        metadata: the model's own sidecar (labels, input scaling, architecture).
        sha256: hash of the .keras file, written into every export.
    """

    path: Path
    model: Any
    metadata: ModelMetadata
    sha256: str


def check_model_file(path: Path) -> ModelMetadata:
    """Checks, without TensorFlow, that `path` is a Keras model file with its metadata sidecar.

    Returns:
        The sidecar's metadata.

    Raises:
        ConvertError: a missing file, another file type, or a missing or malformed sidecar.
    """
    if not path.exists():
        raise ConvertError(f"{path}: no such file; expected a .keras model written by edge-train")
    if path.is_dir():
        raise ConvertError(f"{path}: is a folder; expected a .keras model file (for a run folder: {path / 'model.keras'})")
    if path.suffix.lower() != ".keras":
        raise ConvertError(f"{path}: not a Keras model; expected a .keras file written by edge-train")
    # Keras would call a truncated archive "File not found" and a damaged one a CRC error.
    problem = keras_file_problem(path)
    if problem:
        raise ConvertError(problem)
    if not sidecar_path(path).exists():
        raise ConvertError(
            f"{path}: no metadata file {sidecar_path(path).name} next to it; "
            "expected the sidecar edge-train writes (it records the labels and the input scaling)"
        )
    try:
        metadata = read_sidecar(path)
    except MetadataError as error:
        raise ConvertError(str(error)) from None
    if len(metadata.labels) != NUM_CLASSES:
        raise ConvertError(f"{sidecar_path(path)}: lists {len(metadata.labels)} labels; expected {NUM_CLASSES}")
    return metadata


def load_source_model(path: Path, metadata: ModelMetadata | None = None) -> SourceModel:
    """Loads the Keras model at `path` and checks its input and output shapes.

    Args:
        path: the .keras file.
        metadata: what `check_model_file(path)` returned, when the caller ran it already (the
            check reads the whole archive once).

    Raises:
        ConvertError: the file is not loadable, or the network is not a 48x48x1 -> 7 classifier.
    """
    metadata = metadata or check_model_file(path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_silenced():
            import keras  # noqa: F401 - a missing Keras fails here, before any work
            import tensorflow  # noqa: F401 - the exporters need it; fail here, before any work
    except ImportError:
        raise ConvertError(f"edge-convert needs TensorFlow, tf2onnx and onnx: {install_hint('train')}") from None
    try:
        with native_stderr_silenced():
            # check_model_file has read the archive through already.
            model = load_keras_file(path, checked=True, describe=lambda error: first_sentences(error, KERAS_REASON_LIMIT))
    except KerasFileError as error:
        raise ConvertError(str(error)) from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConvertError(f"{path}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; expected one face input and one output")
    input_shape = tuple(model.inputs[0].shape)[1:]
    if input_shape != EXPECTED_INPUT:
        raise ConvertError(f"{path}: model input is {_shape_text(input_shape)}; expected 48x48x1 (a grayscale face)")
    if tuple(metadata.input_shape) != EXPECTED_INPUT:
        raise ConvertError(f"{sidecar_path(path)}: input_shape {list(metadata.input_shape)}; expected [48, 48, 1]")
    output_shape = tuple(model.outputs[0].shape)[1:]
    if output_shape != (NUM_CLASSES,):
        raise ConvertError(f"{path}: model output is {_shape_text(output_shape)}; expected {NUM_CLASSES} class probabilities")
    return SourceModel(path=path, model=model, metadata=metadata, sha256=file_sha256(path))


def _shape_text(shape: tuple) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "a scalar"
