"""OpenCV's Haar cascade (the seed's detector), run on a downscaled grayscale copy.

The cascade is slow on a full frame (docs/performance.md, "Detector in the loop"), so it runs
on a copy shrunk by `detect_scale` and its boxes are scaled back to source pixels. Its settings
and their defaults are its row in `edge_runtime.detectors.table`.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.detectors.base import Detection, DetectorError, check_settings, scale_box, shrink_for_detection
from edge_runtime.detectors.table import HAAR
from edge_runtime.preprocess import to_gray

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


def default_cascade_path() -> Path:
    """The frontal-face cascade shipped inside opencv-python(-headless) 4.x.

    Raises:
        DetectorError: when the installed OpenCV ships no cascades (OpenCV 5 moved them out).
    """
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise DetectorError(
            f"OpenCV {cv2.__version__} ships no Haar cascades; install 'opencv-python-headless>=4.8,<5' or pass --cascade PATH"
        )
    return Path(folder) / DEFAULT_CASCADE


class HaarDetector:
    """Finds frontal faces with a Haar cascade.

    Settings left None take their defaults from the detector's table row (`table.HAAR`).

    Args:
        cascade_path: cascade XML file; None for OpenCV's `haarcascade_frontalface_default.xml`.
        scale_factor: image pyramid step (> 1, see `edge_runtime.limits.HAAR_SCALE_FACTOR`);
            larger is faster and misses more faces.
        min_neighbors: overlapping hits a detection needs; larger gives fewer false faces.
        min_size: smallest face side to report, in source pixels.
        detect_scale: the cascade runs on a copy resized by this factor (at most 1).

    Raises:
        DetectorError: for a missing or invalid cascade file or an out-of-range setting.
    """

    name = HAAR.name  # its row names it

    def __init__(
        self,
        cascade_path: str | os.PathLike | None = None,
        scale_factor: float | None = None,
        min_neighbors: int | None = None,
        min_size: int | None = None,
        detect_scale: float | None = None,
    ) -> None:
        settings = HAAR.filled(scale_factor=scale_factor, min_neighbors=min_neighbors, min_size=min_size, detect_scale=detect_scale)
        scale_factor, min_neighbors, min_size, detect_scale = settings.values()
        check_settings(scale_factor=scale_factor, min_neighbors=min_neighbors, min_size=min_size, detect_scale=detect_scale)
        path = Path(cascade_path) if cascade_path is not None else default_cascade_path()
        if not path.is_file():
            raise DetectorError(f"{path}: no such cascade file; pass an OpenCV Haar cascade XML (e.g. {DEFAULT_CASCADE})")
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # a malformed XML surfaces as a SystemError from the binding
            self.cascade = None
        if self.cascade is None or self.cascade.empty():
            raise DetectorError(f"{path}: not an OpenCV Haar cascade XML file; pass one such as {DEFAULT_CASCADE}")
        self.model_path = path
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.detect_scale = float(detect_scale)

    @classmethod
    def from_settings(cls, row, settings) -> HaarDetector:
        """The detector a table row and a `DetectorSettings` describe (see `DetectorInfo.build`)."""
        # None fields take the row's defaults in __init__, the one place they are filled in.
        return cls(settings.cascade, settings.scale_factor, settings.min_neighbors, settings.min_size, settings.detect_scale)

    def detect(self, frame: np.ndarray, scale: float | None = None) -> list[Detection]:
        """Faces in the source frame's pixels, left to right (score None: a cascade gives none).

        Args:
            frame: a gray, BGR or BGRA image of any size.
            scale: the factor of the copy searched, (0, 1], for this frame only (None: `detect_scale`).
        """
        gray = to_gray(frame)
        height, width = gray.shape
        small, scale_x, scale_y = shrink_for_detection(gray, self.detect_scale if scale is None else scale)
        min_side = max(1, round(self.min_size / scale_x))
        if min(small.shape) < min_side:
            return []
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = [scale_box(box, scale_x, scale_y, width, height) for box in np.asarray(found).reshape(-1, 4)]
        return [Detection(box) for box in sorted((b for b in boxes if b[2] > 0 and b[3] > 0), key=lambda b: (b[0], b[1]))]
