"""Faces keep an id from frame to frame, and their probabilities are smoothed per id.

Association is greedy IoU matching of this frame's boxes against the tracks' last boxes: a
face in a webcam moves a fraction of its own width between frames, so its boxes overlap
heavily, while two faces rarely do. The smoothing is an exponential moving average of the
probability vector per track, which stops a label from flickering between frames.

Overlap alone cannot tell when one person takes another's place in the same spot, so a track
also keeps a small appearance signature of its last crop: a crop that no longer looks like the
one before it ends the track, and the face starts a new one (see `likeness`). Shot cuts end
every track (`edge_runtime.pipeline.shot_cuts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_runtime.detectors.base import Box, iou

DEFAULT_IOU_THRESHOLD = 0.3
DEFAULT_MAX_MISSES = 5
# Least likeness (see `likeness`) of a track's crop to its previous crop for the track to go on:
# between what two different people at the same place score and what the same face re-detected
# a few pixels off does; the figures and the threshold's effect on label accuracy come from
# tools/measure_track_identity.py (see docs/edge-run.md, "Tracks: one person each").
DEFAULT_MIN_LIKENESS = 0.6
SIGNATURE_SIDE = 8  # a face at 8x8: its layout of light and dark, not its expression's details


FEATURELESS_STD = 2.0  # gray levels: a crop flatter than this (a blank wall, a dark frame) has no likeness to judge


def signature(gray_face: np.ndarray) -> np.ndarray | None:
    """A face's appearance signature: its grayscale crop shrunk to 8x8, zero mean, unit length;
    None for a featureless crop."""
    small = cv2.resize(gray_face, (SIGNATURE_SIDE, SIGNATURE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    if norm < FEATURELESS_STD * SIGNATURE_SIDE:  # the norm of 64 deviations of that size
        return None
    return small / norm


def likeness(first: np.ndarray, second: np.ndarray) -> float:
    """Correlation of two signatures, in [-1, 1]: near 1 for the same face a few pixels apart."""
    return float(first @ second)


@dataclass
class Track:
    """One face followed over frames.

    Attributes:
        track_id: stable id, counting from 1.
        box: last (x, y, w, h) box.
        probabilities: smoothed probabilities, or None before the first prediction.
        misses: detection rounds in a row without a matching box.
        signature: appearance signature of the last crop (see `signature`), or None.
    """

    track_id: int
    box: Box
    probabilities: np.ndarray | None = field(default=None, repr=False)
    misses: int = 0
    signature: np.ndarray | None = field(default=None, repr=False)


class IoUTracker:
    """Greedy IoU tracker with per-track EMA smoothing.

    Args:
        smooth: weight of the past in the moving average, in [0, 1); 0 turns smoothing off.
        iou_threshold: least overlap for a box to continue a track.
        max_misses: detection rounds a track survives without a matching box (a face the
            cascade misses for a frame or two keeps its id and its smoothed probabilities).
        min_likeness: least likeness of a track's crop to its previous one (see `confirm`);
            0 keeps tracks by overlap alone.

    Raises:
        ValueError: for an out-of-range setting.
    """

    def __init__(self, smooth: float = 0.5, iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_misses: int = DEFAULT_MAX_MISSES,
                 min_likeness: float = DEFAULT_MIN_LIKENESS):
        if not 0.0 <= smooth < 1.0:
            raise ValueError(f"smooth {smooth}: expected a weight in [0, 1)")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold {iou_threshold}: expected a fraction in (0, 1]")
        if max_misses < 0:
            raise ValueError(f"max_misses {max_misses}: expected 0 or more")
        if not 0.0 <= min_likeness < 1.0:
            raise ValueError(f"min_likeness {min_likeness}: expected a correlation in [0, 1) (0: off)")
        self.smooth_weight = float(smooth)
        self.iou_threshold = float(iou_threshold)
        self.max_misses = int(max_misses)
        self.min_likeness = float(min_likeness)
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

    def confirm(self, track_id: int, face_signature: np.ndarray | None) -> int:
        """Checks that a track's new crop still shows the face it followed; returns its id.

        When the crop's likeness to the track's previous crop is below `min_likeness`,
        another face has taken this one's place: the track ends and the face starts a new
        track (a new id, no smoothed past) at the same box, whose id is returned. A
        featureless crop (signature None) proves nothing either way: the track goes on.
        """
        track = self.tracks.get(track_id)
        if track is None or face_signature is None:
            return track_id
        previous, track.signature = track.signature, face_signature
        if previous is None or self.min_likeness == 0.0 or likeness(previous, face_signature) >= self.min_likeness:
            return track_id
        del self.tracks[track_id]
        successor = Track(self._next_id, track.box, signature=face_signature)
        self.tracks[successor.track_id] = successor
        self._next_id += 1
        return successor.track_id

    def visible(self) -> list[tuple[int, Box]]:
        """(track id, box) of the tracks matched in the last detection round."""
        return [(t.track_id, t.box) for t in self.tracks.values() if t.misses == 0]

    def smooth(self, track_id: int, probabilities: np.ndarray) -> np.ndarray:
        """Folds a new probability vector into the track's moving average and returns it."""
        return self.smooth_track(self.tracks.get(track_id), probabilities)

    def smooth_track(self, track: Track | None, probabilities: np.ndarray) -> np.ndarray:
        """`smooth` for a track taken when its frame was searched: the same average even when a
        later frame has ended the track since (its classification may run behind the search)."""
        probabilities = np.asarray(probabilities, dtype=np.float32)
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
