"""Is a file a whole Keras model? Checked before Keras reads it, without TensorFlow.

Keras reports a truncated `.keras` file as "File not found" and a damaged one with a zip CRC
error deep in a traceback. Both are worth an accurate line of their own: a `.keras` file is a
zip archive (config.json, metadata.json, model.weights.h5), an `.h5` file an HDF5 file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
