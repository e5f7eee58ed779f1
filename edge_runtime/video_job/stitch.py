"""Joins a video's chunks into one record file, with track ids that run across the chunks.

Each chunk numbers its tracks from 1. A track on a chunk's first frame continues a track on the
previous chunk's last frame when their boxes overlap as the tracker asks of consecutive frames
and their crops look alike (`edge_runtime.pipeline.tracker`); every other track gets the next id of the
video, in order of first appearance, as one pass over the whole video would number it. What
differs from one pass: the smoothing of a continued track starts afresh at the chunk's start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from edge_runtime.detectors.base import iou
from edge_runtime.outputs.atomic import atomic_path
from edge_runtime.pipeline.tracker import DEFAULT_IOU_THRESHOLD, likeness
from edge_runtime.video_job.chunks import BoundaryTrack, ChunkResult, as_array


def continued_tracks(previous: list[BoundaryTrack], first: list[BoundaryTrack], min_likeness: float,
                     iou_threshold: float = DEFAULT_IOU_THRESHOLD) -> dict[int, int]:
    """Which tracks of a chunk's first frame continue which of the previous chunk's last frame:
    {this chunk's id: the previous chunk's id}, greedy by overlap."""
    pairs = sorted(((iou(a.box, b.box), b.track_id, a.track_id, a, b) for a in first for b in previous), key=lambda p: p[:3],
                   reverse=True)
    continued: dict[int, int] = {}
    taken: set[int] = set()
    for overlap, _, _, new, old in pairs:
        if overlap < iou_threshold:
            break
        if new.track_id in continued or old.track_id in taken:
            continue
        new_look, old_look = as_array(new.signature), as_array(old.signature)
        if min_likeness and new_look is not None and old_look is not None and likeness(new_look, old_look) < min_likeness:
            continue
        continued[new.track_id] = old.track_id
        taken.add(old.track_id)
    return continued


def join_chunks(results: list[ChunkResult], target: Path, min_likeness: float, on_record: Callable[[dict], None]) -> None:
    """Writes the records of `results` (one video's chunks, in order) to `target` atomically,
    with video-wide track ids; calls `on_record` with each final record; deletes the parts."""
    next_id = 1
    previous: ChunkResult | None = None
    previous_ids: dict[int, int] = {}
    with atomic_path(target) as temporary, open(temporary, "w", encoding="utf-8") as out:
        for result in results:
            ids: dict[int, int] = {}
            if previous is not None:
                for new, old in continued_tracks(previous.last_tracks, result.first_tracks, min_likeness).items():
                    ids[new] = previous_ids[old]
            with open(result.part, encoding="utf-8") as part:
                for line in part:
                    record = json.loads(line)
                    local = record["track_id"]
                    if local not in ids:
                        ids[local], next_id = next_id, next_id + 1
                    record["track_id"] = ids[local]
                    out.write(json.dumps(record, allow_nan=False) + "\n")
                    on_record(record)
            previous, previous_ids = result, ids
    for result in results:
        result.part.unlink(missing_ok=True)
