"""The temporary folder of one conversion, named with its process id.

TensorFlow writes scratch files during a conversion: the TFLite converter a SavedModel of the
whole network (as large as the model, once per TFLite variant), autograph its generated
sources, the int8 ONNX exporter its intermediate models. A process killed outright (SIGKILL,
the OOM killer) cannot delete them, and their names say nothing of who wrote them. While a
conversion runs, every temporary file of the process therefore goes into a folder of its own,
`$TMPDIR/edge-convert-<pid>-<random>`, which the next run deletes once that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from convert.errors import ConvertError
from edge_runtime.error_text import os_error_reason
from edge_runtime.outputs.atomic import process_exists

WORK_DIR_PREFIX = "edge-convert-"


@contextlib.contextmanager
def own_temporary_folder() -> Iterator[Path]:
    """Makes a new `edge-convert-<pid>-…` folder the process's temporary folder (Python's
    `tempfile`, and `TMPDIR` for native code) while the block runs; deletes it afterwards.

    Raises:
        ConvertError: the system's temporary folder cannot take a new folder.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-"))
    except OSError as error:
        raise ConvertError(
            f"{tempfile.gettempdir()}: cannot create a temporary folder ({os_error_reason(error)}); set TMPDIR to a writable folder"
        ) from None
    previous_tempdir, previous_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous_tempdir
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        shutil.rmtree(folder, ignore_errors=True)


def remove_stranded_work_dirs() -> list[Path]:
    """Deletes the temporary folders of conversions whose process no longer exists; returns them."""
    pattern = re.compile(rf"^{re.escape(WORK_DIR_PREFIX)}(?P<pid>[0-9]+)-")
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*"):
        match = pattern.match(path.name)
        if match and path.is_dir() and not path.is_symlink() and not process_exists(int(match["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
