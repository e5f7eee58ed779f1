"""Test scenes: real 48x48 faces pasted, upscaled, into frames at known boxes
(`build_scene`: 640x480 frames of FER-2013 faces of 144-192 px, with clearance between them).

The demo clip, the crop-margin measurement and the tests build frames this way, so the
ground truth (where each face is and which label it has) is exact. Haar finds FER-2013 faces
only when they are upscaled well beyond 48 px and surrounded by background, hence the sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.detectors import iou
from fer_data.fer2013 import Split

FRAME_WIDTH, FRAME_HEIGHT = 640, 480
FRAME_SIZE = (FRAME_WIDTH, FRAME_HEIGHT)
FACE_SIDES = (144, 192)
CLEARANCE = 24  # pixels kept free around every pasted face
PLACEMENT_TRIES = 200


@dataclass(frozen=True)
class SceneSettings:
    """How the scene is built and scored.

    Attributes:
        frames: number of frames.
        faces_per_frame: (fewest, most) faces in one frame.
        face_sides: (smallest, largest) side of a pasted face, in pixels.
        seed: random seed for faces, sizes, places and background.
        iou_threshold: a detection matches a true face at this IoU or more.
        width, height: frame size.
        max_tilt: faces are turned by a random angle within +-max_tilt degrees (0: upright).
    """

    frames: int = 200
    faces_per_frame: tuple[int, int] = (1, 3)
    face_sides: tuple[int, int] = FACE_SIDES
    seed: int = 0
    iou_threshold: float = 0.4
    width: int = FRAME_WIDTH
    height: int = FRAME_HEIGHT
    max_tilt: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.faces_per_frame
        if self.frames < 1 or not 1 <= low <= high:
            raise ValueError(f"frames {self.frames}, faces per frame {low}..{high}: expected frames >= 1 and 1 <= fewest <= most")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"IoU threshold {self.iou_threshold}: expected a value in (0, 1]")


@dataclass
class SceneFrame:
    """One built frame and its truth: boxes (x, y, w, h), label indices, and the source faces' indices."""

    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    labels: list[int]
    face_indices: list[int] = field(default_factory=list)


def place_boxes(rng: np.random.Generator, count: int, sides: tuple[int, int], width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Up to `count` square boxes that keep CLEARANCE from each other and from the edges."""
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(PLACEMENT_TRIES):
        if len(boxes) == count:
            break
        side = int(rng.integers(sides[0], sides[1] + 1))
        if side + 2 * CLEARANCE > min(width, height):
            continue
        x = int(rng.integers(CLEARANCE, width - side - CLEARANCE + 1))
        y = int(rng.integers(CLEARANCE, height - side - CLEARANCE + 1))
        grown = (x - CLEARANCE, y - CLEARANCE, side + 2 * CLEARANCE, side + 2 * CLEARANCE)
        if all(iou(grown, other) == 0.0 for other in boxes):
            boxes.append((x, y, side, side))
    return boxes


def build_scene(split: Split, settings: SceneSettings) -> list[SceneFrame]:
    """The scene's frames; faces come from `split` in a seeded order, none used twice until all were.

    Raises:
        ValueError: for an empty split.
    """
    if len(split) == 0:
        raise ValueError("cannot build a scene from an empty split")
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(split))
    next_face = 0
    frames = []
    for number in range(settings.frames):
        image = background((settings.width, settings.height), seed=settings.seed * 100_003 + number)
        count = int(rng.integers(settings.faces_per_frame[0], settings.faces_per_frame[1] + 1))
        boxes = place_boxes(rng, count, settings.face_sides, settings.width, settings.height)
        labels, indices = [], []
        for x, y, w, h in boxes:
            index = int(order[next_face % len(order)])
            next_face += 1
            angle = float(rng.uniform(-settings.max_tilt, settings.max_tilt)) if settings.max_tilt else 0.0
            paste_face(image, split.images[index], (x, y, w, h), angle)
            labels.append(int(split.labels[index]))
            indices.append(index)
        frames.append(SceneFrame(image, boxes, labels, indices))
    return frames



@dataclass(frozen=True)
class PlacedFace:
    """A face in a frame: its box (x, y, w, h) in frame pixels, label and where it came from."""

    box: tuple[int, int, int, int]
    label: str
    source: str


def background(size: tuple[int, int] = FRAME_SIZE, seed: int = 0) -> np.ndarray:
    """A plain BGR backdrop: a soft vertical gradient, a few blurred shapes and light noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(70, 150, height, dtype=np.float32)[:, None]
    gray = np.repeat(ramp, width, axis=1)
    frame = np.stack([gray * 1.05, gray, gray * 0.9], axis=2)
    for _ in range(6):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(30, 120)), int(rng.integers(20, 80)))
        color = [float(v) for v in rng.integers(60, 190, 3)]
        cv2.ellipse(frame, center, axes, float(rng.integers(0, 180)), 0, 360, color, -1)
    frame = cv2.GaussianBlur(frame, (0, 0), 9)
    frame += rng.normal(0, 3, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def paste_face(frame: np.ndarray, face: np.ndarray, box: Sequence[int], angle: float = 0.0) -> None:
    """Resizes a grayscale face to the box and writes it into a BGR frame, in place.

    With `angle` (degrees, counter-clockwise) the face is pasted turned about the box's centre,
    as a head tilted to one side; the pixels outside the turned square keep the background.
    """
    x, y, w, h = (int(v) for v in box)
    resized = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)
    if angle == 0.0:
        frame[y : y + h, x : x + w] = resized[:, :, None]
        return
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[0, 2] += x
    matrix[1, 2] += y
    turned = cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR)
    cv2.warpAffine(turned, matrix, (frame.shape[1], frame.shape[0]), dst=frame, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)


def read_face(path: str | Path) -> np.ndarray:
    """A 48x48 uint8 grayscale face from an image file.

    Raises:
        ValueError: when the file is not a readable image.
    """
    face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise ValueError(f"{path}: not a readable image")
    return face


# FER-2013's crops were registered automatically, so the face fills anything from about half of
# its crop (a zoomed-out photo) to more than all of it (a close-up whose head a detector frames
# well beyond the crop). A detection on such a face can overlap the crop by IoU 0.2-0.4 and still
# be on that face and nothing else: it is "nested" when nearly all of the smaller box lies
# inside the larger one and their sides differ by at most a factor of two.
NESTED_SHARE = 0.9
NESTED_SIDE_RATIO = 2.0


def is_nested(truth: Sequence[float], found: Sequence[float]) -> bool:
    """True when one box lies (NESTED_SHARE of its area) inside the other and their sides are
    within NESTED_SIDE_RATIO of each other: the same face, framed tighter or looser."""
    area_truth, area_found = truth[2] * truth[3], found[2] * found[3]
    if area_truth <= 0 or area_found <= 0:
        return False
    side_ratio = (max(area_truth, area_found) / min(area_truth, area_found)) ** 0.5
    if side_ratio > NESTED_SIDE_RATIO:
        return False
    width = min(truth[0] + truth[2], found[0] + found[2]) - max(truth[0], found[0])
    height = min(truth[1] + truth[3], found[1] + found[3]) - max(truth[1], found[1])
    inside = max(0.0, width) * max(0.0, height)
    return inside >= NESTED_SHARE * min(area_truth, area_found)


def match_boxes(truth: Sequence[Sequence[int]], found: Sequence[Sequence[int]], min_iou: float = 0.3,
                nested: bool = False) -> list[int | None]:
    """For each true box, the index of the found box that overlaps it most (IoU >= min_iou, or
    any IoU when `nested` and the boxes are nested, see `is_nested`), or None."""
    def overlap(true_box, box) -> float | None:
        value = iou(true_box, box)
        return value if value >= min_iou or (nested and value > 0.0 and is_nested(true_box, box)) else None

    result: list[int | None] = []
    taken: set[int] = set()
    for true_box in truth:
        scores = [(value, i) for i, box in enumerate(found) if i not in taken and (value := overlap(true_box, box)) is not None]
        best = max(scores, default=(0.0, None))[1]
        if best is not None:
            taken.add(best)
        result.append(best)
    return result


def demo_faces() -> list[tuple[str, np.ndarray]]:
    """(label, grayscale face pixels) of every face in the bundled demo clip, cut from the
    first frame each face appears in, at the size it is shown (150-190 px).

    Raises:
        ValueError: when the demo clip or its ground truth cannot be read.
    """
    import json

    from edge_runtime.sources.open_source import demo_clip_path

    clip = demo_clip_path()
    truth_path = clip.with_suffix(".json")
    if not truth_path.is_file():
        raise ValueError(f"{truth_path}: the demo clip's ground truth is missing")
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    capture = cv2.VideoCapture(str(clip))
    faces: dict[str, np.ndarray] = {}
    try:
        for record in truth["frames"]:
            ok, frame = capture.read()
            if not ok:
                break
            for face in record["faces"]:
                if face["label"] not in faces:
                    x, y, w, h = face["box"]
                    faces[face["label"]] = cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
    finally:
        capture.release()
    if not faces:
        raise ValueError(f"{clip}: no faces could be read from the demo clip")
    return list(faces.items())
