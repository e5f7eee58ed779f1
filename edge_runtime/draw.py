"""Annotations on a frame: a box, label and confidence per face, a bar chart of the seven
probabilities next to it, and the FPS. Sizes follow the frame, so a 320x240 and a 4K frame
are both readable."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge_runtime.api import Face

# BGR colour per label; labels a model adds beyond these are drawn grey.
LABEL_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (40, 200, 240),
    "neutral": (200, 200, 200),
    "sad": (200, 120, 40),
    "surprise": (40, 140, 250),
}
UNCERTAIN_COLOR = (140, 140, 140)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _color(frame: np.ndarray, bgr: tuple[int, int, int]) -> tuple[int, ...]:
    # A grey frame takes one intensity; a BGRA frame needs an opaque alpha.
    if frame.ndim == 2 or frame.shape[2] == 1:
        return (int(round(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2])),)
    if frame.shape[2] == 4:
        return (*bgr, 255)
    return bgr


def _text(frame: np.ndarray, text: str, origin: tuple[int, int], scale: float, color, thickness: int) -> None:
    # A dark outline under the text keeps it readable on any background.
    cv2.putText(frame, text, origin, FONT, scale, _color(frame, (0, 0, 0)), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, FONT, scale, color, thickness, cv2.LINE_AA)


def draw_faces(frame: np.ndarray, faces: Sequence[Face], fps: float | None = None) -> np.ndarray:
    """Draws every face (box, label, confidence, probability bars) and the FPS, in place.

    Args:
        frame: gray, BGR or BGRA uint8 image; annotated in place.
        faces: what `EmotionDetector.detect` returned for this frame.
        fps: frames per second to show in the corner, or None.

    Returns:
        The same frame.
    """
    height, width = frame.shape[:2]
    unit = max(0.3, min(width, height) / 480.0)
    scale, thickness = 0.55 * unit, max(1, round(unit * 1.5))
    for face in faces:
        x, y, w, h = (int(v) for v in face.box)
        bgr = UNCERTAIN_COLOR if face.uncertain else LABEL_COLORS.get(face.label, UNCERTAIN_COLOR)
        color = _color(frame, bgr)
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness)
        caption = f"#{face.track_id} {face.label}{'?' if face.uncertain else ''} {face.confidence:.2f}"
        (_, text_h), _ = cv2.getTextSize(caption, FONT, scale, thickness)
        text_y = y - 6 if y - 6 - text_h >= 0 else min(height - 4, y + h + text_h + 6)
        _text(frame, caption, (x, text_y), scale, color, thickness)
        _draw_bars(frame, face, (x, y, w, h), unit)
    if fps is not None:
        _text(frame, f"{fps:.1f} FPS", (int(8 * unit), int(24 * unit)), scale, _color(frame, (255, 255, 255)), thickness)
    return frame


def _draw_bars(frame: np.ndarray, face: Face, box: tuple[int, int, int, int], unit: float) -> None:
    """A small horizontal bar chart of the probabilities beside the box (right, else left)."""
    height, width = frame.shape[:2]
    x, y, w, _ = box
    row = max(6, int(round(11 * unit)))
    bar_max = max(20, int(round(60 * unit)))
    label_w = int(round(30 * unit))
    chart_w = label_w + bar_max + 4
    left = x + w + 6 if x + w + 6 + chart_w <= width else x - 6 - chart_w
    if left < 0:
        left = min(max(0, x + 2), max(0, width - chart_w))
    top = max(0, min(y, height - row * len(face.probabilities)))
    text_scale = 0.32 * unit
    for i, (label, probability) in enumerate(face.probabilities.items()):
        row_y = top + i * row
        color = _color(frame, LABEL_COLORS.get(label, UNCERTAIN_COLOR))
        _text(frame, label[:3], (left, row_y + row - 2), text_scale, color, 1)
        length = int(round(bar_max * float(np.clip(probability, 0.0, 1.0))))
        if length > 0:
            cv2.rectangle(frame, (left + label_w, row_y + 1), (left + label_w + length, row_y + row - 2), color, -1)
