"""The model the package carries, so `edge-run` works without `--model`.

`edge_runtime/models/` holds the same trained network in three files, one per backend. With
`--backend auto` and no `--model`, the first runtime that is installed, in the order ONNX
Runtime, LiteRT/TFLite, Keras, runs its file; none of them needs TensorFlow except Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_runtime.model_files.formats import BACKEND_NAMES, BACKENDS, get_backend, module_available

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# Files the runtime wheel leaves out (the Keras master needs TensorFlow) stay in the
# repository's models/ folder, next to the runtime package in a clone.
MASTER_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

# Views of the BACKENDS table (the only place these facts are written).
BUNDLED_MODELS: dict[str, str] = {row.name: row.bundled_file for row in BACKENDS}
DEFAULT_BACKEND_ORDER: tuple[str, ...] = BACKEND_NAMES


class DefaultModelError(RuntimeError):
    """No bundled model can be run here; the message says what to install or pass."""


def bundled_file(backend: str) -> Path:
    """Where the bundled file of `backend` lives: the runtime package's models/, or the
    repository's for a file the wheel leaves out (the Keras master)."""
    row = get_backend(backend)
    return (MODELS_DIR if row.in_runtime_wheel else MASTER_MODELS_DIR) / row.bundled_file


def installed_backends() -> list[str]:
    """Backends whose runtime package is installed, in the default order."""
    return [row.name for row in BACKENDS if any(module_available(m) for m in row.runtime_packages)]


def default_backend() -> str:
    """The backend `auto` means without `--model`: the first installed one whose bundled file exists.

    Raises:
        DefaultModelError: when no installed runtime has its bundled model file.
    """
    installed = installed_backends()
    for name in installed:
        if bundled_file(name).is_file():
            return name
    if not installed:
        raise DefaultModelError(f"no inference runtime is installed; {_runtime_wheel_hint()}")
    raise DefaultModelError(
        f"{MODELS_DIR}: no bundled model for the installed runtimes ({', '.join(installed)}); pass --model PATH"
    )


def _runtime_wheel_hint() -> str:
    """The install command of the first runtime the bundled files need, then the other extras ("[tflite] for TFLite")."""
    first, *others = [row for row in BACKENDS if row.in_runtime_wheel]
    return ", or ".join([first.install_hint, *(f"[{row.extra}] for {row.label}" for row in others)])


def default_model_path(backend: str = "auto") -> Path:
    """The bundled model file for `backend` ("auto": the default backend's).

    Raises:
        DefaultModelError: for an unknown backend, or for "auto" when nothing can run.
    """
    name = default_backend() if backend == "auto" else backend
    if name not in BUNDLED_MODELS:
        raise DefaultModelError(f"no bundled model for backend '{backend}'; choose one of {', '.join(BUNDLED_MODELS)}")
    return bundled_file(name)


def resolve_model(model: str | os.PathLike | None, backend: str = "auto") -> tuple[Path, str]:
    """The file and backend to run: `model` as given, or the bundled file for `backend`.

    For the bundled file the backend is returned by name, so "auto" resolves exactly as chosen.

    Raises:
        BackendError: no bundled model can run here, or its file is missing.
    """
    from edge_runtime.backends.base import BackendError

    if model is not None:
        return Path(model), backend
    try:
        path = default_model_path(backend)
    except DefaultModelError as error:
        raise BackendError(str(error)) from None
    if not path.is_file():
        raise BackendError(f"{path}: the bundled {backend} model is missing; pass --model PATH or choose another --backend")
    return path, next(name for name, file in BUNDLED_MODELS.items() if file == path.name)
