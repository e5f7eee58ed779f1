"""The one preprocessing function: a face crop becomes model input.

Training (`trainer.data`) and every runtime backend call `faces_to_batch` (or its two halves),
so the pixels a model saw in training are the pixels it sees at the edge. The seed project
trained on pixels scaled by 1/255 but fed raw 0-255 pixels at display time; here the scale
comes from the model's metadata and is applied in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

FACE_SIZE = 48


@dataclass(frozen=True)
class InputSpec:
    """How a 48x48 grayscale face is turned into the numbers a model expects.

    Attributes:
        size: side of the square input, in pixels.
        scale: model_input = pixel * scale + offset (pixel in 0-255).
        offset: see `scale`.
        crop_margin: fraction of a detected box's side added on every side before cropping,
            so that a detector's box matches how the training faces were framed.
    """

    size: int = FACE_SIZE
    scale: float = 1.0
    offset: float = 0.0
    crop_margin: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        known = {k: data[k] for k in ("size", "scale", "offset", "crop_margin") if k in data}
        return cls(**known)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Returns a 2-D uint8 grayscale view of a gray, BGR or BGRA image.

    Raises:
        ValueError: for an empty image or one with an unsupported channel count.
    """
    if image is None or image.size == 0:
        raise ValueError("empty image")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")


def face_to_gray48(face: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Turns one face crop (any size, gray/BGR/BGRA) into a size x size uint8 grayscale face."""
    gray = to_gray(face)
    if gray.shape == (size, size):
        return gray
    # INTER_AREA averages when shrinking (a webcam face is larger than 48 px): no aliasing.
    interpolation = cv2.INTER_AREA if min(gray.shape) >= size else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)


def gray48_to_input(faces: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Scales a uint8 batch (N, size, size) into float32 model input (N, size, size, 1)."""
    batch = faces.astype(np.float32)
    if spec.scale != 1.0:
        batch *= np.float32(spec.scale)
    if spec.offset != 0.0:
        batch += np.float32(spec.offset)
    return batch[..., np.newaxis]


def faces_to_batch(faces: Sequence[np.ndarray] | Iterable[np.ndarray], spec: InputSpec) -> np.ndarray:
    """The preprocessing function: face crops to a float32 (N, size, size, 1) model batch."""
    gray = [face_to_gray48(face, spec.size) for face in faces]
    if not gray:
        return np.zeros((0, spec.size, spec.size, 1), np.float32)
    return gray48_to_input(np.stack(gray), spec)


def expand_box(box: Sequence[int], margin: float, frame_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """Grows an (x, y, w, h) box by `margin` of its side on every side, clamped to the frame."""
    x, y, w, h = (int(v) for v in box)
    frame_h, frame_w = int(frame_shape[0]), int(frame_shape[1])
    dx, dy = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(frame_w, x + w + dx), min(frame_h, y + h + dy)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def crop_face(frame: np.ndarray, box: Sequence[int], margin: float) -> np.ndarray:
    """Cuts the face for `box` (with margin, clamped) out of a frame."""
    x, y, w, h = expand_box(box, margin, frame.shape)
    return frame[y : y + h, x : x + w]
