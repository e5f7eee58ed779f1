"""Shot cuts: where a video jumps to another picture, every face track must end.

A track is kept by box overlap, so when an edited video cuts from one person to another at
the same place, the new face would inherit the old one's id and smoothed probabilities. The
test is in the manner of PySceneDetect's content detector, the well-known one: the mean absolute
change between consecutive frames, on a small copy, against a threshold. It differs in what it
compares: brightness with each frame's mean brightness taken out, where PySceneDetect compares
hue, saturation and value. Hue and saturation are noise in a dark, grey, noisy frame (a webcam
at night scores as a cut on every frame there), and an exposure step is no change of picture.
"""

from __future__ import annotations

import cv2
import numpy as np

# Mean absolute change (0-255) that is a cut: between what frames of one shot change by (camera
# noise, exposure flicker, moving faces) and what a change of scene does, with a margin on each
# side (docs/edge-run.md, "Tracks: one person each", tools/measure_track_identity.py).
DEFAULT_CUT_THRESHOLD = 15.0
# Size of the copy the frames are compared on: enough for a change of picture, and cheap to
# make; shrinking also averages away part of the sensor noise.
COMPARE_SIZE = (160, 120)


class CutDetector:
    """Says whether each frame starts a new shot.

    Args:
        threshold: least mean change of brightness (0-255, each frame's mean taken out) that
            is a cut; 0 turns cut detection off.

    Raises:
        ValueError: for a threshold outside [0, 255].
    """

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 255.0:
            raise ValueError(f"cut_threshold {threshold}: expected a mean change in [0, 255] (0: off)")
        self.threshold = float(threshold)
        self._previous: np.ndarray | None = None
        self._previous_shape: tuple[int, ...] | None = None
        self.last_score = 0.0

    def is_cut(self, frame: np.ndarray) -> bool:
        """True when `frame` differs from the frame before it by `threshold` or more (never for
        the first frame, nor for a frame of another size: the caller starts afresh there)."""
        if self.threshold == 0.0:
            return False
        current = _small_brightness(frame)
        previous, self._previous = self._previous, current
        same_size, self._previous_shape = self._previous_shape == frame.shape[:2], frame.shape[:2]
        if previous is None or not same_size:
            self.last_score = 0.0
            return False
        self.last_score = float(np.abs(current - previous).mean())
        return self.last_score >= self.threshold

    def reset(self) -> None:
        """Forgets the previous frame (a new source)."""
        self._previous, self._previous_shape = None, None
        self.last_score = 0.0


def _small_brightness(frame: np.ndarray) -> np.ndarray:
    """A small float copy of the frame's brightness, less its mean."""
    small = cv2.resize(frame, COMPARE_SIZE, interpolation=cv2.INTER_LINEAR)
    if small.ndim == 3 and small.shape[2] == 4:
        small = cv2.cvtColor(small, cv2.COLOR_BGRA2GRAY)
    elif small.ndim == 3 and small.shape[2] == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    small = small.reshape(COMPARE_SIZE[1], COMPARE_SIZE[0]).astype(np.float32)
    return small - small.mean()
