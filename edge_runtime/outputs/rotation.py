"""Rotation of `edge-run`'s record files: `--rotate-size`, `--rotate-every`, `--rotate-keep`.

A run that never ends (a camera on a device, `edge-run --serve`) would otherwise fill its disk
with `--jsonl` and `--csv`. As with logrotate, the live file keeps its name, so `tail -F`
follows it; between two frames, never inside a record, it is renamed `<stem>.<UTC time of the
rotation, YYYYmmddTHHMMSSZ><suffix>` (with `_1`, `_2`... when that name is taken) and a new
live file is started (a CSV with its header again). The oldest rotated files beyond `keep` are
deleted, counting those a previous run left.

The live name always names a locked file, so a second run on it is refused after a rotation as
before it: the new file is created under a hidden name and locked first, the full file gets its
rotated name as a second hard link, and only then is the new file renamed onto the live name
(`output_lock.open_locked` checks that a name still holds the file it locked). A file system
without hard links (FAT) gets a plain rename instead, which leaves the live name missing for
an instant.

Standard output, devices and FIFOs cannot be renamed: asking to rotate one is refused, not
ignored, because rotation is asked for to bound the disk, and standard output is often a file a
shell or service redirected it to, which would then grow without bound, unnoticed.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.limits import ROTATE_EVERY_S, ROTATE_KEEP, ROTATE_SIZE
from edge_runtime.outputs.atomic import atomic_path, remove_stranded
from edge_runtime.outputs.lock import open_locked, still_names
from edge_runtime.outputs.paths import OutputError, is_special, is_stdout_name

DEFAULT_KEEP = 10
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# Powers of 1024, as logrotate's and `du -h`'s units.
SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)
# Lower case only: "M" reads as months to a systemd user and as minutes to a `sleep` user.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
# Errors of os.link on a file system without hard links (vfat and exFAT answer EPERM).
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP)


def _size_text(size: float) -> str:
    """A size as a user writes it: 4096 is "4k", 2**40 is "1T"."""
    for name in ("T", "G", "M", "k"):
        unit = SIZE_UNITS[name.lower()]
        if size >= unit and size % unit == 0:
            return f"{int(size // unit)}{name}"
    return f"{int(size)}"


def parse_size(text: str) -> int:
    """`--rotate-size`: bytes, or a number with k, M, G or T (powers of 1024), such as 100M.

    Raises:
        ValueError: not a size, or one outside `limits.ROTATE_SIZE`; one line.
    """
    size = int(_quantity(text, _SIZE, SIZE_UNITS, "size", "bytes or a number with k, M, G or T, such as 100M"))
    if ROTATE_SIZE.problem("size", size):
        raise ValueError(f"expected a size from {_size_text(ROTATE_SIZE.low)} to {_size_text(ROTATE_SIZE.high)}, not {text}")
    return size


def parse_duration(text: str) -> float:
    """`--rotate-every`: seconds, or a number with s, m, h or d, such as 30m or 1h.

    Raises:
        ValueError: not a duration, or one outside `limits.ROTATE_EVERY_S`; one line.
    """
    seconds = _quantity(text, _DURATION, DURATION_UNITS, "duration", "seconds or a number with s, m, h or d, such as 30m")
    if ROTATE_EVERY_S.problem("duration", seconds):
        raise ValueError(f"expected a duration from {ROTATE_EVERY_S.low:g} s to {ROTATE_EVERY_S.high / 86400:g} days, not {text}")
    return seconds


def _quantity(text: str, pattern: re.Pattern, units: Mapping[str, float], kind: str, expected: str) -> float:
    """A number with an optional unit of `units` (`pattern` captures the two), in base units."""
    match = pattern.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a {kind}; expected {expected}")
    return float(match[1]) * units[(match[2] or "").lower()]


@dataclass(frozen=True)
class Rotation:
    """When record files are rotated and how many rotated files are kept.

    Attributes:
        size: rotate before a file would grow past this many bytes (unless it holds no record
            yet: one frame's records are never split); None: not by size.
        every: rotate at every multiple of this many seconds of UTC time (1 h: on the hour;
            1 d: at midnight UTC), so files cover whole periods; None: not by time.
        keep: rotated files kept per output; the oldest are deleted.

    Raises:
        ValueError: neither size nor every, or a value outside its bound in `limits`.
    """

    size: int | None = None
    every: float | None = None
    keep: int = DEFAULT_KEEP

    def __post_init__(self) -> None:
        if self.size is None and self.every is None:
            raise ValueError("rotation: give a size, a period (every) or both")
        for name, bound, value in (("size", ROTATE_SIZE, self.size), ("every", ROTATE_EVERY_S, self.every),
                                   ("keep", ROTATE_KEEP, self.keep)):
            problem = value is not None and bound.problem(f"rotation {name}", value)
            if problem:
                raise ValueError(problem)


def unrotatable(option: str, path: str | os.PathLike) -> str:
    """Why the output `path` cannot be rotated, as one line; "" when it can (a regular file, or
    one not made yet)."""
    if is_stdout_name(path):
        return f"{option} - is standard output, which cannot be renamed; give a file path"
    if is_special(path):
        return f"{option} {path} is not a regular file (a device or a FIFO) and cannot be renamed; give a file path"
    return ""


def rotation_for(size: int | None, every: float | None, keep: int | None,
                 outputs: Mapping[str, str | os.PathLike | None]) -> Rotation | None:
    """The rotation the `--rotate-*` options ask for, checked against the outputs it rotates.

    Args:
        size, every, keep: the options' values (None: not given).
        outputs: option name ("--jsonl", "--csv") to its path, or None.

    Returns:
        None when neither size nor every is given.

    Raises:
        ValueError: one line for a usage error: keep alone, no output to rotate, or an output
            that cannot be renamed.
    """
    if size is None and every is None:
        if keep is not None:
            raise ValueError("--rotate-keep counts rotated files: give --rotate-size or --rotate-every too")
        return None
    option = "--rotate-size" if size is not None else "--rotate-every"
    given = {name: path for name, path in outputs.items() if path is not None}
    if not given:
        raise ValueError(f"{option} rotates the {' and '.join(outputs)} files of a run: give one of them")
    for name, path in given.items():
        problem = unrotatable(name, path)
        if problem:
            raise ValueError(f"{option}: {problem}")
    return Rotation(size, every, DEFAULT_KEEP if keep is None else keep)


def _rotated(live: Path) -> list[tuple[str, int, Path]]:
    """(time stamp, counter, path) of every rotated file of `live` in its folder, oldest first."""
    pattern = re.compile(rf"{re.escape(live.stem)}\.(\d{{8}}T\d{{6}}Z)(?:_(\d+))?{re.escape(live.suffix)}")
    found = []
    for path in live.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path != live and path.is_file() and not path.is_symlink():
            found.append((match[1], int(match[2] or 0), path))
    return sorted(found)


def rotated_files(live: Path) -> list[Path]:
    """The rotated files of the live file `live` in its folder, oldest first.

    Ordered by the time and counter in their names, not as text: `_10` comes after `_9`.
    """
    return [path for *_, path in _rotated(live)]


def _first_free_name(live: Path, now: float) -> tuple[str, int]:
    """The time stamp and counter of the next rotated name: never one that sorts before a file
    already rotated, even after the clock was set back (NTP on a device without a real-time
    clock), or the newest file would be taken for the oldest and deleted."""
    stamp = time.strftime(STAMP_FORMAT, time.gmtime(now))
    rotated = _rotated(live)
    if rotated and rotated[-1][0] >= stamp:
        return rotated[-1][0], rotated[-1][1] + 1
    return stamp, 0


def _give_rotated_name(live: Path, now: float) -> Path:
    """Gives the live file its rotated name: a second name, or its only one on a file system
    without hard links. Never replaces a file: a name taken gets the next counter."""
    stamp, first = _first_free_name(live, now)
    for counter in itertools.count(first):  # endless: a free name is always found
        rotated = live.with_name(f"{live.stem}.{stamp}{f'_{counter}' if counter else ''}{live.suffix}")
        try:
            os.link(live, rotated, follow_symlinks=False)
            return rotated
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in _NO_HARD_LINKS:
                raise
        if not os.path.lexists(rotated):
            os.rename(live, rotated)
            return rotated


def _swap(live: Path, fd: int, option: str, shown: str | os.PathLike, now: float) -> int:
    """Moves the live file (open as `fd`) to its rotated name and a new, empty, locked file onto
    `live`, keeping the live file's permissions; returns the new descriptor and closes `fd`.

    Raises:
        OSError: the new file could not be made or named; the live file is then as it was.
    """
    new_fd = rotated = None
    try:
        with atomic_path(live) as fresh:
            new_fd, _ = open_locked(fresh, option, shown)
            rotated = _give_rotated_name(live, now)
        # Faces are personal data: a live file the user made private stays private.
        os.fchmod(new_fd, stat.S_IMODE(os.fstat(fd).st_mode))
    except BaseException:
        if new_fd is not None:
            os.close(new_fd)
        if rotated is not None and still_names(live, fd):
            rotated.unlink(missing_ok=True)  # only a second name of the live file: undone
        raise
    os.close(fd)
    return new_fd


class Rotator:
    """When one live record file is rotated, and the rotation.

    Args:
        rotation: the settings.
        clock: seconds since the epoch (time.time; a fake in tests), for the periods of
            `every` and the rotated names.
    """

    def __init__(self, rotation: Rotation, clock: Callable[[], float] = time.time) -> None:
        self.rotation = rotation
        self._clock = clock
        self._period: int | None = None

    def begin(self) -> None:
        """A live file starts now: its period is the current one."""
        every = self.rotation.every
        self._period = None if every is None else math.floor(self._clock() / every)

    def due(self, file_bytes: int, file_records: int, incoming: int) -> bool:
        """Whether to rotate before `incoming` more bytes of records are written.

        Args:
            file_bytes: bytes in the live file (a CSV header included).
            file_records: records in the live file. A file without any is never rotated (a
                night without a face makes no empty files): its period starts again instead.
            incoming: bytes of the frame's records about to be written.
        """
        if file_records == 0:
            self.begin()
            return False
        size = self.rotation.size
        if size is not None and file_bytes + incoming > size:
            return True
        every = self.rotation.every
        return every is not None and math.floor(self._clock() / every) != self._period

    def rotate(self, live: Path, fd: int, option: str, shown: str | os.PathLike) -> int:
        """Renames the live file (open as `fd`) to its rotated name and starts a new one.

        Returns:
            The new live file's descriptor, locked; `fd` is closed.

        Raises:
            OSError: the new file could not be made or named; the live file is then as it was.
        """
        fd = _swap(live, fd, option, shown, self._clock())
        self.begin()
        return fd

    def delete_oldest(self, live: Path, option: str, shown: str | os.PathLike) -> None:
        """Deletes the rotated files beyond `keep`, oldest first, and hidden files a killed
        rotation left.

        Raises:
            OutputError: one could not be deleted (the disk would fill).
        """
        for path in rotated_files(live)[: -self.rotation.keep]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # deleted by someone else meanwhile
            except OSError as error:
                raise OutputError(
                    f"{option} {shown}: cannot delete the oldest rotated file {path.name} ({error.strerror}); "
                    "delete it or raise --rotate-keep"
                ) from None
        remove_stranded(live.parent, live.name)
