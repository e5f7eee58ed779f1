"""Headless outputs: per-face records as JSONL or CSV, and the annotated video.

JSONL and CSV are written in place and flushed after every frame, so `tail -f` follows a live
run and a killed run keeps every complete line. `-` writes to standard output; a device or a
FIFO is opened and written, never replaced. Files are created with the user's umask.

The video goes to a hidden file next to its target and is renamed onto it once its container
is finalised (an MP4 cut short has no index and does not play), so a previous file stays
intact until the new one is whole; a device or FIFO target is written in place instead. The
frame loop closes every output in a `finally`, so the end of the source, Ctrl-C, SIGTERM,
SIGHUP and an error all leave finished files and no hidden ones.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from edge_runtime.api import Face
from edge_runtime.labels import LABELS
from edge_runtime.output_paths import (
    OutputError,
    check_writable,
    is_special,
    is_stdout_name,
    remove_stranded_temps,
    video_temp_path,
)

__all__ = ["CsvWriter", "JsonlWriter", "OutputError", "Outputs", "VideoOutput", "face_record", "to_bgr"]

# The codec per container; all are written and read back by opencv-python-headless' FFmpeg.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEFAULT_VIDEO_FPS = 15.0


def face_record(frame_index: int, time_s: float | None, face: Face, context: Mapping[str, object] | None = None) -> dict:
    """The JSONL record of one face in one frame.

    Keys: frame (0-based index), time (seconds; null for photos, which have no clock), then
    the run's context (source: the file or stream the frame came from; detector: the face
    detector used), track_id, box ([x, y, w, h] source pixels), score (the detector's),
    label, confidence, uncertain, probabilities (label to probability).
    """
    return {
        "frame": int(frame_index),
        "time": None if time_s is None else round(float(time_s), 4),
        **(context or {}),
        "track_id": int(face.track_id),
        "box": [int(v) for v in face.box],
        "score": round(float(face.score), 4),
        "label": face.label,
        "confidence": round(float(face.confidence), 5),
        "uncertain": bool(face.uncertain),
        "probabilities": {label: round(float(p), 5) for label, p in face.probabilities.items()},
    }


class _RecordWriter:
    """A text output written in place, opened at the first frame, flushed after every frame.

    Subclasses say what opens the file (`_begin`) and what one face becomes (`_write_face`).
    Opening at the first frame means a run that fails before it leaves no empty file.
    """

    def __init__(self, path: str | os.PathLike, option: str) -> None:
        check_writable(path, option)
        self.path = path if is_stdout_name(path) else Path(path)
        self._handle: IO[str] | None = None

    def _open(self) -> IO[str]:
        if is_stdout_name(self.path):
            return sys.stdout
        try:
            if not is_special(self.path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # A plain open: follows a symlink, writes a device or FIFO in place, and creates a
            # new file with the user's umask.
            return open(self.path, "w", encoding="utf-8", newline="")
        except OSError as error:
            raise OutputError(f"{self.path}: cannot be written ({error.strerror})") from None

    def _begin(self, handle: IO[str]) -> None:
        """Writes what precedes the first record (a header)."""

    def _write_face(self, record: dict) -> None:
        raise NotImplementedError

    def write(self, frame_index: int, time_s: float | None, faces: Sequence[Face], context: Mapping[str, object] | None = None) -> None:
        if self._handle is None:
            self._handle = self._open()
            self._begin(self._handle)
        for face in faces:
            self._write_face(face_record(frame_index, time_s, face, context))
        self._handle.flush()

    def close(self) -> None:
        """Flushes and closes the file (standard output is flushed, not closed); idempotent."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if handle is sys.stdout:
            handle.flush()
        else:
            handle.close()


class JsonlWriter(_RecordWriter):
    """One JSON object per face per frame (see `face_record`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path, "--jsonl")

    def _write_face(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")


# A CSV has fixed columns: the context keys the runner passes come right after frame and time.
CSV_LEADING_COLUMNS = ("frame", "time", "source", "detector")


class CsvWriter(_RecordWriter):
    """The JSONL records as a table: one row per face per frame, one column per probability."""

    def __init__(self, path: str | os.PathLike, labels: Sequence[str] = LABELS) -> None:
        super().__init__(path, "--csv")
        self.labels = tuple(labels)
        self._writer = None

    def _begin(self, handle: IO[str]) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(
            [*CSV_LEADING_COLUMNS, "track_id", "x", "y", "w", "h", "score", "label", "confidence", "uncertain",
             *(f"p_{x}" for x in self.labels)]
        )

    def _write_face(self, record: dict) -> None:
        self._writer.writerow(
            [
                *("" if record.get(key) is None else record[key] for key in CSV_LEADING_COLUMNS),
                record["track_id"],
                *record["box"],
                record["score"],
                record["label"],
                record["confidence"],
                int(record["uncertain"]),
                *(record["probabilities"].get(label, "") for label in self.labels),
            ]
        )


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """A 3-channel uint8 BGR copy of a gray, BGR or BGRA frame (what video writers and windows take)."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame.copy()


class VideoOutput:
    """The annotated frames as a video; opened at the first frame, whose size it keeps.

    Args:
        path: .mp4 (MPEG-4 part 2), .avi or .mkv (Motion JPEG); a FIFO or device with one of
            these suffixes is written in place.
        fps: playback rate; the source's rate when it has one.

    Raises:
        OutputError: for a container no codec is known for, or a path that cannot be written.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise OutputError(f"{self.path}: unknown video container '{suffix}'; expected one of {', '.join(VIDEO_CODECS)}")
        check_writable(self.path, "--save-video")
        self.fourcc = VIDEO_CODECS[suffix]
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_VIDEO_FPS
        # Through a symlink to the file it names, so the link itself stays a link.
        self.target = Path(os.path.realpath(self.path))
        self.in_place = is_special(self.target)
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        if self.in_place:
            written = self.target
        else:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            remove_stranded_temps(self.target)
            written = self._tmp = video_temp_path(self.target)
        writer = cv2.VideoWriter(str(written), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if not writer.isOpened():
            self._discard()
            raise OutputError(f"{self.path}: OpenCV cannot write {self.fourcc} video here; try a .avi path")
        return writer

    def write(self, frame: np.ndarray) -> None:
        frame = to_bgr(frame)
        if self._writer is None:
            self.size = (frame.shape[1], frame.shape[0])
            self._writer = self._open(self.size)
        if (frame.shape[1], frame.shape[0]) != self.size:
            # A folder of images of mixed sizes: a video has one frame size.
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Finalises the container and renames it onto the target; idempotent.

        A video without frames leaves no file; a failed rename leaves no hidden one.
        """
        writer, self._writer = self._writer, None
        if writer is None:
            self._discard()
            return
        try:
            writer.release()
            if self._tmp is not None:
                self._keep_mode_of_target()
                os.replace(self._tmp, self.target)
                self._tmp = None
        except OSError as error:
            raise OutputError(f"{self.path}: cannot be written ({error.strerror})") from None
        finally:
            self._discard()

    def _keep_mode_of_target(self) -> None:
        # Replacing a file the user already had keeps its permissions; a new one has the
        # umask's, as FFmpeg created the temporary file with a plain open().
        try:
            os.chmod(self._tmp, stat.S_IMODE(os.stat(self.target).st_mode))
        except FileNotFoundError:
            pass

    def _discard(self) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


class Outputs:
    """Every requested output, written and closed together."""

    def __init__(
        self,
        jsonl: str | os.PathLike | None = None,
        csv_path: str | os.PathLike | None = None,
        video: str | os.PathLike | None = None,
        video_fps: float | None = None,
        labels: Sequence[str] = LABELS,
    ) -> None:
        self.records: list = []
        self.video: VideoOutput | None = None
        try:
            if jsonl is not None:
                self.records.append(JsonlWriter(jsonl))
            if csv_path is not None:
                self.records.append(CsvWriter(csv_path, labels))
            if video is not None:
                self.video = VideoOutput(video, video_fps)
        except BaseException:
            self.close()
            raise

    @property
    def wants_annotated_frames(self) -> bool:
        return self.video is not None

    def write(
        self,
        frame_index: int,
        time_s: float | None,
        faces: Sequence[Face],
        annotated: np.ndarray | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        """Writes one frame's records (with the run's `context` keys) and its annotated image."""
        for writer in self.records:
            writer.write(frame_index, time_s, faces, context)
        if self.video is not None and annotated is not None:
            self.video.write(annotated)

    def close(self) -> None:
        """Flushes, closes and renames every file into place; safe to call more than once.

        Every output is closed even when one fails; the first failure is raised after.
        """
        failure = None
        for writer in [*self.records, self.video]:
            if writer is None:
                continue
            try:
                writer.close()
            except Exception as error:  # noqa: BLE001 - re-raised below, after the others are closed
                failure = failure or error
        if failure is not None:
            raise failure

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
