"""`edge-bench scene`: the scene builder and the scoring, with a fake pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from benchmarks.scene_bench import crop_accuracy, score_scene
from edge_runtime.detectors import iou
from edge_runtime.labels import LABELS
from fer_data.fer2013 import Split
from fer_data.scenes import SceneSettings, build_scene
from tests.synthetic import synthetic_split
from tests.test_bench_fakes import FakeClock


@dataclass
class FakeFace:
    box: tuple[int, int, int, int]
    label: str


@pytest.fixture(scope="module")
def split() -> Split:
    images, labels = synthetic_split(5, seed=4)
    return Split(images, labels)


def test_scene_is_deterministic_and_faces_fit(split):
    settings = SceneSettings(frames=6, faces_per_frame=(1, 3), seed=7)
    first, second = build_scene(split, settings), build_scene(split, settings)
    for a, b in zip(first, second):
        assert np.array_equal(a.image, b.image) and a.boxes == b.boxes and a.labels == b.labels
    for frame in first:
        assert frame.image.shape == (480, 640, 3)
        assert 1 <= len(frame.boxes) <= 3
        for x, y, w, h in frame.boxes:
            assert 144 <= w == h <= 192
            assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
        assert all(iou(a, b) == 0.0 for i, a in enumerate(frame.boxes) for b in frame.boxes[i + 1 :])
        assert [int(split.labels[i]) for i in frame.face_indices] == frame.labels


def test_faces_are_not_reused_until_all_were_shown(split):
    frames = build_scene(split, SceneSettings(frames=10, faces_per_frame=(2, 2), seed=1))
    used = [i for frame in frames for i in frame.face_indices]
    assert len(set(used[: len(split)])) == min(len(used), len(split))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="faces per frame"):
        SceneSettings(faces_per_frame=(3, 1))
    with pytest.raises(ValueError, match="IoU"):
        SceneSettings(iou_threshold=0.0)


def test_perfect_pipeline_scores_one(split):
    frames = build_scene(split, SceneSettings(frames=5, seed=2))

    def detect(image):
        frame = next(f for f in frames if f.image is image)
        return [FakeFace(box, LABELS[label]) for box, label in zip(frame.boxes, frame.labels)]

    score = score_scene(frames, detect, LABELS, 0.4, clock=FakeClock(tick=0.01))
    figures = score.figures()
    assert figures["recall"] == 1.0 and figures["label_accuracy"] == 1.0 and figures["end_to_end_accuracy"] == 1.0
    assert figures["false_positives_per_frame"] == 0.0
    assert figures["fps"] == pytest.approx(100.0)


def test_missed_shifted_and_wrong_faces_are_counted(split):
    frames = build_scene(split, SceneSettings(frames=1, faces_per_frame=(2, 2), seed=3))
    (first, second), (label_a, label_b) = frames[0].boxes, frames[0].labels
    x, y, w, h = second
    wrong = LABELS[(label_a + 1) % len(LABELS)]

    def detect(image):
        # The first face found but mislabelled; the second found far off (no match); one false face.
        return [FakeFace(first, wrong), FakeFace((x + w, y + h, w, h), LABELS[label_b]), FakeFace((0, 0, 20, 20), "happy")]

    figures = score_scene(frames, detect, LABELS, 0.4).figures()
    assert figures["faces"] == 2
    assert figures["recall"] == 0.5
    assert figures["label_accuracy"] == 0.0
    assert figures["end_to_end_accuracy"] == 0.0
    assert figures["false_positives_per_frame"] == 2.0
    assert figures["stray_detections_per_frame"] == 2.0  # neither overlaps a true face


def test_a_face_framed_otherwise_is_a_false_positive_not_a_stray_one_unless_its_crop_matches(split):
    frames = build_scene(split, SceneSettings(frames=1, faces_per_frame=(1, 1), seed=4))
    ((x, y, w, h),), (label,) = frames[0].boxes, frames[0].labels
    inner = (x + w // 3, y + h // 3, w // 3, h // 3)  # a box around the middle third of the face: IoU 0.11

    def detect(image):
        return [FakeFace(inner, LABELS[label])]

    figures = score_scene(frames, detect, LABELS, 0.4).figures()
    assert figures["recall"] == 0.0 and figures["false_positives_per_frame"] == 1.0
    assert figures["stray_detections_per_frame"] == 0.0

    def tripled(box):  # the runtime's crop of that box: three times its side, same centre
        bx, by, bw, bh = box
        return (bx - bw, by - bh, 3 * bw, 3 * bh)

    figures = score_scene(frames, detect, LABELS, 0.4, crop_box=tripled).figures()
    assert figures["recall"] == 1.0 and figures["end_to_end_accuracy"] == 1.0 and figures["false_positives_per_frame"] == 0.0


@pytest.mark.parametrize(
    "placement, nested",
    [
        ((0.2, 0.2, 0.6), True),  # a zoomed-out photo: the face fills 60% of its FER crop's side
        ((-0.3, -0.3, 1.6), True),  # a close-up: the detector frames the head beyond the crop
        ((0.55, 0.2, 0.6), False),  # a box of the same size hanging out of the crop
        ((0.3, 0.3, 0.4), False),  # too small a part of the crop to say it is the face
    ],
)
def test_a_detection_nested_in_a_loose_or_tight_crop_is_that_face(split, placement, nested):
    frames = build_scene(split, SceneSettings(frames=1, faces_per_frame=(1, 1), seed=4))
    ((x, y, w, h),), (label,) = frames[0].boxes, frames[0].labels
    dx, dy, side = placement
    box = (round(x + dx * w), round(y + dy * h), round(side * w), round(side * h))
    assert iou(box, (x, y, w, h)) < 0.4  # IoU alone would call every one of these a miss

    figures = score_scene(frames, lambda image: [FakeFace(box, LABELS[label])], LABELS, 0.4).figures()
    assert figures["recall_iou_only"] == 0.0
    assert figures["recall"] == (1.0 if nested else 0.0)
    assert figures["false_positives_per_frame"] == (0.0 if nested else 1.0)
    assert figures["end_to_end_accuracy"] == (1.0 if nested else 0.0)


def test_a_nested_box_does_not_take_a_face_an_iou_match_would_get(split):
    frames = build_scene(split, SceneSettings(frames=1, faces_per_frame=(1, 1), seed=4))
    ((x, y, w, h),), (label,) = frames[0].boxes, frames[0].labels
    loose = (x - w // 4, y - h // 4, w * 3 // 2, h * 3 // 2)  # nested, IoU 0.44
    exact = (x, y, w, h)

    figures = score_scene(frames, lambda image: [FakeFace(loose, "happy"), FakeFace(exact, LABELS[label])], LABELS, 0.4).figures()
    assert figures["recall"] == figures["recall_iou_only"] == 1.0
    assert figures["end_to_end_accuracy"] == 1.0  # the best-overlapping box is the one scored
    assert figures["false_positives_per_frame"] == 1.0


def test_crop_accuracy_on_the_faces_own_crops(split):
    def predict_faces(faces, flip_average=False):
        return np.eye(len(LABELS))[[int(split.labels[0])] * len(faces)]

    indices = [0, 1, 2]
    expected = float(np.mean(split.labels[indices] == split.labels[0]))
    assert crop_accuracy(predict_faces, split, indices) == pytest.approx(expected)
    assert crop_accuracy(predict_faces, split, []) == 0.0
