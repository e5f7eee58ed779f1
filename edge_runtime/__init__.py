"""edge_runtime: the TensorFlow-free runtime for facial-emotion recognition at the edge.

It owns the label list (`labels`), the one preprocessing function (`preprocess`), the model
format table (`formats`) and model metadata (`metadata`); `trainer`, `convert` and
`benchmarks` import these rather than defining their own.
"""

from edge_runtime.labels import LABELS, NUM_CLASSES
from edge_runtime.version import __version__

__all__ = ["LABELS", "NUM_CLASSES", "__version__"]
