"""Headless outputs: per-face records as JSONL or CSV, and the annotated video.

Each output writes to a temporary file next to its target and renames it into place when it
is closed. The frame loop closes them in a `finally`, so Ctrl-C, the end of the source and an
error all leave complete files: a JSONL/CSV with every finished frame, a video whose container
was finalised (an MP4 left unfinished has no index and does not play).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from edge_runtime.api import Face
from edge_runtime.labels import LABELS

# The codec per container; all are written and read back by opencv-python-headless' FFmpeg.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEFAULT_VIDEO_FPS = 15.0


class OutputError(RuntimeError):
    """An output file cannot be written; the message names the file and what is expected."""


def face_record(frame_index: int, time_s: float, face: Face) -> dict:
    """The JSONL record of one face in one frame.

    Keys: frame (0-based index), time (seconds), track_id, box ([x, y, w, h] source pixels),
    label, confidence, uncertain, probabilities (label to probability).
    """
    return {
        "frame": int(frame_index),
        "time": round(float(time_s), 4),
        "track_id": int(face.track_id),
        "box": [int(v) for v in face.box],
        "label": face.label,
        "confidence": round(float(face.confidence), 5),
        "uncertain": bool(face.uncertain),
        "probabilities": {label: round(float(p), 5) for label, p in face.probabilities.items()},
    }


class _PendingFile:
    """A target path with a temporary sibling that is renamed onto it at close()."""

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = Path(target)
        if self.target.is_dir():
            raise OutputError(f"{self.target}: is a folder; expected a file path")
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=self.target.suffix, dir=self.target.parent)
        except OSError as error:
            raise OutputError(f"{self.target}: cannot be written ({error.strerror})") from None
        os.close(fd)
        self.tmp = Path(name)

    def commit(self) -> None:
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        if self.tmp.exists():
            self.tmp.unlink()


class JsonlWriter:
    """One JSON object per face per frame (see `face_record`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._file = _PendingFile(path)
        self._handle: IO[str] | None = open(self._file.tmp, "w", encoding="utf-8")

    def write(self, frame_index: int, time_s: float, faces: Sequence[Face]) -> None:
        for face in faces:
            self._handle.write(json.dumps(face_record(frame_index, time_s, face)) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._file.commit()


class CsvWriter:
    """The JSONL records as a table: one row per face per frame, one column per probability."""

    def __init__(self, path: str | os.PathLike, labels: Sequence[str] = LABELS) -> None:
        self._file = _PendingFile(path)
        self.labels = tuple(labels)
        self._handle: IO[str] | None = open(self._file.tmp, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(
            ["frame", "time", "track_id", "x", "y", "w", "h", "label", "confidence", "uncertain", *(f"p_{x}" for x in self.labels)]
        )

    def write(self, frame_index: int, time_s: float, faces: Sequence[Face]) -> None:
        for face in faces:
            record = face_record(frame_index, time_s, face)
            self._writer.writerow(
                [
                    record["frame"],
                    record["time"],
                    record["track_id"],
                    *record["box"],
                    record["label"],
                    record["confidence"],
                    int(record["uncertain"]),
                    *(record["probabilities"].get(label, "") for label in self.labels),
                ]
            )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._file.commit()


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
        path: .mp4 (MPEG-4 part 2), .avi or .mkv (Motion JPEG).
        fps: playback rate; the source's rate when it has one.

    Raises:
        OutputError: for a container no codec is known for.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise OutputError(f"{self.path}: unknown video container '{suffix}'; expected one of {', '.join(VIDEO_CODECS)}")
        self.fourcc = VIDEO_CODECS[suffix]
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_VIDEO_FPS
        self._file = _PendingFile(self.path)
        self._writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = to_bgr(frame)
        if self._writer is None:
            self.size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(str(self._file.tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size)
            if not self._writer.isOpened():
                self._writer = None
                raise OutputError(f"{self.path}: OpenCV cannot write {self.fourcc} video here; try a .avi path")
        if (frame.shape[1], frame.shape[0]) != self.size:
            # A folder of images of mixed sizes: a video has one frame size.
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._file.commit()
        else:
            self._file.discard()


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

    def write(self, frame_index: int, time_s: float, faces: Sequence[Face], annotated: np.ndarray | None = None) -> None:
        for writer in self.records:
            writer.write(frame_index, time_s, faces)
        if self.video is not None and annotated is not None:
            self.video.write(annotated)

    def close(self) -> None:
        """Flushes and renames every file into place; safe to call more than once."""
        for writer in [*self.records, self.video]:
            if writer is not None:
                writer.close()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
