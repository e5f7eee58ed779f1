"""One run per output file: an exclusive advisory lock (flock) held for the whole run.

Two runs writing records to one JSONL interleave them and tear lines; two runs renaming their
videos onto one path silently lose one. The second run is refused instead, with one line naming
the file, and writes nothing: every output's lock is taken at the first frame, before any
output is written. A record file is locked itself (so `flock o.jsonl ...` in a shell script
waits for a run too); a video, which is replaced by a rename at the end, is locked through a
hidden `.<name>.lock` beside it, removed when the run ends (one a killed run left is taken over
by the next). Standard output, devices and FIFOs are never locked: /dev/null takes any number
of writers, and a FIFO's reader decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from edge_runtime.outputs.paths import OutputError, write_failure

# A lock file removed by the run holding it between our open and our lock: try the new one.
_ATTEMPTS = 5


def open_locked(path: str | os.PathLike, option: str, shown: str | os.PathLike | None = None) -> tuple[int, bool]:
    """Opens `path` for writing (creating it, never truncating it) and locks it.

    Args:
        path: the file.
        option: the option that named it, for messages.
        shown: the name messages give (the output, for its lock file); default `path`.

    Returns:
        (file descriptor, whether this call created the file).

    Raises:
        OutputError: another process holds the lock, or the file cannot be opened.
    """
    shown = path if shown is None else shown
    # Through a symlink to the file it names: O_EXCL would not follow a link to a new file.
    real = Path(os.path.realpath(path))
    for _ in range(_ATTEMPTS):
        try:
            fd, created = _open_or_create(real)
        except FileNotFoundError:
            if not real.parent.is_dir():
                raise OutputError(f"{option} {shown}: cannot be created; {real.parent} is not a folder") from None
            continue  # removed between the two opens
        except OSError as error:
            raise OutputError(f"{option} {shown}: {write_failure(error)}") from None
        try:
            _lock(fd, shown, option)
        except BaseException:
            os.close(fd)
            raise
        if still_names(real, fd):
            return fd, created
        os.close(fd)
    raise OutputError(f"{option} {shown}: keeps being replaced by another process; choose another path")


def _open_or_create(path: Path) -> tuple[int, bool]:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), True
    except FileExistsError:
        return os.open(path, os.O_WRONLY), False


def _lock(fd: int, shown: str | os.PathLike, option: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(f"{option} {shown}: another run is writing it; wait for it to end or choose another path") from None
    except OSError:
        pass  # a file system without locks (some network mounts): written unlocked, as before


def still_names(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd` (not removed or replaced meanwhile)."""
    try:
        named, opened = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def lock_path(target: Path) -> Path:
    """The hidden lock file of an output that is replaced by a rename (a video)."""
    return target.with_name(f".{target.name}.lock")


class RenamedOutputLock:
    """The lock of an output replaced by a rename, held through its hidden lock file.

    Args:
        target: the output's path (symlinks resolved).
        option: the option that named it, for messages.
        shown: the output's name as given, for messages.
    """

    def __init__(self, target: Path, option: str, shown: str | os.PathLike) -> None:
        self.path = lock_path(target)
        self._fd, _ = open_locked(self.path, option, shown)

    def release(self) -> None:
        """Removes the lock file, then unlocks; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Removed while still locked: a run that opened it meanwhile sees it gone and retries.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(fd)
