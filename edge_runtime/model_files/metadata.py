"""Model metadata: what a model file says about itself.

Every model the project writes carries its labels, input shape, input scaling, detector crop
margin, quantisation parameters, the hash of the Keras model it came from and the project
version. ONNX files keep it in `metadata_props` (key `edge_emotion`); Keras and TFLite files in
a JSON sidecar next to them (`model.tflite` -> `model.tflite.json`). The runtime reads it back
and hard-codes nothing about a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_runtime.labels import LABELS
from edge_runtime.model_files.formats import MASTER_FORMAT
from edge_runtime.preprocess import InputSpec
from edge_runtime.version import __version__

ONNX_METADATA_KEY = "edge_emotion"


class MetadataError(ValueError):
    """A model's metadata is missing or does not describe a usable model."""


@dataclass(frozen=True)
class ModelMetadata:
    """What the runtime needs to know about a model file.

    Attributes:
        labels: class names in output order.
        input_shape: (height, width, channels) of one face.
        input: how pixels become model input (scale, offset, crop margin).
        format: the format table's name for this file (e.g. "tflite-int8").
        source_sha256: hash of the Keras model the file was made from.
        version: project version that wrote the file.
        arch: architecture name.
        extra: anything else (quantisation notes, calibration size, accuracy).
        checksum: "sha256:..." over the file's bytes and this metadata, checked at load (see
            `edge_runtime.model_files.integrity`); empty in files exported before it existed.
    """

    labels: tuple[str, ...] = LABELS
    input_shape: tuple[int, int, int] = (48, 48, 1)
    input: InputSpec = field(default_factory=InputSpec)
    format: str = MASTER_FORMAT.name
    source_sha256: str = ""
    version: str = __version__
    arch: str = ""
    extra: dict = field(default_factory=dict)
    checksum: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["input_shape"] = list(self.input_shape)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, where: str = "metadata") -> ModelMetadata:
        try:
            labels = tuple(str(label) for label in data["labels"])
            shape = tuple(int(v) for v in data["input_shape"])
            spec = InputSpec.from_dict(data.get("input", {}))
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(f"{where}: metadata lacks {error}; expected labels, input_shape and input") from None
        if len(shape) != 3:
            raise MetadataError(f"{where}: input_shape {list(shape)}; expected [height, width, channels]")
        return cls(
            labels=labels,
            input_shape=shape,
            input=spec,
            format=str(data.get("format", "")),
            source_sha256=str(data.get("source_sha256", "")),
            version=str(data.get("version", "")),
            arch=str(data.get("arch", "")),
            extra=dict(data.get("extra", {})),
            checksum=str(data.get("checksum", "")),
        )

    @classmethod
    def from_json(cls, text: str, where: str = "metadata") -> ModelMetadata:
        try:
            return cls.from_dict(json.loads(text), where)
        except json.JSONDecodeError as error:
            raise MetadataError(f"{where}: not valid JSON ({error.msg} at line {error.lineno})") from None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """`model.tflite` -> `model.tflite.json`."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def read_sidecar(model_path: str | os.PathLike) -> ModelMetadata:
    """Reads the JSON sidecar of a Keras or TFLite file.

    Raises:
        MetadataError: when the sidecar is missing or malformed.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        raise MetadataError(f"{model_path}: no metadata file {path.name} next to it; re-export it with edge-convert")
    return ModelMetadata.from_json(path.read_text(encoding="utf-8"), str(path))


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
