"""`edge-bench scene`: the full runtime pipeline on frames with known faces.

Frames of 640x480 are built (`fer_data.scenes.build_scene`) by pasting FER-2013 faces from an evaluation split (PublicTest by
default, so never a face the model trained on), upscaled to 144-192 px, at known boxes on a
smooth random background, with clearance between faces and from the frame's edges. The
runtime (`EmotionDetector`: the chosen detector, its crop mapping, one model call) then runs on
every frame, and the crop each detection leads to is matched to the truth by IoU, or as a nested
box (the same face framed tighter or looser than its FER crop, see
`fer_data.scenes.is_nested`). Reported: detection recall (also by IoU alone), label accuracy
on the detected faces, end-to-end accuracy (detected and correctly labelled over all faces), the
model's accuracy on the same faces' own 48x48 crops, so the cost of going through a detector can
be read directly, and detections that match no face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.detectors import iou
from edge_runtime.labels import NUM_CLASSES
from fer_data.fer2013 import Split
from fer_data.prediction import predict_in_batches
from fer_data.scenes import SceneFrame, match_boxes

STRAY_IOU = 0.1  # a detection overlapping every true face less than this is on the background


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
            see `fer_data.scenes.is_nested`) matches it too.
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
