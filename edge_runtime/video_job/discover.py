"""Which videos a job processes: every video file under a folder, or the files a list names."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.sources.base import SourceError
from edge_runtime.sources.open_source import IMAGE_SUFFIXES, demo_clip_path

# The containers opencv-python's FFmpeg reads; a file with another suffix is not looked at.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp")
LIST_SUFFIXES = (".txt", ".list")


@dataclass(frozen=True)
class Video:
    """One video of a job.

    Attributes:
        path: the file.
        name: its name in the job's outputs and records: the path relative to the source
            folder (or as the list file gives it), with forward slashes.
        size: bytes, when the job was planned.
        mtime_ns: modification time, when the job was planned.
    """

    path: Path
    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Discovery:
    """What a job's source holds: the videos, and the photos it leaves to photo mode."""

    videos: list[Video]
    photos: list[Path]


def discover(spec: str) -> Discovery:
    """The videos (and photos) of a job's source, in name order ("demo": the bundled clip).

    Raises:
        SourceError: the source does not exist, names no video, or a list names a missing file.
    """
    if spec.strip() == "demo":
        return Discovery([_video(demo_clip_path(), demo_clip_path().name)], [])
    path = Path(os.path.expanduser(spec))
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder; expected a folder of videos, a video file or a list file of videos")
    if path.is_dir():
        videos = sorted((_video(file, file.relative_to(path).as_posix()) for file in _walk(path, VIDEO_SUFFIXES)),
                        key=lambda video: video.name)
        photos = sorted(_walk(path, IMAGE_SUFFIXES))
        if not videos:
            raise SourceError(f"{path}: no video files below it ({', '.join(VIDEO_SUFFIXES)})")
        return Discovery(videos, photos)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return Discovery(_listed(path), [])
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return Discovery([_video(path, path.name)], [])
    raise SourceError(f"{spec}: expected a folder of videos, a video file or a list file ({', '.join(LIST_SUFFIXES)}) of videos")


def _walk(folder: Path, suffixes: tuple[str, ...]):
    # Sorted walk, hidden files and folders left out (a job's own temporaries start with a dot).
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                yield Path(root) / name


def _listed(list_file: Path) -> list[Video]:
    """One video per line; blank lines and lines starting with # are skipped; relative paths
    are relative to the list file's folder."""
    videos, seen = [], set()
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = Path(os.path.expanduser(entry))
        file = file if file.is_absolute() else list_file.parent / file
        if not file.is_file():
            raise SourceError(f"{list_file}, line {number}: {entry}: no such video file")
        if entry in seen:
            continue
        seen.add(entry)
        videos.append(_video(file, _name_in_outputs(Path(entry), file)))
    if not videos:
        raise SourceError(f"{list_file}: lists no video")
    return videos


def _name_in_outputs(entry: Path, file: Path) -> str:
    """A listed video's name under --out: as listed when that stays inside the job's folder,
    else its absolute path without the leading slash (so `../a.mp4` never writes above --out)."""
    if entry.is_absolute() or ".." in entry.parts:
        return file.resolve().as_posix().lstrip("/")
    return entry.as_posix()


def _video(path: Path, name: str) -> Video:
    status = path.stat()
    return Video(path=path, name=name, size=status.st_size, mtime_ns=status.st_mtime_ns)
