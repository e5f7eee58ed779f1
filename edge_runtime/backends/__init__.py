"""Inference backends: one small class per runtime behind one interface (`Backend`).

`load_backend` picks the class from the BACKENDS table and imports its module only then, so a
missing onnxruntime never breaks the TFLite path and TensorFlow is imported only by the Keras
backend.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.limits import threads_problem
from edge_runtime.model_files.formats import BackendInfo, backend_for_path, get_backend
from edge_runtime.model_files.integrity import ChecksumError, verify_model_file

__all__ = ["Backend", "BackendError", "load_backend", "resolve_backend"]


def resolve_backend(model_path: str | Path, backend: str = "auto") -> BackendInfo:
    """The BACKENDS row for `backend`, or for the model's suffix when `backend` is "auto".

    Raises:
        BackendError: an unknown backend name, or a file the backend cannot run.
    """
    try:
        info = backend_for_path(model_path) if backend == "auto" else get_backend(backend)
    except ValueError as error:
        raise BackendError(str(error)) from None
    suffix = Path(model_path).suffix.lower()
    if suffix not in info.suffixes:
        raise BackendError(f"{model_path}: the {info.name} backend runs {', '.join(info.suffixes)} files, not '{suffix}'")
    return info


def load_backend(
    model_path: str | Path, backend: str = "auto", threads: int | None = None, verify_model: bool = True
) -> Backend:
    """Opens a model file on a backend.

    Args:
        model_path: .onnx, .tflite or .keras file (with its metadata).
        backend: "onnx", "tflite", "keras" or "auto" (by suffix).
        threads: intra-op threads for the runtime (None: the runtime's choice, 2 for LiteRT).
        verify_model: check the file against the checksum in its metadata before any runtime
            reads it; False for a model edited on purpose.

    Raises:
        BackendError: one line naming the file and the fix, or the thread bound; a file whose
            bytes changed since export (`edge_runtime.model_files.integrity`).
    """
    problem = threads_problem(threads)
    if problem:
        raise BackendError(problem)
    model_path = Path(model_path)
    info = resolve_backend(model_path, backend)
    if not model_path.is_file():
        raise BackendError(f"{model_path}: no such model file")
    if verify_model:
        try:
            verify_model_file(model_path)
        except ChecksumError as error:
            raise BackendError(str(error)) from None
        except OSError as error:
            raise BackendError(f"{model_path}: cannot read the model file ({error.strerror or error})") from None
    module = importlib.import_module(info.module)
    return getattr(module, info.class_name)(model_path, threads=threads)
