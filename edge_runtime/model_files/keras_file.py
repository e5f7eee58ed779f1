"""Is a file a whole Keras model? Checked before Keras reads it, without TensorFlow; and the
one way every package loads a Keras model (`load_keras_file`).

Keras reports a truncated `.keras` file as "File not found" and a damaged one with a zip CRC
error deep in a traceback. Both are worth an accurate line of their own: a `.keras` file is a
zip archive (config.json, metadata.json, model.weights.h5), an `.h5` file an HDF5 file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class KerasFileError(ValueError):
    """A Keras model file that is damaged (`damaged`: found by the check before Keras reads it)
    or that Keras cannot load; `reason` says why in a few words, the message is one line."""

    def __init__(self, path: str | os.PathLike, reason: str, damaged: bool) -> None:
        self.path, self.reason, self.damaged = Path(path), reason, damaged
        super().__init__(f"{path}: {reason}" if damaged else f"{path}: not a loadable Keras model ({reason})")


def load_keras_file(path: str | os.PathLike, compile: bool = False, checked: bool = False, describe=None):
    """Loads a whole Keras model: the file is checked first (see `keras_file_fault`) unless the
    caller has just `checked` it, then Keras reads it.

    Args:
        describe: exception -> the few words of `KerasFileError.reason` (default: its first line).

    Raises:
        KerasFileError: the file is damaged, or Keras cannot load it.
        ImportError: Keras is not installed (the caller names what to install).
    """
    fault = None if checked else keras_file_fault(path)
    if fault:
        raise KerasFileError(path, fault, damaged=True)
    import keras

    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same.
        from edge_runtime.error_text import first_line

        raise KerasFileError(path, (describe or first_line)(error), damaged=False) from None


def save_keras_file(model, path: str | os.PathLike, arch: str, spec) -> None:
    """Writes a Keras model and its metadata sidecar (`model.keras.json`, with the checksum
    the runtime checks at load), atomically: the writer of what `load_keras_file` and the
    Keras backend read. `spec` is the model's `InputSpec`; no TensorFlow is imported here."""
    from dataclasses import replace

    from edge_runtime.model_files.formats import MASTER_FORMAT
    from edge_runtime.model_files.integrity import checksum_of_file
    from edge_runtime.model_files.metadata import ModelMetadata, sidecar_path
    from edge_runtime.outputs.atomic import atomic_path, write_text_atomic

    with atomic_path(path) as tmp:
        model.save(tmp)
    metadata = ModelMetadata(input=spec, format=MASTER_FORMAT.name, arch=arch)
    metadata = replace(metadata, checksum=checksum_of_file(path, metadata.to_dict()))
    write_text_atomic(sidecar_path(path), metadata.to_json())


def keras_file_problem(path: str | os.PathLike) -> str | None:
    """One line naming `path` and why it is not a complete Keras file, or None (see `keras_file_fault`)."""
    fault = keras_file_fault(path)
    return f"{path}: {fault}" if fault else None


def keras_file_fault(path: str | os.PathLike) -> str | None:
    """Why `path` is not a complete Keras model or weights file, or None when it looks whole.

    A `.keras` archive is read through once to check every member's CRC (about 20 ms for a
    7 MB model); an `.h5` file is opened with h5py when it is installed (it comes with Keras).
    """
    path = Path(path)
    if not path.is_file():
        return "no such file"
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _archive_fault(path)
    if suffix in (".h5", ".hdf5"):
        return _hdf5_fault(path)
    return None


def _archive_fault(path: Path) -> str | None:
    if not zipfile.is_zipfile(path):
        return "not a complete .keras zip archive (damaged, truncated, or another kind of file)"
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "not a Keras model: the archive has no config.json"
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"damaged .keras archive ({error})"
    if bad_member is not None:
        return f"damaged .keras archive: {bad_member} fails its CRC check (a corrupted copy?)"
    return None


def _hdf5_fault(path: Path) -> str | None:
    with open(path, "rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            return "not an HDF5 file (an .h5 model or weights file starts with the HDF5 signature)"
    try:
        import h5py
    except ImportError:
        return None
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        first = (str(error).strip().splitlines() or ["unreadable"])[0][:160]
        return f"damaged HDF5 file ({first})"
    return None
