"""Annotations on a frame: a box, label and confidence per face, a bar chart of the seven
probabilities beside it, and the FPS.

Text and panels are sized from each face (a 60 px face in a group photo gets small print, a
400 px face large print) and laid out inside the frame: each probability panel goes to the
first side of its face (right, left, below, above) where it stays inside the frame and off the
other faces and panels, so a group photo stays readable.
"""

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
# What `--overlay` may draw on each face: label and probability bars, the label only, nothing.
OVERLAYS = ("bars", "labels", "none")

Rect = tuple[int, int, int, int]


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


def _overlap(a: Rect, b: Rect) -> int:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, width) * max(0, height)


def _face_unit(box: Sequence[int], frame_shape: Sequence[int]) -> float:
    """Text scale for one face: follows the face's side, within what the frame can hold."""
    side = min(int(box[2]), int(box[3]))
    frame_side = min(int(frame_shape[0]), int(frame_shape[1]))
    return float(np.clip(side / 200.0, 0.3, max(0.3, frame_side / 480.0)))


def draw_faces(frame: np.ndarray, faces: Sequence[Face], fps: float | None = None, overlay: str = "bars") -> np.ndarray:
    """Draws every face (box, and by `overlay` its label and probability bars) and the FPS, in place.

    Args:
        frame: gray, BGR or BGRA uint8 image; annotated in place.
        faces: what `EmotionDetector.detect` returned for this frame.
        fps: frames per second to show in the corner, or None.
        overlay: "bars" (label and bars), "labels" (label only) or "none" (boxes only).

    Returns:
        The same frame.

    Raises:
        ValueError: for an unknown overlay.
    """
    if overlay not in OVERLAYS:
        raise ValueError(f"overlay '{overlay}': expected one of {', '.join(OVERLAYS)}")
    height, width = frame.shape[:2]
    taken: list[Rect] = [tuple(int(v) for v in face.box) for face in faces]
    for face in faces:
        x, y, w, h = (int(v) for v in face.box)
        unit = _face_unit(face.box, frame.shape)
        thickness = max(1, round(unit * 2))
        bgr = UNCERTAIN_COLOR if face.uncertain else LABEL_COLORS.get(face.label, UNCERTAIN_COLOR)
        color = _color(frame, bgr)
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness)
        if overlay == "none":
            continue
        scale = 0.6 * unit
        if face.label is None:
            caption = f"#{face.track_id} no label"
        else:
            caption = f"#{face.track_id} {face.label}{'?' if face.uncertain else ''} {face.confidence:.2f}"
        (text_w, text_h), _ = cv2.getTextSize(caption, FONT, scale, thickness)
        # Above the box when there is room, else just inside its top edge; never off the frame.
        text_y = y - 6 if y - 6 - text_h >= 0 else min(height - 4, y + text_h + 6)
        text_x = int(np.clip(x, 0, max(0, width - text_w)))
        _text(frame, caption, (text_x, text_y), scale, color, thickness)
        taken.append((text_x, text_y - text_h, text_w, text_h + 4))
        if overlay == "bars":
            panel = _place_panel(face, (width, height), taken, unit)
            if panel is not None:
                _draw_bars(frame, face, panel)
                taken.append(panel)
    if fps is not None:
        unit = max(0.3, min(width, height) / 480.0)
        _text(frame, f"{fps:.1f} FPS", (int(8 * unit), int(24 * unit)), 0.55 * unit, _color(frame, (255, 255, 255)),
              max(1, round(unit * 1.5)))
    return frame


def _place_panel(face: Face, frame_size: tuple[int, int], taken: list[Rect], unit: float) -> Rect | None:
    """Where the probability panel of `face` goes: the first side that fits inside the frame
    without covering another face or panel; else the side that covers least; None when the
    frame is too small for any panel."""
    width, height = frame_size
    x, y, w, h = (int(v) for v in face.box)
    rows = max(1, len(face.probabilities))
    row = int(np.clip(round(h / 9), 7, 24))
    panel_w, panel_h = int(round(row * 7.5)), row * rows
    if panel_w > width or panel_h > height:
        return None
    gap = max(2, row // 3)
    candidates = [
        (x + w + gap, y),  # right
        (x - gap - panel_w, y),  # left
        (x, y + h + gap),  # below
        (x, y - gap - panel_h),  # above
    ]
    best, best_cost = None, None
    own = (x, y, w, h)
    for left, top in candidates:
        inside = 0 <= left and left + panel_w <= width and 0 <= top and top + panel_h <= height
        left, top = int(np.clip(left, 0, width - panel_w)), int(np.clip(top, 0, height - panel_h))
        rect = (left, top, panel_w, panel_h)
        cost = sum(_overlap(rect, other) for other in taken if other != own) + (0 if inside else panel_w * panel_h // 4)
        cost += _overlap(rect, own)
        if cost == 0:
            return rect
        if best_cost is None or cost < best_cost:
            best, best_cost = rect, cost
    return best


def _draw_bars(frame: np.ndarray, face: Face, panel: Rect) -> None:
    """A horizontal bar chart of the probabilities in `panel` (x, y, w, h)."""
    left, top, panel_w, panel_h = panel
    row = panel_h // max(1, len(face.probabilities))
    label_w = int(round(row * 2.4))
    bar_max = max(4, panel_w - label_w - 2)
    text_scale = row / 34.0
    for i, (label, probability) in enumerate(face.probabilities.items()):
        row_y = top + i * row
        color = _color(frame, LABEL_COLORS.get(label, UNCERTAIN_COLOR))
        _text(frame, label[:3], (left, row_y + row - 2), text_scale, color, 1)
        # nan_to_num: no bar for a probability a broken model left NaN.
        length = int(round(bar_max * float(np.clip(np.nan_to_num(probability), 0.0, 1.0))))
        if length > 0:
            cv2.rectangle(frame, (left + label_w, row_y + 1), (left + label_w + length, row_y + row - 2), color, -1)
