"""Annotations on a frame: a box, label and confidence per face, a bar chart of the seven
probabilities beside it, and the FPS.

Text and panels are sized from each face (a 60 px face in a group photo gets small print, a
400 px face large print) and laid out by `layout_overlay`, a pure function of the boxes: each
probability panel goes to the first side of its face (right, left, below, above) where it stays
inside the frame and covers no face, no caption and no other panel; where no side has room it
is shrunk, and where even the smallest panel fits nowhere that face gets its caption only. So
an annotated group photo never hides a face.

An image under MIN_ANNOTATED_SIDE on its shorter side (a 48x48 face crop classified whole)
gets its box only: text at that size cannot be read and would cover the face. Its label is in
the records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.pipeline.emotion_detector import Face

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

# Below this shorter side (pixels) an image gets no text: a caption would be unreadable and
# cover the face (FER-2013 crops are 48x48).
MIN_ANNOTATED_SIDE = 96
# Bar-row heights in pixels: the three-letter names are unreadable below MIN_ROW.
MIN_ROW, MAX_ROW = 7, 24
PANEL_ASPECT = 7.5  # panel width per row height: a name, then a bar as long as the probability

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceLayout:
    """Where one face's annotations go, as (x, y, w, h) rectangles.

    Attributes:
        caption: the label text, or None when the frame is too small for legible text.
        panel: the probability bars, or None (no room anywhere, or no bars asked for).
    """

    caption: Rect | None
    panel: Rect | None


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


def overlap(a: Rect, b: Rect) -> int:
    """The area two (x, y, w, h) rectangles share (0 when they only touch)."""
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
    boxes = [_int_box(face.box) for face in faces]
    units = [_face_unit(box, frame.shape) for box in boxes]
    captions = [_caption(face) for face in faces]
    metrics = [_caption_metrics(text, unit) for text, unit in zip(captions, units)]
    # A caption's rectangle runs from the top of its tallest letter to the bottom of its deepest.
    caption_sizes = [(text_w, text_h + depth) for text_w, text_h, depth in metrics] if overlay != "none" else None
    rows = max((len(face.probabilities) for face in faces), default=1)
    layouts = layout_overlay(boxes, (width, height), caption_sizes, rows=rows, bars=overlay == "bars")
    for face, box, unit, caption, (_, _, depth), place in zip(faces, boxes, units, captions, metrics, layouts):
        x, y, w, h = box
        thickness = _thickness(unit)
        bgr = UNCERTAIN_COLOR if face.uncertain else LABEL_COLORS.get(face.label, UNCERTAIN_COLOR)
        color = _color(frame, bgr)
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness)
        if place.caption is not None:
            left, top, _, caption_h = place.caption
            _text(frame, caption, (left, top + caption_h - depth), _caption_scale(unit), color, thickness)
        if place.panel is not None:
            _draw_bars(frame, face, place.panel)
    if fps is not None:
        unit = max(0.3, min(width, height) / 480.0)
        _text(frame, f"{fps:.1f} FPS", (int(8 * unit), int(24 * unit)), 0.55 * unit, _color(frame, (255, 255, 255)),
              max(1, round(unit * 1.5)))
    return frame


def layout_overlay(boxes: Sequence[Rect], frame_size: tuple[int, int], caption_sizes: Sequence[tuple[int, int]] | None = None,
                   rows: int = 7, bars: bool = True) -> list[FaceLayout]:
    """Where each face's caption and probability panel go; nothing is drawn.

    Captions sit above their box (inside its top edge when the frame ends there). Then each
    face in turn gets the first panel, largest first, on its right, left, below or above that
    lies inside the frame and overlaps no face box, no caption and no panel placed before it;
    a face that no panel fits gets none (its caption still says its label).

    Args:
        boxes: the faces' (x, y, w, h) boxes.
        frame_size: (width, height) of the frame.
        caption_sizes: (width, height) of each face's caption text; None: no captions.
        rows: bars in a panel (one per label).
        bars: False for no panels at all.

    Returns:
        One FaceLayout per box, in the same order; all empty for a frame under
        MIN_ANNOTATED_SIDE on its shorter side.
    """
    if min(frame_size) < MIN_ANNOTATED_SIDE:
        return [FaceLayout(None, None) for _ in boxes]
    sizes = caption_sizes if caption_sizes is not None else [None] * len(boxes)
    captions = [None if size is None else _place_caption(box, size, frame_size) for box, size in zip(boxes, sizes)]
    obstacles = [*boxes, *(caption for caption in captions if caption is not None)]
    panels: list[Rect | None] = []
    for box in boxes:
        panel = _place_panel(box, frame_size, rows, obstacles) if bars else None
        if panel is not None:
            obstacles.append(panel)
        panels.append(panel)
    return [FaceLayout(caption, panel) for caption, panel in zip(captions, panels)]


def _place_caption(box: Rect, size: tuple[int, int], frame_size: tuple[int, int]) -> Rect | None:
    """The caption's rectangle: above the box when there is room, else just inside its top
    edge; never off the frame; None when the frame is narrower or lower than the text."""
    width, height = frame_size
    text_w, text_h = size
    if text_w > width or text_h > height:
        return None
    x, y, _, _ = box
    top = y - 2 - text_h if y - 2 - text_h >= 0 else min(height - text_h, y + 2)
    return int(np.clip(x, 0, width - text_w)), int(top), int(text_w), int(text_h)


def _place_panel(box: Rect, frame_size: tuple[int, int], rows: int, obstacles: Sequence[Rect]) -> Rect | None:
    """The first panel for `box`, largest row height first, that lies inside the frame and
    overlaps none of `obstacles`; None when no size fits on any side."""
    for row in _row_heights(box[3]):
        panel_size = (int(round(row * PANEL_ASPECT)), row * max(1, rows))
        gap = max(2, row // 3)
        for rect in _beside(box, panel_size, gap, frame_size):
            if _inside(rect, frame_size) and not any(overlap(rect, other) for other in obstacles):
                return rect
    return None


def _row_heights(face_height: int) -> Iterator[int]:
    """Bar-row heights to try: the one the face's size calls for, then smaller down to MIN_ROW."""
    row = int(np.clip(round(face_height / 9), MIN_ROW, MAX_ROW))
    while row > MIN_ROW:
        yield row
        row = max(MIN_ROW, row * 3 // 4)
    yield MIN_ROW


def _beside(box: Rect, panel_size: tuple[int, int], gap: int, frame_size: tuple[int, int]) -> Iterator[Rect]:
    """The panel right of, left of, below and above the box, each slid along that side (never
    across it, so it stays off its own face) to keep inside the frame where it can."""
    x, y, w, h = box
    panel_w, panel_h = panel_size
    width, height = frame_size
    along_y = max(0, min(y, height - panel_h))
    along_x = max(0, min(x, width - panel_w))
    yield x + w + gap, along_y, panel_w, panel_h
    yield x - gap - panel_w, along_y, panel_w, panel_h
    yield along_x, y + h + gap, panel_w, panel_h
    yield along_x, y - gap - panel_h, panel_w, panel_h


def _inside(rect: Rect, frame_size: tuple[int, int]) -> bool:
    x, y, w, h = rect
    return 0 <= x and 0 <= y and x + w <= frame_size[0] and y + h <= frame_size[1]


def _int_box(box: Sequence[float]) -> Rect:
    x, y, w, h = (int(v) for v in box)
    return x, y, w, h


def _thickness(unit: float) -> int:
    return max(1, round(unit * 2))


def _caption(face: Face) -> str:
    if face.label is None:
        return f"#{face.track_id} no label"
    return f"#{face.track_id} {face.label}{'?' if face.uncertain else ''} {face.confidence:.2f}"


def _caption_scale(unit: float) -> float:
    return 0.6 * unit


def _caption_metrics(text: str, unit: float) -> tuple[int, int, int]:
    """Width, height above the baseline and depth below it of a caption, in pixels."""
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, _caption_scale(unit), _thickness(unit))
    return text_w, text_h, baseline


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
