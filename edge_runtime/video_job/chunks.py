"""A video cut into chunks of frames, and one chunk run through the pipeline in a worker.

A chunk is a range of frames that a worker reads (seeking to its first frame), runs through
its own `EmotionDetector`, and writes as JSONL records with the chunk's own track ids to a
hidden part file beside the video's outputs. What the job needs to join the chunks again (the
tracks on the chunk's first and last frames, with their boxes and appearance) comes back in the
small, picklable `ChunkResult`; the records stay on disk.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.outputs.writers import face_record
from edge_runtime.sources.base import SourceError, usable
from edge_runtime.sources.open_source import MAX_BAD_FILE_FRAMES
from edge_runtime.video_job.discover import Video

PART_PREFIX = ".chunk"  # hidden: a folder listing shows the finished files only


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of one video (`stop` None: to its end); `index` counts from 0;
    `frame_count` is the container's count for the whole video."""

    video: Video
    index: int
    start: int
    stop: int | None
    fps: float
    frame_count: int

    @property
    def key(self) -> tuple[str, int]:
        return self.video.name, self.index


@dataclass(frozen=True)
class BoundaryTrack:
    """A track on a chunk's first or last frame: its chunk-local id, box and appearance."""

    track_id: int
    box: tuple[int, int, int, int]
    signature: tuple[float, ...] | None


@dataclass
class ChunkResult:
    """What a worker reports for one chunk (its records are in `part`)."""

    chunk: Chunk
    part: Path
    frames: int = 0
    faces: int = 0
    unreadable: int = 0
    first_tracks: list[BoundaryTrack] = field(default_factory=list)
    last_tracks: list[BoundaryTrack] = field(default_factory=list)
    detector: str = ""


def probe(video: Video) -> tuple[int, float]:
    """(frame count, frames per second) of a video, from its container.

    Raises:
        SourceError: the file cannot be opened as a video, or says it has no frames.
    """
    capture = cv2.VideoCapture(str(video.path))
    try:
        if not capture.isOpened():
            raise SourceError(f"{video.name}: cannot be opened as a video (unknown format or codec)")
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    if frames <= 0:
        raise SourceError(f"{video.name}: the container reports no frames")
    return frames, fps if fps > 0 and math.isfinite(fps) else 0.0


def plan(video: Video, frames: int, fps: float, chunk_minutes: float) -> list[Chunk]:
    """The chunks of a video: frame ranges of at most `chunk_minutes` each (the last one reads
    to the end of the file, whatever the container's frame count said)."""
    chunk_frames = max(1, int(round(chunk_minutes * 60 * fps))) if fps > 0 else frames
    starts = list(range(0, frames, chunk_frames)) or [0]
    return [Chunk(video, index, start, starts[index + 1] if index + 1 < len(starts) else None, fps, frames)
            for index, start in enumerate(starts)]


def part_path(out: Path, chunk: Chunk) -> Path:
    """Where a chunk's records wait to be joined: hidden, beside the video's outputs, named with
    the writing process's id like every temporary of this project (`edge_runtime.outputs.atomic`), so a
    later run can tell a dead worker's part from a live one's."""
    return out / chunk.video.name / f"{PART_PREFIX}{chunk.index:05d}.jsonl.{os.getpid()}.part.jsonl"


def run_chunk(detector, chunk: Chunk, out: Path, progress=None) -> ChunkResult:
    """Runs one chunk through `detector` (an `EmotionDetector`; its tracks start afresh) and
    writes its records to its part file.

    Args:
        progress: called with a count of frames now and then (for a progress bar), or None.

    Raises:
        SourceError: the video cannot be opened or gives no frame in the chunk.
        OSError: the part file cannot be written.
    """
    part = part_path(out, chunk)
    part.parent.mkdir(parents=True, exist_ok=True)
    result = ChunkResult(chunk, part, detector=detector.detector_name)
    context = {"source": chunk.video.name, "detector": detector.detector_name}
    capture = _open_at(chunk)
    last_faces: list = []
    pending = 0
    try:
        with open(part, "w", encoding="utf-8") as handle:
            indices: list[int] = []  # the file's frame number of each frame the stream has taken
            # `stream` starts the chunk's tracks afresh, numbered from 1.
            for streamed in detector.stream(_noting_indices(_frames(capture, chunk, result), indices)):
                index, faces = indices[-1], streamed.faces
                time_s = index / chunk.fps if chunk.fps else None
                for face in faces:
                    handle.write(json.dumps(face_record(index, time_s, face, context), allow_nan=False) + "\n")
                if result.frames == 0:
                    result.first_tracks = _boundary(detector, faces)
                last_faces = faces
                result.frames += 1
                result.faces += len(faces)
                pending += 1
                if progress is not None and pending >= PROGRESS_EVERY:
                    progress(pending)
                    pending = 0
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        capture.release()
    if progress is not None and pending:
        progress(pending)
    if result.frames == 0:
        part.unlink(missing_ok=True)
        raise SourceError(f"{chunk.video.name}: no frame could be read from frame {chunk.start} on ({result.unreadable} unreadable)")
    result.last_tracks = _boundary(detector, last_faces)
    return result


PROGRESS_EVERY = 25  # frames between progress reports from a worker


def _open_at(chunk: Chunk):
    capture = cv2.VideoCapture(str(chunk.video.path))
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{chunk.video.name}: cannot be opened as a video (unknown format or codec)")
    if chunk.start:
        capture.set(cv2.CAP_PROP_POS_FRAMES, chunk.start)
        # Seeking lands on the frame for the containers OpenCV's FFmpeg indexes; where it cannot,
        # read from the start and drop frames instead, so a chunk never starts off its frame.
        if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) != chunk.start:
            capture.release()
            capture = cv2.VideoCapture(str(chunk.video.path))
            for _ in range(chunk.start):
                if not capture.grab():
                    break
    return capture


def _frames(capture, chunk: Chunk, result: ChunkResult):
    """(frame index, frame) of the chunk; damaged frames are counted and skipped, as `edge-run`
    does for a video file."""
    index, failures_in_a_row = chunk.start, 0
    while chunk.stop is None or index < chunk.stop:
        ok, frame = capture.read()
        if ok and usable(frame):
            failures_in_a_row = 0
            yield index, frame
        else:
            # A failed read at the container's last frame, or too many in a row, is the end of the
            # file; before it, a damaged frame (counted and skipped).
            if index >= chunk.frame_count - 1 or failures_in_a_row >= MAX_BAD_FILE_FRAMES:
                return
            failures_in_a_row += 1
            result.unreadable += 1
        index += 1


def _noting_indices(numbered_frames, indices: list[int]):
    """The frames of (index, frame) pairs, each index appended to `indices` as its frame is taken."""
    for index, frame in numbered_frames:
        indices.append(index)
        yield frame


def _boundary(detector, faces) -> list[BoundaryTrack]:
    tracks = detector.tracker.tracks
    found = []
    for face in faces:
        signature = getattr(tracks.get(face.track_id), "signature", None)
        found.append(BoundaryTrack(face.track_id, tuple(face.box), None if signature is None else tuple(float(v) for v in signature)))
    return found


def as_array(signature: tuple[float, ...] | None) -> np.ndarray | None:
    return None if signature is None else np.asarray(signature, np.float32)
