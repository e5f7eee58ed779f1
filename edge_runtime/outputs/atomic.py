"""Atomic file writes: a reader never sees a half-written file, an interrupted write
never replaces a good file with a truncated one.

A temporary file is named `.<target>.<pid>.<random><suffix>`: a process killed outright
(SIGKILL, power loss) cannot delete its own, and the process id in the name lets the next
run tell a stranded file from one another process is still writing (`remove_stranded`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path next to `target`; renames it onto `target` on success.

    The temporary file keeps `target`'s suffix (or `suffix`), because some writers
    (Keras, OpenCV) choose the format by the file name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file owner-only (0600); give the result the mode an ordinary
        # write would have, so a model copied to a device stays readable by its service user.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


# `.<target>.<pid>.<8 characters of mkstemp><suffix>`, or `part` in their place for a file a
# run writes for as long as it lasts (edge-run's video, `output_paths.video_temp_path`).
_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]+)\.(?:[a-z0-9_]{8}|part)(?P<suffix>\.[^.]*)?$")


def process_exists(pid: int) -> bool:
    """Whether a process with this id is running (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _temporaries(folder: str | os.PathLike, target_name: str | None = None) -> Iterator[tuple[Path, int]]:
    """(path, writer's process id) of every temporary file in `folder` (of `target_name` only)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _TEMPORARY_NAME.match(path.name)
        if match and path.is_file() and not path.is_symlink() and target_name in (None, match["target"]):
            yield path, int(match["pid"])


def stranded_files(folder: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Temporary files in `folder` (of `target_name` only, when given) whose writing process
    no longer exists."""
    return sorted(path for path, pid in _temporaries(folder, target_name) if pid != os.getpid() and not process_exists(pid))


def remove_own_temporaries(folder: str | os.PathLike) -> None:
    """Deletes this process's temporary files in `folder`: on the way out of an interrupted run,
    for one a signal stranded between its creation and the `atomic_path` block's clean-up."""
    for path, pid in _temporaries(folder):
        if pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def remove_stranded(folder: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Deletes the temporary files a killed process left in `folder` (for `target_name` only,
    when given); returns them."""
    removed = []
    for path in stranded_files(folder, target_name):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | os.PathLike, data: object) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False) + "\n")
