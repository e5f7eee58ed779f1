"""Is there room for the exports? Checked once the Keras model is loaded, before any conversion.

An export's size follows from the network's parameter count and the format's precision, so
an output folder on a disk that clearly cannot hold it is refused in one line instead of
failing at the write after the conversion's work. The estimate leaves a margin: a close call
is left to the write itself, whose failure keeps the previous export in place.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from convert.errors import ConvertError
from edge_runtime.model_files.formats import ModelFormat
from edge_runtime.outputs.paths import free_bytes

# Batch-norm statistics fold into the convolutions, so a file can come out a little under
# its bytes per parameter; a folder is refused only when it lacks more than this share.
MARGIN = 0.9


def expected_size(row: ModelFormat, parameters: int) -> int:
    """About how many bytes the `row` export of a network of `parameters` parameters takes."""
    return parameters * row.weight_bytes


def check_free_space(out_dir: Path, exports: list[tuple[Path, int]]) -> None:
    """Refuses an output folder whose disk clearly cannot hold the exports.

    Args:
        out_dir: the output folder (it exists).
        exports: (target path, expected size in bytes) of each export, in the order written.

    Raises:
        ConvertError: one line with the space free and the space needed.
    """
    free = free_bytes(out_dir)  # as edge-run measures it: root may also fill the reserved blocks
    peak = growth = 0
    for path, size in exports:
        # Each export is written beside the file it replaces, which is freed at the rename.
        peak = max(peak, growth + size)
        growth += size - _replaced_size(path)
    if free < peak * MARGIN:
        raise ConvertError(
            f"{out_dir}: not enough disk space: {_megabytes(free)} free, the exports need about {_megabytes(peak)}; "
            "free some space or choose another --out"
        )


def _replaced_size(path: Path) -> int:
    """The bytes freed when an export is renamed onto `path`: a regular file's size, else none."""
    try:
        status = os.lstat(path)
    except OSError:
        return 0
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
