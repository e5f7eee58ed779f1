"""Where outputs may go: checked before a run starts, so a bad path costs no model loading.

Rules: `-` is standard output; a path that exists and is not a regular file (a device such as
/dev/null, a FIFO, /dev/stdout) is written in place and never replaced; a symlink is written
through; no output may name the source or another output.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from edge_runtime.error_text import os_error_reason
from edge_runtime.outputs.atomic import remove_stranded

STDOUT = "-"


class OutputError(RuntimeError):
    """An output file cannot be written; the message names the file and what is expected."""


def is_stdout_name(path: str | os.PathLike) -> bool:
    """True for `-`, the conventional name of standard output."""
    return str(path) == STDOUT


def writes_to_stdout(path: str | os.PathLike | None) -> bool:
    """True when writing `path` would write this process's standard output (`-`, /dev/stdout,
    /dev/fd/1, or the very file stdout is redirected to)."""
    if path is None:
        return False
    if is_stdout_name(path):
        return True
    try:
        target, stdout = os.stat(path), os.fstat(1)
    except OSError:
        return False
    return (target.st_dev, target.st_ino) == (stdout.st_dev, stdout.st_ino)


def is_special(path: str | os.PathLike) -> bool:
    """True when `path` is standard output or an existing file that is not a regular one
    (a device, a FIFO, a socket): those are opened and written, never created or replaced."""
    if is_stdout_name(path):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_writable(path: str | os.PathLike, option: str = "output") -> None:
    """Raises OutputError (one line) when `path` cannot be written as an output file.

    Nothing is created: a missing parent folder is accepted when it could be created.
    """
    if is_stdout_name(path):
        return
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; expected a file path")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise OutputError(f"{option} {path}: cannot be written (permission denied)")
        return
    folder = _nearest_existing(path.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot be created; {folder} is not a writable folder")


def check_folder_writable(folder: str | os.PathLike, option: str) -> None:
    """Raises OutputError (one line) when files cannot be written into `folder`: it is a file,
    it or the folder it would be created in is read-only, or its disk is full.

    Nothing is created: a missing folder is accepted when it could be created.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {folder}: is not a folder")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"{option} {folder}: cannot be created; {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        # access() answers EROFS even for root, who passes every permission check.
        reason = "read-only file system" if os.statvfs(existing).f_flag & os.ST_RDONLY else "permission denied"
        raise OutputError(f"{option} {folder}: cannot be written ({reason})")
    if free_bytes(existing) == 0:
        raise OutputError(f"{option} {folder}: disk full (no space left on the device)")


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or its closest ancestor that exists (where it would be created)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder: str | os.PathLike) -> int:
    """Bytes this process may still write on the file system holding `folder`.

    Root may also fill the blocks a file system keeps in reserve (5% on ext4 by default), which
    `f_bavail` leaves out.
    """
    usage = os.statvfs(folder)
    return (usage.f_bfree if os.geteuid() == 0 else usage.f_bavail) * usage.f_frsize


def write_failure(error: OSError) -> str:
    """Why a write failed, for a one-line message: a full disk or quota is named as such (the fix
    is to free space, not to change permissions; `errors.os_error_reason`, as edge-convert says
    it), anything else by the system's own words."""
    if error.errno == errno.ENOSPC:
        return "disk full (no space left on the device)"
    return f"cannot be written ({os_error_reason(error)})"


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    a, b = ("/dev/stdout" if is_stdout_name(p) else os.fspath(p) for p in (a, b))
    try:
        return os.path.samefile(a, b)
    except OSError:
        # One of them does not exist yet: the same path once links are resolved.
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_shared_paths(source: str | os.PathLike | None, outputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuses an output that names the source or another output.

    Args:
        source: the file the run reads (None for a camera or stream).
        outputs: option name (e.g. "--jsonl") to the path it was given, or None.

    Raises:
        OutputError: one line naming both options.
    """
    seen: list[tuple[str, str | os.PathLike]] = []
    for option, path in outputs.items():
        if path is None:
            continue
        check_writable(path, option)
        if source is not None and _same_file(path, source):
            raise OutputError(f"{option} {path}: is the source being read; choose another output path")
        for other_option, other in seen:
            # Two streams into /dev/null harm nothing; into any other one file, one is lost.
            if _same_file(path, other) and not _same_file(path, os.devnull):
                raise OutputError(f"{option} {path}: is also the {other_option} output; give each output its own path")
        seen.append((option, path))


def video_temp_path(target: Path) -> Path:
    """The hidden file a video is written to before it is renamed onto `target`.

    It keeps the suffix (OpenCV picks the container by it) and carries the writer's process
    id, so `remove_stranded_temps` can tell a dead run's leftover from a live run's file.
    """
    return target.with_name(f".{target.name}.{os.getpid()}.part{target.suffix}")


def remove_stranded_temps(target: Path) -> list[Path]:
    """Deletes hidden video temporaries of `target` left by runs that were killed (SIGKILL,
    power loss) and whose process no longer exists. Returns what was deleted."""
    return remove_stranded(target.parent, target.name)


