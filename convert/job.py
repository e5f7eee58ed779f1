"""What every exporter receives: the source model, the calibration faces, and traced graphs
shared between exporters so that one conversion traces the Keras model only once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from convert.errors import ConvertError
from convert.source import EXPECTED_INPUT, SourceModel
from edge_runtime.model_files.metadata import ModelMetadata
from edge_runtime.version import __version__

INPUT_NAME = "face"
OUTPUT_NAME = "probabilities"

# An exporter writes one format to `target` (a temporary path the caller renames into place)
# and returns the metadata that describes the written file.
Exporter = Callable[["ExportJob", str, Path], ModelMetadata]


@dataclass
class ExportJob:
    """The shared state of one conversion run.

    Attributes:
        source: the loaded Keras model.
        calibration: float32 faces for int8 calibration (None when no format needs them).
        float_io: keep float32 input and output tensors on full-integer TFLite models.
        cache: graphs traced once and reused by several exporters.
    """

    source: SourceModel
    calibration: np.ndarray | None = None
    float_io: bool = False
    cache: dict = field(default_factory=dict)

    def calibration_batch(self, format_name: str) -> np.ndarray:
        """The calibration faces.

        Raises:
            ConvertError: when the run was started without calibration data.
        """
        if self.calibration is None or len(self.calibration) == 0:
            raise ConvertError(f"{format_name}: needs calibration faces; pass --calibration-data DIR|CSV")
        return self.calibration

    def metadata(self, format_name: str, extra: dict) -> ModelMetadata:
        """The metadata of an export: the source's labels and input scaling, this format's name,
        the hash of the source file, the project version, and format-specific `extra`."""
        return replace(
            self.source.metadata,
            format=format_name,
            source_sha256=self.source.sha256,
            version=__version__,
            extra={"source_file": self.source.path.name, **extra},
        )

    def input_signature(self) -> list:
        """One float32 face batch with a dynamic batch dimension."""
        import tensorflow as tf

        return [tf.TensorSpec((None, *EXPECTED_INPUT), tf.float32, name=INPUT_NAME)]

    def serving_function(self):
        """`model(x, training=False)` as a tf.function (dropout off, batch norm in inference mode)."""
        if "serving" not in self.cache:
            import tensorflow as tf

            model = self.source.model
            self.cache["serving"] = tf.function(lambda x: model(x, training=False), input_signature=self.input_signature())
        return self.cache["serving"]

    def frozen_function(self):
        """The serving function with its variables folded into constants.

        The TFLite converter keeps resource variables of a plain concrete function as
        READ_VARIABLE ops with no weights in the file; int8 calibration then fails. Freezing
        first gives a self-contained graph (what `from_keras_model` does through a SavedModel).
        """
        if "frozen" not in self.cache:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            self.cache["frozen"] = convert_variables_to_constants_v2(self.serving_function().get_concrete_function())
        return self.cache["frozen"]
