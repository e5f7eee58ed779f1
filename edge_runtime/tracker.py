"""Faces keep an id from frame to frame, and their probabilities are smoothed per id.

Association is greedy IoU matching of this frame's boxes against the tracks' last boxes: a
face in a webcam moves a fraction of its own width between frames, so its boxes overlap
heavily, while two faces rarely do. The smoothing is an exponential moving average of the
probability vector per track, which stops a label from flickering between frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.detectors.base import Box, iou

DEFAULT_IOU_THRESHOLD = 0.3
DEFAULT_MAX_MISSES = 5


@dataclass
class Track:
    """One face followed over frames.

    Attributes:
        track_id: stable id, counting from 1.
        box: last (x, y, w, h) box.
        probabilities: smoothed probabilities, or None before the first prediction.
        misses: detection rounds in a row without a matching box.
    """

    track_id: int
    box: Box
    probabilities: np.ndarray | None = field(default=None, repr=False)
    misses: int = 0


class IoUTracker:
    """Greedy IoU tracker with per-track EMA smoothing.

    Args:
        smooth: weight of the past in the moving average, in [0, 1); 0 turns smoothing off.
        iou_threshold: least overlap for a box to continue a track.
        max_misses: detection rounds a track survives without a matching box (a face the
            cascade misses for a frame or two keeps its id and its smoothed probabilities).

    Raises:
        ValueError: for an out-of-range setting.
    """

    def __init__(self, smooth: float = 0.5, iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_misses: int = DEFAULT_MAX_MISSES):
        if not 0.0 <= smooth < 1.0:
            raise ValueError(f"smooth {smooth}: expected a weight in [0, 1)")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold {iou_threshold}: expected a fraction in (0, 1]")
        if max_misses < 0:
            raise ValueError(f"max_misses {max_misses}: expected 0 or more")
        self.smooth_weight = float(smooth)
        self.iou_threshold = float(iou_threshold)
        self.max_misses = int(max_misses)
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def assign(self, boxes: Sequence[Box]) -> list[int]:
        """Matches this frame's boxes to tracks; returns one track id per box, in order.

        Unmatched boxes start new tracks; tracks without a box age and are dropped after
        `max_misses` rounds.
        """
        track_ids = list(self.tracks)
        pairs = sorted(
            (
                (iou(box, self.tracks[tid].box), b, tid)
                for b, box in enumerate(boxes)
                for tid in track_ids
            ),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for overlap, b, tid in pairs:
            if overlap < self.iou_threshold:
                break
            if b in assigned or tid in used_tracks:
                continue
            assigned[b] = tid
            used_tracks.add(tid)
        for tid in track_ids:
            if tid not in used_tracks:
                self.tracks[tid].misses += 1
                if self.tracks[tid].misses > self.max_misses:
                    del self.tracks[tid]
        result = []
        for b, box in enumerate(boxes):
            box = tuple(int(v) for v in box)
            if b in assigned:
                track = self.tracks[assigned[b]]
                track.box, track.misses = box, 0
            else:
                track = Track(self._next_id, box)
                self.tracks[track.track_id] = track
                self._next_id += 1
            result.append(track.track_id)
        return result

    def visible(self) -> list[tuple[int, Box]]:
        """(track id, box) of the tracks matched in the last detection round."""
        return [(t.track_id, t.box) for t in self.tracks.values() if t.misses == 0]

    def smooth(self, track_id: int, probabilities: np.ndarray) -> np.ndarray:
        """Folds a new probability vector into the track's moving average and returns it."""
        probabilities = np.asarray(probabilities, dtype=np.float32)
        track = self.tracks.get(track_id)
        if track is None:
            return probabilities
        if track.probabilities is None or self.smooth_weight == 0.0:
            track.probabilities = probabilities.copy()
        else:
            track.probabilities = self.smooth_weight * track.probabilities + (1.0 - self.smooth_weight) * probabilities
        return track.probabilities

    def reset(self, restart_ids: bool = False) -> None:
        """Forgets every track (a new source, or a frame of a different size).

        Args:
            restart_ids: number the next faces from 1 again (a new photo); otherwise ids keep
                counting, so an id never names two different faces of one video.
        """
        self.tracks.clear()
        if restart_ids:
            self._next_id = 1
