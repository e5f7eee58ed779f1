"""Result rows and their status.

Every row a benchmark produces is a plain dict (it goes straight into the JSON report) with a
`name` and a `status`:

- `ok`: the figures were measured;
- `skipped`: not measurable here, with the `reason` (runtime not installed, format unsupported);
- `failed`: it was tried and broke, with the `error`.

A crash therefore never reads as "not installed here".
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.error_text import first_line
from edge_runtime.model_files.formats import BackendInfo, get_backend, install_hint, module_available

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
STATUSES = (OK, SKIPPED, FAILED)


def ok_row(name: str, **figures) -> dict:
    return {"name": name, "status": OK, **figures}


def skipped_row(name: str, reason: str, **fields) -> dict:
    return {"name": name, "status": SKIPPED, "reason": reason, **fields}


def failed_row(name: str, error: str, **fields) -> dict:
    return {"name": name, "status": FAILED, "error": error, **fields}


def error_text(error: BaseException) -> str:
    """One line for a row: the exception type and the first line of its message."""
    message = first_line(error, limit=300, default="")
    return f"{type(error).__name__}: {message}"[:300] if message else type(error).__name__


@dataclass(frozen=True)
class RuntimeCheck:
    """Whether a backend's runtime package is importable here, and what to do if not."""

    available: bool
    reason: str = ""


def check_runtime(backend: str, available=module_available) -> RuntimeCheck:
    """Whether `backend` ("onnx", "tflite", "keras") can run on this install.

    Args:
        backend: a BACKENDS name.
        available: module-name -> bool (injectable for tests).
    """
    info: BackendInfo = get_backend(backend)
    modules = info.runtime_packages
    if any(available(module) for module in modules):
        return RuntimeCheck(True)
    return RuntimeCheck(False, f"runtime not installed ({' or '.join(modules)}): {info.install_hint}")


def tensorflow_check(available=module_available) -> RuntimeCheck:
    """For the rows that need TensorFlow itself (Keras, seed-style)."""
    if available("tensorflow"):
        return RuntimeCheck(True)
    return RuntimeCheck(False, f"TensorFlow not installed (needed for Keras rows): {install_hint('train')}")
