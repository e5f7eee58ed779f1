"""`edge-bench scene`: the full runtime pipeline on frames with known faces.

Frames of 640x480 are built by pasting FER-2013 faces from an evaluation split (PublicTest by
default, so never a face the model trained on), upscaled to 144-192 px, at known boxes on a
smooth random background, with clearance between faces and from the frame's edges. The
runtime (`EmotionDetector`: the chosen detector, its crop mapping, one model call) then runs on
every frame, and the crop each detection leads to is matched to the truth by IoU, or as a nested
box (the same face framed tighter or looser than its FER crop, see
`benchmarks.scenes.is_nested`). Reported: detection recall (also by IoU alone), label accuracy
on the detected faces, end-to-end accuracy (detected and correctly labelled over all faces), the
model's accuracy on the same faces' own 48x48 crops, so the cost of going through a detector can
be read directly, and detections that match no face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.scenes import background, match_boxes, paste_face
from edge_runtime.detectors import iou
from edge_runtime.labels import NUM_CLASSES
from trainer.batches import predict_in_batches
from trainer.fer2013 import Split

FRAME_WIDTH, FRAME_HEIGHT = 640, 480
FACE_SIDES = (144, 192)
CLEARANCE = 24  # pixels kept free around every pasted face
PLACEMENT_TRIES = 200
STRAY_IOU = 0.1  # a detection overlapping every true face less than this is on the background


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


@dataclass
class SceneScore:
    """Counts over the whole scene."""

    faces: int = 0
    detected: int = 0
    detected_by_iou: int = 0
    correct_detected: int = 0
    false_positives: int = 0
    stray: int = 0
    frames: int = 0
    seconds: float = 0.0
    detected_face_indices: list[int] = field(default_factory=list)

    def figures(self) -> dict:
        return {
            "faces": self.faces,
            "frames": self.frames,
            "recall": self.detected / self.faces if self.faces else 0.0,
            # The same with IoU alone (a nested detection of a loosely or tightly cropped face
            # counts as a miss and a false positive): the stricter figure, for comparison.
            "recall_iou_only": self.detected_by_iou / self.faces if self.faces else 0.0,
            "label_accuracy": self.correct_detected / self.detected if self.detected else 0.0,
            # Unmatched detections that overlap no true face at all (background); a detection
            # that overlaps a face but matches none (a second box on it, or one framed neither
            # by IoU nor nested) is a false positive above, not a stray one.
            "stray_detections_per_frame": self.stray / self.frames if self.frames else 0.0,
            "end_to_end_accuracy": self.correct_detected / self.faces if self.faces else 0.0,
            "false_positives_per_frame": self.false_positives / self.frames if self.frames else 0.0,
            "fps": self.frames / self.seconds if self.seconds > 0 else 0.0,
        }


def score_scene(frames: list[SceneFrame], detect, labels: tuple[str, ...], threshold: float, clock=time.perf_counter,
                on_frame=None, crop_box=None) -> SceneScore:
    """Runs `detect(frame) -> list[Face]` on every frame and scores it against the truth.

    Args:
        frames: the scene.
        detect: the pipeline (EmotionDetector.detect, or a fake).
        labels: the model's label order (a Face's label is matched to the truth by name).
        threshold: IoU for a match; a detection nested in a true face's crop (or holding it,
            see `benchmarks.scenes.is_nested`) matches it too.
        clock: seconds; FPS counts only the time inside `detect`.
        on_frame: called with (frame, faces) after each frame (e.g. to write a video).
        crop_box: maps a face's detector box to the region the runtime crops for the model
            (`EmotionDetector.crop_box`). The truth boxes are FER-2013 crops, so a detection
            is matched by what the model reads, not by the detector's own framing (YuNet's box
            is a tighter, taller face box than a FER crop). None: the box itself.
    """
    score = SceneScore()
    for frame in frames:
        start = clock()
        faces = detect(frame.image)
        score.seconds += clock() - start
        score.frames += 1
        score.faces += len(frame.boxes)
        regions = [crop_box(face.box) if crop_box else face.box for face in faces]
        found = match_boxes(frame.boxes, regions, threshold, nested=True)
        matches = [(ti, fi) for ti, fi in enumerate(found) if fi is not None]
        score.detected += len(matches)
        score.detected_by_iou += sum(1 for fi in match_boxes(frame.boxes, regions, threshold) if fi is not None)
        score.false_positives += len(faces) - len(matches)
        matched = {fi for _, fi in matches}
        score.stray += sum(
            1 for fi, box in enumerate(regions) if fi not in matched and all(iou(box, truth) < STRAY_IOU for truth in frame.boxes)
        )
        for ti, fi in matches:
            score.detected_face_indices.append(frame.face_indices[ti] if frame.face_indices else -1)
            if faces[fi].label == labels[frame.labels[ti]]:
                score.correct_detected += 1
        if on_frame is not None:
            on_frame(frame, faces)
    return score


def crop_accuracy(predict_faces, split: Split, indices: list[int]) -> float:
    """The model's accuracy on the data set's own 48x48 crops of the faces at `indices`."""
    if not indices:
        return 0.0
    chosen = np.asarray(indices)
    probabilities = predict_in_batches(lambda faces: predict_faces(list(faces)), split.images[chosen], 256, NUM_CLASSES)
    return float((probabilities.argmax(axis=1) == split.labels[chosen]).mean())
