"""What every face detector returns, and the geometry shared by the detectors and the tracker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_runtime.limits import DETECT_SCALE, HAAR_MIN_NEIGHBORS, HAAR_SCALE_FACTOR, MIN_FACE_SIZE, SCORE_THRESHOLD

Box = tuple[int, int, int, int]
Point = tuple[float, float]


class DetectorError(ValueError):
    """A face detector cannot be built; the message names the file or setting and the fix."""


# The bounds of the `edge-run` options: no API caller can pass a value that hangs a detector.
SETTING_BOUNDS = {
    "detect_scale": DETECT_SCALE,
    "min_size": MIN_FACE_SIZE,
    "score_threshold": SCORE_THRESHOLD,
    "scale_factor": HAAR_SCALE_FACTOR,
    "min_neighbors": HAAR_MIN_NEIGHBORS,
}


def check_settings(**settings: object) -> None:
    """Checks detector settings by name against SETTING_BOUNDS; None means "the default".

    Raises:
        DetectorError: the first setting outside its bound, named, with the bound.
    """
    for name, value in settings.items():
        problem = SETTING_BOUNDS[name].problem(name, value) if value is not None else ""
        if problem:
            raise DetectorError(problem)


@dataclass(frozen=True)
class Detection:
    """One face found in one frame.

    Attributes:
        box: (x, y, w, h) in the source frame's pixels.
        score: the detector's confidence in [0, 1]; None when it gives none (Haar, a bare
            box from a custom detector, a whole image classified without detection).
        landmarks: five points in source pixels (right eye, left eye, nose tip, right and
            left mouth corner, as seen in the image: "right eye" is the subject's right eye,
            on the image's left) where the detector gives them, else None.
    """

    box: Box
    score: float | None = None
    landmarks: tuple[Point, ...] | None = None


def as_detection(found: object) -> Detection:
    """A Detection from a Detection or a bare (x, y, w, h) box (what a custom detector may return)."""
    if isinstance(found, Detection):
        return found
    x, y, w, h = (int(v) for v in found)  # type: ignore[union-attr]
    return Detection((x, y, w, h))


def scale_box(box: Sequence[float], scale_x: float, scale_y: float, width: int, height: int) -> Box:
    """A box found on a resized copy, in the source frame's pixels, clamped to the frame."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, round(x * scale_x)), max(0, round(y * scale_y))
    x1, y1 = min(width, round((x + w) * scale_x)), min(height, round((y + h) * scale_y))
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def photo_scale(shape: Sequence[int], longest_side: int) -> float:
    """The detection scale that brings a photo's longer side down to `longest_side` (never up)."""
    return min(1.0, longest_side / max(shape[0], shape[1]))


def shrink_for_detection(image: np.ndarray, detect_scale: float) -> tuple[np.ndarray, float, float]:
    """The copy a detector runs on, and the factors that map its pixels back to the source."""
    import cv2

    height, width = image.shape[:2]
    if detect_scale >= 1.0:
        return image, 1.0, 1.0
    small_size = (max(1, round(width * detect_scale)), max(1, round(height * detect_scale)))
    # INTER_AREA averages pixels when shrinking: no aliasing for the detector to trip on.
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    return small, width / small_size[0], height / small_size[1]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    inter_w = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    inter_h = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    return float(inter / (aw * ah + bw * bh - inter))
