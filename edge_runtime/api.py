"""The embedding API: frames in, labelled faces out.

    from edge_runtime.api import EmotionDetector

    with EmotionDetector() as detector:          # the bundled model, first installed runtime
        for face in detector.detect(frame):      # a BGR, gray or BGRA numpy image
            print(face.track_id, face.box, face.label, face.confidence)

Per frame: Haar detection on a downscaled grayscale copy (every `detect_every` frames), IoU
tracking, one crop per face with the model's own crop margin, one model call for all faces,
and per-track smoothing of the probabilities.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.backends import Backend, load_backend
from edge_runtime.default_model import resolve_model
from edge_runtime.detector import (
    DEFAULT_DETECT_SCALE,
    DEFAULT_MIN_NEIGHBORS,
    DEFAULT_MIN_SIZE,
    DEFAULT_SCALE_FACTOR,
    Box,
    HaarDetector,
)
from edge_runtime.preprocess import crop_face, faces_to_batch
from edge_runtime.tracker import IoUTracker

DEFAULT_SMOOTH = 0.5
DEFAULT_MIN_CONFIDENCE = 0.4


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    Attributes:
        box: (x, y, w, h) of the detection in source pixels (before the crop margin).
        track_id: id that stays with the face from frame to frame (from 1).
        label: the most probable label after smoothing.
        confidence: its smoothed probability.
        probabilities: label -> smoothed probability, in the model's label order.
        uncertain: True when `confidence` is below the detector's `min_confidence`.
    """

    box: tuple[int, int, int, int]
    track_id: int
    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool


def check_frame(frame: object) -> np.ndarray:
    """Returns `frame` if it is an image the pipeline takes (HxW, HxWx1, HxWx3 or HxWx4).

    Raises:
        ValueError: for anything else, naming what was received.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame is a {type(frame).__name__}; expected a numpy image")
    if frame.size == 0 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"frame has shape {frame.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    return frame


class EmotionDetector:
    """Finds faces in frames and classifies their expression.

    Args:
        model: model file (.onnx, .tflite, .keras); None for the bundled model.
        backend: "onnx", "tflite", "keras" or "auto" (by the file's suffix; without `model`,
            the first installed runtime among onnx, tflite, keras).
        threads: inference threads (None: the runtime's default).
        detect_scale: the cascade runs on a copy resized by this factor.
        detect_every: run the cascade every N frames; in between, the faces found last keep
            their boxes (a face moves little in a few frames at webcam rates) and are
            classified again, so labels stay live at a fraction of the detection cost.
        smooth: weight of the past in the per-track moving average of probabilities, [0, 1).
        min_confidence: faces whose top probability is below this are marked uncertain.
        crop_margin: fraction of the box side added on every side before cropping (negative
            shrinks); None takes the model's metadata `input.crop_margin`.
        scale_factor, min_neighbors, min_size: Haar cascade settings (min_size in source px).
        cascade: cascade XML file; None for OpenCV's frontal-face default.
        detector: any object with `.detect(frame) -> list of (x, y, w, h)`, replacing Haar.
        flip_average: average each face's probabilities with its mirror image's (see
            `Backend.predict`); on by default: +0.5 points on PublicTest for the bundled
            model, for one more model run per face in the same batch.
        verify_model: check the model file against the checksum in its metadata (see
            `edge_runtime.integrity`); False for a model edited on purpose.

    Raises:
        BackendError: the model cannot be loaded (the message names the file and the fix).
        DetectorError: the cascade or a detector setting is invalid.
        ValueError: another setting is out of range.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        backend: str = "auto",
        threads: int | None = None,
        detect_scale: float = DEFAULT_DETECT_SCALE,
        detect_every: int = 1,
        smooth: float = DEFAULT_SMOOTH,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        crop_margin: float | None = None,
        scale_factor: float = DEFAULT_SCALE_FACTOR,
        min_neighbors: int = DEFAULT_MIN_NEIGHBORS,
        min_size: int = DEFAULT_MIN_SIZE,
        cascade: str | os.PathLike | None = None,
        detector=None,
        flip_average: bool = True,
        verify_model: bool = True,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every {detect_every}: expected 1 or more")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence {min_confidence}: expected a probability in [0, 1]")
        if crop_margin is not None and not -0.45 <= crop_margin <= 2.0:
            raise ValueError(f"crop_margin {crop_margin}: expected a fraction of the box side in [-0.45, 2]")
        self.tracker = IoUTracker(smooth=smooth)
        self.detector = detector or HaarDetector(cascade, scale_factor, min_neighbors, min_size, detect_scale)
        self.backend: Backend = load_model(model, backend, threads, verify_model)
        self.labels = tuple(self.backend.labels)
        self.spec = self.backend.metadata.input
        self.crop_margin = float(self.spec.crop_margin if crop_margin is None else crop_margin)
        self.detect_every = int(detect_every)
        self.min_confidence = float(min_confidence)
        self.flip_average = bool(flip_average)
        self.frame_index = 0
        self._frame_shape: tuple[int, int] | None = None
        self.last_timings: dict[str, float] = {"detect": 0.0, "preprocess": 0.0, "infer": 0.0}

    @property
    def model_path(self) -> Path:
        return self.backend.model_path

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in one frame, left to right; call it on consecutive frames of one source.

        Args:
            frame: BGR, BGRA or grayscale uint8 image of any size.

        Raises:
            ValueError: for something that is not an image.
        """
        frame = check_frame(frame)
        timings = {"detect": 0.0, "preprocess": 0.0, "infer": 0.0}
        started = time.perf_counter()
        shape = frame.shape[:2]
        # A frame of another size (a folder of mixed images) invalidates the boxes to reuse.
        if shape != self._frame_shape:
            self.tracker.reset()
            self._frame_shape = shape
            due = True
        else:
            due = self.frame_index % self.detect_every == 0
        if due:
            boxes = self.detector.detect(frame)
            tracked = list(zip(self.tracker.assign(boxes), (tuple(int(v) for v in b) for b in boxes)))
        else:
            tracked = sorted(self.tracker.visible(), key=lambda item: item[1][:2])
        after_detect = time.perf_counter()
        crops = [crop_face(frame, box, self.crop_margin) for _, box in tracked]
        # A box that the margin and the frame's edges leave empty has nothing to classify.
        tracked, crops = [item for item, crop in zip(tracked, crops) if crop.size], [crop for crop in crops if crop.size]
        batch = faces_to_batch(crops, self.spec)
        after_preprocess = time.perf_counter()
        probabilities = self.backend.predict(batch, self.flip_average)
        after_infer = time.perf_counter()
        timings.update(
            detect=after_detect - started, preprocess=after_preprocess - after_detect, infer=after_infer - after_preprocess
        )
        self.last_timings = timings
        self.frame_index += 1
        return [self._face(tid, box, probs) for (tid, box), probs in zip(tracked, probabilities)]

    def _face(self, track_id: int, box: Box, probabilities: np.ndarray) -> Face:
        smoothed = self.tracker.smooth(track_id, probabilities)
        best = int(np.argmax(smoothed))
        confidence = float(smoothed[best])
        return Face(
            box=box,
            track_id=track_id,
            label=self.labels[best],
            confidence=confidence,
            probabilities={label: float(p) for label, p in zip(self.labels, smoothed)},
            uncertain=confidence < self.min_confidence,
        )

    def reset(self) -> None:
        """Forgets tracks and the frame count (call it before frames of another source)."""
        self.tracker.reset()
        self.frame_index = 0
        self._frame_shape = None

    def close(self) -> None:
        """Releases the model's runtime."""
        self.backend.close()

    def __enter__(self) -> EmotionDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_model(
    model: str | os.PathLike | None, backend: str = "auto", threads: int | None = None, verify_model: bool = True
) -> Backend:
    """Loads `model`, or the bundled model when it is None.

    Raises:
        BackendError: one line naming the file and the fix.
    """
    path, backend = resolve_model(model, backend)
    return load_backend(path, backend, threads, verify_model)

