"""edge_runtime: the TensorFlow-free runtime for facial-emotion recognition at the edge.

It owns the label list (`labels`), the one preprocessing function (`preprocess`), the model
format table (`formats`) and model metadata (`metadata`); `trainer`, `convert` and
`benchmarks` import these rather than defining their own.

    from edge_runtime import EmotionDetector

The embedding API's names (`EmotionDetector`, `Face`, `FrameResult` and the settings of each
stage) are imported on first use (PEP 562), so `import edge_runtime` for the label list stays
light: no OpenCV, no inference runtime.
"""

from __future__ import annotations

import importlib

from edge_runtime.labels import LABELS, NUM_CLASSES
from edge_runtime.version import __version__

# Public name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    "EmotionDetector": "edge_runtime.pipeline.emotion_detector",
    "Face": "edge_runtime.pipeline.emotion_detector",
    "FrameResult": "edge_runtime.pipeline.stream",
    "DetectorSettings": "edge_runtime.detectors",
    "ModelSettings": "edge_runtime.settings",
    "PipelineSettings": "edge_runtime.settings",
}

__all__ = ["LABELS", "NUM_CLASSES", "__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'edge_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
