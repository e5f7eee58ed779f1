"""The tables of model formats and inference backends.

One row per choice, with named fields: `edge-convert` validates `--format` against FORMATS and
keys its exporters on the same names, the runtime picks a backend from a file's suffix through
BACKENDS, and `edge-bench` loops over both. Adding a format is adding a row here (and its
exporter in `convert`); the runtime never imports `convert`.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path


def module_available(name: str) -> bool:
    """True when the package `name` is installed: looked up without importing it (importing
    TensorFlow takes seconds); a broken or blocked package counts as missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_hint(extra: str) -> str:
    """The command that adds an optional part (a pyproject extra such as "onnx"), as the README's
    Install section gives it: the distribution is installed from a clone, not from a package index."""
    return f'pip install -e ".[{extra}]" (in the edge-emotion folder)'


@dataclass(frozen=True)
class ModelFormat:
    """One kind of model file.

    Attributes:
        name: the name used everywhere (`--format`, metadata, benchmark rows).
        suffix: file suffix.
        precision: "fp32", "fp16", "dynamic" (int8 weights, float activations) or "int8".
        backend: the BACKENDS row that runs it; also its family (`edge-convert --format tflite`).
        file_tag: appended to the model's stem when exporting (`emotion` -> `emotion_int8.tflite`).
        description: one line for help texts and tables.
        weight_bytes: bytes one weight takes in the file (what an export's size follows from).
        master: True for the trained model every other format is exported from.
    """

    name: str
    suffix: str
    precision: str
    backend: str
    file_tag: str
    description: str
    weight_bytes: int
    master: bool = False

    def file_name(self, stem: str) -> str:
        return f"{stem}{self.file_tag}{self.suffix}"


@dataclass(frozen=True)
class BackendInfo:
    """One inference runtime.

    Attributes:
        name: `--backend` value.
        label: how messages name it ("The ONNX backend needs ...").
        suffixes: model file suffixes it runs (`--backend auto` chooses by these).
        module: module holding the backend class, imported only when chosen.
        class_name: the class in `module`; the class takes its `name` from this row.
        extra: the pyproject extra that installs its runtime package (see `install_hint`).
        runtime_packages: importable packages any one of which runs it, in the order it tries them.
        bundled_file: the file of the bundled model it runs (`edge_runtime.model_files.bundled`).
        in_runtime_wheel: True when the runtime package ships `bundled_file`; False for a file
            that stays in the repository's models/ folder.
        metadata: where a model file keeps its metadata: "inside" (ONNX `metadata_props`) or
            "sidecar" (a `.json` file next to it).
    """

    name: str
    label: str
    suffixes: tuple[str, ...]
    module: str
    class_name: str
    extra: str
    runtime_packages: tuple[str, ...]
    bundled_file: str
    in_runtime_wheel: bool
    metadata: str

    @property
    def install_hint(self) -> str:
        """What to install when its runtime package is missing."""
        return install_hint(self.extra)


# Within a family the rows go from the most exact precision to the most quantised: PRECISIONS
# keeps that order, and the benchmarks rank files by it.
FORMATS: tuple[ModelFormat, ...] = (
    ModelFormat("keras", ".keras", "fp32", "keras", "", "Keras 3 master model (needs TensorFlow)", 4, master=True),
    ModelFormat("tflite-fp32", ".tflite", "fp32", "tflite", "_fp32", "TFLite, float32", 4),
    ModelFormat("tflite-fp16", ".tflite", "fp16", "tflite", "_fp16", "TFLite, float16 weights", 2),
    ModelFormat("tflite-dynamic", ".tflite", "dynamic", "tflite", "_dynamic", "TFLite, int8 weights, float activations", 1),
    ModelFormat("tflite-int8", ".tflite", "int8", "tflite", "_int8", "TFLite, full integer int8", 1),
    ModelFormat("onnx-fp32", ".onnx", "fp32", "onnx", "_fp32", "ONNX, float32", 4),
    ModelFormat("onnx-int8", ".onnx", "int8", "onnx", "_int8", "ONNX, static int8 QDQ, per-channel", 1),
)

# In the order `auto` tries them for the bundled model: the first installed runtime runs its file.
BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo(
        "onnx", "ONNX", (".onnx",), "edge_runtime.backends.onnx_backend", "ONNXBackend", extra="onnx",
        runtime_packages=("onnxruntime",), bundled_file="emotion_int8.onnx", in_runtime_wheel=True, metadata="inside",
    ),
    BackendInfo(
        "tflite", "TFLite", (".tflite",), "edge_runtime.backends.tflite_backend", "TFLiteBackend", extra="tflite",
        # Never TensorFlow's tf.lite: only the Keras backend may import TensorFlow.
        runtime_packages=("ai_edge_litert", "tflite_runtime"), bundled_file="emotion_int8.tflite", in_runtime_wheel=True,
        metadata="sidecar",
    ),
    BackendInfo(
        "keras", "Keras", (".keras", ".h5"), "edge_runtime.backends.keras_backend", "KerasBackend", extra="train",
        # The Keras master needs TensorFlow, so the runtime wheel leaves it out.
        runtime_packages=("tensorflow",), bundled_file="emotion.keras", in_runtime_wheel=False, metadata="sidecar",
    ),
)

FORMAT_NAMES = tuple(f.name for f in FORMATS)
BACKEND_NAMES = tuple(b.name for b in BACKENDS)
PRECISIONS = tuple(dict.fromkeys(f.precision for f in FORMATS))
# The trained model the other formats are exported from, and the backend that runs it.
MASTER_FORMAT: ModelFormat = next(f for f in FORMATS if f.master)


def unknown_choice(kind: str, value: str, choices: tuple[str, ...]) -> ValueError:
    """The error for a name that is not a row: the choices, and the closest one."""
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ValueError(f"Unknown {kind} '{value}'. Choose one of: {', '.join(choices)}.{hint}")


def find_row(rows: tuple, name: str, kind: str, choices: tuple[str, ...] | None = None):
    """The row of a table whose `name` is `name`.

    Raises:
        ValueError: naming the choices (`choices`, default: the rows' names) and the closest one.
    """
    for row in rows:
        if row.name == name:
            return row
    raise unknown_choice(kind, name, choices or tuple(row.name for row in rows))


def get_format(name: str) -> ModelFormat:
    """Returns the FORMATS row called `name`.

    Raises:
        ValueError: naming the choices and the closest one.
    """
    return find_row(FORMATS, name, "format")


def get_backend(name: str) -> BackendInfo:
    """Returns the BACKENDS row called `name`.

    Raises:
        ValueError: naming the choices and the closest one.
    """
    return find_row(BACKENDS, name, "backend")


def backend_for_class(module: str, class_name: str) -> BackendInfo | None:
    """The BACKENDS row that names the class `class_name` of `module`, or None (a class no row names)."""
    return next((row for row in BACKENDS if (row.module, row.class_name) == (module, class_name)), None)


def backend_for_path(path: str | Path) -> BackendInfo:
    """The backend that runs a model file, chosen by its suffix (`--backend auto`).

    Raises:
        ValueError: for a suffix no backend runs.
    """
    suffix = Path(path).suffix.lower()
    for row in BACKENDS:
        if suffix in row.suffixes:
            return row
    known = ", ".join(s for row in BACKENDS for s in row.suffixes)
    raise ValueError(f"{path}: no backend runs '{suffix or 'no suffix'}' files; expected one of {known}")
