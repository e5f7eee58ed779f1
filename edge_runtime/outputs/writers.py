"""Headless outputs: per-face records as JSONL or CSV, and the annotated video.

JSONL and CSV are written in place, a frame's records in one write, so `tail -f` follows a live
run and a killed run keeps every complete line; a full disk cuts the file back to its last
complete record. `-` writes to standard output; a device or a FIFO is opened and written, never
replaced. Files are created with the user's umask. Every output file is locked for the run
(`edge_runtime.outputs.lock`): a second run on it is refused. A run that never ends can rotate
its JSONL and CSV files by size or time (`edge_runtime.outputs.rotation`).

The video goes to a hidden file next to its target and is renamed onto it once its container
is finalised (an MP4 cut short has no index and does not play), so a previous file stays
intact until the new one is whole; a device or FIFO target is written in place instead. The
frame loop closes every output in a `finally`, so the end of the source, Ctrl-C, SIGTERM,
SIGHUP and an error all leave finished files and no hidden ones.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from edge_runtime.labels import LABELS
from edge_runtime.outputs.lock import RenamedOutputLock, open_locked
from edge_runtime.outputs.paths import (
    OutputError,
    check_writable,
    free_bytes,
    is_special,
    is_stdout_name,
    remove_stranded_temps,
    video_temp_path,
    write_failure,
)
from edge_runtime.outputs.rotation import Rotation, Rotator, unrotatable
from edge_runtime.pipeline.emotion_detector import Face
from edge_runtime.pipeline.stopping import uninterrupted
from edge_runtime.preprocess import to_bgr

__all__ = ["RECORD_SCHEMA_VERSION", "CsvWriter", "JsonlWriter", "OutputError", "Outputs", "VideoOutput", "face_record"]

# The codec per container; all are written and read back by opencv-python-headless' FFmpeg.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DEFAULT_VIDEO_FPS = 15.0


# The version of the record layout that docs/output-schema.md describes (a test holds the two
# together); it changes whenever a field is added, removed or given other values.
RECORD_SCHEMA_VERSION = "2"


def face_record(frame_index: int, time_s: float | None, face: Face, context: Mapping[str, object] | None = None) -> dict:
    """The JSONL record of one face in one frame (docs/output-schema.md describes every field).

    Keys: frame (0-based index), time (seconds; null for photos, which have no clock), then
    the run's context (source: the file or stream the frame came from; detector: the face
    detector used, null for a face classified whole), track_id, box ([x, y, w, h] source
    pixels), score (the detector's; null when it gives none: Haar, a face classified whole),
    label, confidence, uncertain, probabilities (label to probability). A number that is not
    finite (a model that output NaN) is null, as JSON has no NaN; its face's label is null too.
    """
    return {
        "frame": int(frame_index),
        "time": None if time_s is None else round(float(time_s), 4),
        **(context or {}),
        "track_id": int(face.track_id),
        "box": [int(v) for v in face.box],
        "score": _finite(face.score, 4),
        "label": face.label,
        "confidence": _finite(face.confidence, 5),
        "uncertain": bool(face.uncertain),
        "probabilities": {label: _finite(p, 5) for label, p in face.probabilities.items()},
    }


def _finite(value: float | None, digits: int) -> float | None:
    """`value` rounded, or None when it is None, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


class _RecordWriter:
    """A text output written in place, a frame's records at a time, from the first frame on.

    Opening at the first frame means a run that fails before it leaves no file, and the
    previous file as it was. A regular file is locked then (`lock`, see `output_lock`) and only
    after that truncated, so a second run on it is refused without touching it. Each frame's
    records go to the file in one write; when that fails (a full disk), the file is cut back to
    the end of the last complete record and the run ends with one line. Standard output,
    devices and FIFOs are never locked. With a `rotation`, a regular file is rotated between
    frames (see `edge_runtime.outputs.rotation`), and a previous run's records in it are rotated at the
    first frame instead of overwritten (a restarted service keeps them). Subclasses say what
    precedes the records (`_header`) and what one face becomes (`_line`).

    Raises:
        OutputError: the path cannot be written, or is rotated and not a regular file.
    """

    def __init__(
        self, path: str | os.PathLike, option: str, rotation: Rotation | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        check_writable(path, option)
        problem = rotation is not None and unrotatable(option, path)
        if problem:
            raise OutputError(problem)
        self.option = option
        self.path = path if is_stdout_name(path) else Path(path)
        self.records = 0
        self._rotator = Rotator(rotation, clock) if rotation is not None else None
        self._live: Path | None = None  # the file the path names (through a symlink), once locked
        self._live_records = 0  # records in the live file
        self._fd: int | None = None  # a file, device or FIFO, written with os.write
        self._stream: IO[str] | None = None  # standard output
        self._regular = False  # a regular file, locked and cut back on failure
        self._created = False
        self._started = False
        self._failed = False
        self._kept = 0  # bytes of complete records in the file

    def lock(self) -> None:
        """Opens and locks a regular file without changing it; idempotent.

        Raises:
            OutputError: another run is writing the file, or it cannot be opened.
        """
        if self._fd is not None or is_special(self.path):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{self.option} {self.path}: {write_failure(error)}") from None
        self._fd, self._created = open_locked(self.path, self.option)
        self._live = Path(os.path.realpath(self.path))
        self._regular = True

    def _start(self) -> None:
        if is_stdout_name(self.path):
            self._stream = sys.stdout
        elif is_special(self.path):
            try:
                # Opened as it is: a device or FIFO is written in place, never created.
                self._fd = os.open(self.path, os.O_WRONLY)
            except OSError as error:
                raise OutputError(f"{self.path}: cannot be written ({error.strerror})") from None
        else:
            self.lock()
            if self._rotator is None:
                os.ftruncate(self._fd, 0)
            elif os.fstat(self._fd).st_size > 0:
                self._rotate()
            else:
                self._rotator.begin()
        self._started = True

    def _header(self) -> str:
        """What precedes the first record (a CSV header)."""
        return ""

    def _line(self, record: dict) -> str:
        raise NotImplementedError

    def write(self, frame_index: int, time_s: float | None, faces: Sequence[Face], context: Mapping[str, object] | None = None) -> None:
        text = ""
        records = "".join(self._line(face_record(frame_index, time_s, face, context)) for face in faces)
        if not self._started:
            self._start()
            text = self._header()
        elif self._rotator is not None and self._rotator.due(self._kept, self._live_records, len(records.encode("utf-8"))):
            self._rotate()
            text = self._header()
        text += records
        if text:
            self._emit(text)
        self.records += len(faces)
        self._live_records += len(faces)

    def _rotate(self) -> None:
        """Puts a new live file in place of the full one, between two frames."""
        # A stop signal lands after the swap, not between the files and what this writer holds.
        with uninterrupted():
            try:
                self._fd = self._rotator.rotate(self._live, self._fd, self.option, self.path)
            except OSError as error:
                self._give_up(error)
            self._kept = self._live_records = 0
            self._created = True
        try:
            self._rotator.delete_oldest(self._live, self.option, self.path)
        except OutputError:
            self._failed = True
            self.close()
            raise

    def _emit(self, text: str) -> None:
        data = text.encode("utf-8")
        try:
            if self._fd is not None:
                _write_all(self._fd, data)
            else:
                self._stream.write(text)
                self._stream.flush()
        except OSError as error:
            self._give_up(error)
        self._kept += len(data)

    def _give_up(self, error: OSError) -> None:
        """Cuts the file back to its last complete record, closes it and raises OutputError."""
        message = f"{self.option} {self.path}: {write_failure(error)}"
        if self._regular:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._kept)
            message += f"; kept the {self.records} complete records"
            # A file this run created and could not write one record into is removed at close.
            self._started = self._kept > 0
        self._failed = True
        self.close()
        raise OutputError(message) from None

    def close(self) -> None:
        """Closes the file (standard output is flushed, not closed); idempotent.

        A file this run created and wrote no frame into is removed.
        """
        fd, self._fd = self._fd, None
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.flush()
            except OSError:
                if not self._failed:
                    raise
        if fd is not None:
            if self._created and not self._started:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.realpath(self.path))
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Writes all of `data`; a full disk shows as a short write, then an OSError (ENOSPC)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class JsonlWriter(_RecordWriter):
    """One JSON object per face per frame (see `face_record`)."""

    def __init__(self, path: str | os.PathLike, rotation: Rotation | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, "--jsonl", rotation, clock)

    def _line(self, record: dict) -> str:
        # allow_nan=False: a non-finite number that slipped through raises here instead of
        # writing a bare NaN, which is not JSON.
        return json.dumps(record, allow_nan=False) + "\n"


# A CSV has fixed columns: the context keys the runner passes come right after frame and time.
CSV_LEADING_COLUMNS = ("frame", "time", "source", "detector")


class CsvWriter(_RecordWriter):
    """The JSONL records as a table: one row per face per frame, one column per probability."""

    def __init__(
        self,
        path: str | os.PathLike,
        labels: Sequence[str] = LABELS,
        rotation: Rotation | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, "--csv", rotation, clock)
        self.labels = tuple(labels)

    def _header(self) -> str:
        return _csv_row(
            [*CSV_LEADING_COLUMNS, "track_id", "x", "y", "w", "h", "score", "label", "confidence", "uncertain",
             *(f"p_{x}" for x in self.labels)]
        )

    def _line(self, record: dict) -> str:
        return _csv_row(
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


def _csv_row(values: Sequence[object]) -> str:
    """One CSV row as text (None becomes an empty field)."""
    row = io.StringIO()
    csv.writer(row).writerow(values)
    return row.getvalue()


class VideoOutput:
    """The annotated frames as a video; opened at the first frame, whose size it keeps.

    OpenCV's writer reports no error: on a full disk it goes on taking frames and leaves a file
    without its index. So every frame is followed by a look at the free space (the index,
    written at the end, needs some), and the finished file is read back (its frame count)
    before it replaces the target; either failing keeps the previous file and removes the new
    one.

    Args:
        path: .mp4 (MPEG-4 part 2), .avi or .mkv (Motion JPEG); a FIFO or device with one of
            these suffixes is written in place.
        fps: playback rate; the source's rate when it has one.

    Raises:
        OutputError: for a container no codec is known for, a path that cannot be written, or
            one another run is writing.
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
        self._lock: RenamedOutputLock | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def lock(self) -> None:
        """Takes the target's lock (a file replaced by a rename, not a device); idempotent.

        Raises:
            OutputError: another run is writing the same target.
        """
        if self.in_place or self._lock is not None:
            return
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = RenamedOutputLock(self.target, "--save-video", self.path)

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        if self.in_place:
            written = self.target
        else:
            self.lock()
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
        if self._tmp is not None and free_bytes(self._tmp.parent) == 0:
            # The writer has lost data or will when it writes the index: give up now, not at
            # the end of a long run.
            self._abandon(self._disk_full())

    def close(self) -> None:
        """Finalises the container, checks it and renames it onto the target; idempotent.

        A video without frames leaves no file; a failed check or rename leaves no hidden one.
        """
        writer, self._writer = self._writer, None
        try:
            if writer is None:
                return
            writer.release()
            if self._tmp is None:
                return
            self._check_finished()
            self._keep_mode_of_target()
            os.replace(self._tmp, self.target)
            self._tmp = None
        except OSError as error:
            raise OutputError(f"{self.path}: cannot be written ({error.strerror})") from None
        finally:
            self._discard()
            if self._lock is not None:
                self._lock.release()

    def _check_finished(self) -> None:
        """Raises OutputError unless the finished temporary file reads back with every frame."""
        # Asked first: FFmpeg prints its own line about a file without an index it is asked to open.
        if free_bytes(self._tmp.parent) == 0:
            raise self._disk_full()
        capture = cv2.VideoCapture(str(self._tmp))
        try:
            # The container's own count (from its index; no frame is decoded).
            found = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        # One more than counted is a stop signal that landed between a frame's write and its count.
        if found < self.frames:
            raise self._failure(f"the finished file reads back {found} of its {self.frames} frames")

    def _failure(self, reason: str) -> OutputError:
        kept = "kept the previous video" if self.target.exists() else "no video written"
        return OutputError(f"--save-video {self.path}: {reason}; {kept}")

    def _disk_full(self) -> OutputError:
        return self._failure(f"disk full after {self.frames} frames (no space left on the device)")

    def _abandon(self, error: OutputError) -> None:
        """Drops the unfinished video (the target stays as it was) and raises `error`."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
        self._discard()
        if self._lock is not None:
            self._lock.release()
        raise error

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
    """Every requested output, written and closed together; `rotation` rotates the JSONL and CSV."""

    def __init__(
        self,
        jsonl: str | os.PathLike | None = None,
        csv_path: str | os.PathLike | None = None,
        video: str | os.PathLike | None = None,
        video_fps: float | None = None,
        labels: Sequence[str] = LABELS,
        rotation: Rotation | None = None,
    ) -> None:
        self.records: list = []
        self.video: VideoOutput | None = None
        self._locked = False
        try:
            if jsonl is not None:
                self.records.append(JsonlWriter(jsonl, rotation))
            if csv_path is not None:
                self.records.append(CsvWriter(csv_path, labels, rotation))
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
        """Writes one frame's records (with the run's `context` keys) and its annotated image.

        Raises:
            OutputError: an output cannot be written, or another run is writing it (then
                nothing is written to any output).
        """
        if not self._locked:
            # Every file is locked before any is written: a run refused on one writes none.
            for output in [*self.records, self.video]:
                if output is not None:
                    output.lock()
            self._locked = True
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
