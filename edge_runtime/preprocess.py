"""The one preprocessing function: a face crop becomes model input.

Training (`fer_data.fer2013` decodes FER-2013 with `face_to_gray48`; `trainer` scales with
`gray48_to_input`) and every runtime backend call `faces_to_batch` (or its two halves),
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


def to_bgr(frame: np.ndarray, copy: bool = True) -> np.ndarray:
    """A 3-channel uint8 BGR image of a gray, BGR or BGRA frame (what YuNet, video writers and
    windows take). `copy=False` returns a BGR uint8 frame itself, for a reader that does not draw."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame.copy() if copy else frame


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


def crop_region(box: Sequence[float], scale: float, shift: tuple[float, float], square: bool) -> tuple[float, float, float, float]:
    """Centre (x, y) and size (w, h) of the crop a detector box maps to (see `CropMapping`)."""
    x, y, w, h = (float(v) for v in box)
    centre_x, centre_y = x + w / 2 + shift[0] * w, y + h / 2 + shift[1] * h
    if square:
        side = scale * max(w, h)
        return centre_x, centre_y, side, side
    return centre_x, centre_y, scale * w, scale * h


def eye_angle(landmarks: Sequence[Sequence[float]]) -> float:
    """Degrees the line from the right eye (image left) to the left eye dips below horizontal."""
    (right_x, right_y), (left_x, left_y) = landmarks[0][:2], landmarks[1][:2]
    return float(np.degrees(np.arctan2(left_y - right_y, left_x - right_x)))


def crop_mapped(frame: np.ndarray, region: tuple[float, float, float, float], angle: float = 0.0) -> np.ndarray:
    """Cuts a (centre x, centre y, w, h) region out of a frame, rotated by `angle` degrees.

    A level region is sliced from the frame; where it passes the frame's edge the missing
    part repeats the edge pixels (the face keeps its shape rather than being stretched). A
    region with no pixel inside the frame gives an empty crop. A rotated region is sampled
    with one affine warp, so the eyes come out level.
    """
    centre_x, centre_y, w, h = region
    frame_h, frame_w = frame.shape[:2]
    out_w, out_h = max(1, int(round(w))), max(1, int(round(h)))
    if angle == 0.0:
        x0, y0 = int(round(centre_x - w / 2)), int(round(centre_y - h / 2))
        x1, y1 = x0 + out_w, y0 + out_h
        top, bottom = min(max(0, y0), frame_h), max(0, min(frame_h, y1))
        left, right = min(max(0, x0), frame_w), max(0, min(frame_w, x1))
        inner = frame[top:bottom, left:right]
        if inner.size == 0 or (x0 >= 0 and y0 >= 0 and x1 <= frame_w and y1 <= frame_h):
            return inner
        pads = (max(0, -y0), max(0, y1 - frame_h), max(0, -x0), max(0, x1 - frame_w))
        return cv2.copyMakeBorder(inner, *pads, cv2.BORDER_REPLICATE)
    if not (0 <= centre_x < frame_w and 0 <= centre_y < frame_h):
        return frame[0:0, 0:0]
    matrix = cv2.getRotationMatrix2D((centre_x, centre_y), angle, 1.0)
    matrix[0, 2] += out_w / 2 - centre_x
    matrix[1, 2] += out_h / 2 - centre_y
    return cv2.warpAffine(frame, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
