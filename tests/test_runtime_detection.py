"""Face detection, tracking, smoothing and drawing (no model needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.detectors import DetectorError, iou
from edge_runtime.detectors.haar import HaarDetector
from edge_runtime.outputs.draw import draw_faces
from edge_runtime.pipeline.emotion_detector import Face
from edge_runtime.pipeline.tracker import IoUTracker
from fer_data.scenes import match_boxes


@pytest.mark.parametrize("detect_scale", [1.0, 0.5, 0.35])
def test_haar_boxes_are_in_source_pixels(two_face_scene, detect_scale):
    frame, truth = two_face_scene
    found = [d.box for d in HaarDetector(detect_scale=detect_scale).detect(frame)]
    matches = match_boxes(truth, found, min_iou=0.6)
    assert all(m is not None for m in matches), (found, truth)


def test_haar_takes_gray_bgra_tiny_and_large_frames(two_face_scene):
    frame, truth = two_face_scene
    detector = HaarDetector()
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    assert len(detector.detect(gray)) == len(detector.detect(bgra)) == len(truth)
    assert detector.detect(gray[..., None]) == detector.detect(gray)
    assert detector.detect(np.zeros((3, 2, 3), np.uint8)) == []
    assert detector.detect(np.zeros((1, 1), np.uint8)) == []
    large = cv2.resize(frame, None, fx=3, fy=3)
    found = [d.box for d in detector.detect(large)]
    scaled_truth = [tuple(3 * v for v in box) for box in truth]
    assert all(m is not None for m in match_boxes(scaled_truth, found, min_iou=0.5))


def test_haar_missing_and_invalid_cascade(tmp_path):
    with pytest.raises(DetectorError, match="no such cascade file"):
        HaarDetector(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(DetectorError, match="not an OpenCV Haar cascade"):
        HaarDetector(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"scale_factor": 1.0}, "scale_factor"), ({"min_neighbors": -1}, "min_neighbors"), ({"detect_scale": 0}, "detect_scale")],
)
def test_haar_rejects_bad_settings(kwargs, message):
    with pytest.raises(DetectorError, match=message):
        HaarDetector(**kwargs)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_track_ids_stay_on_a_still_face():
    tracker = IoUTracker()
    ids = [tracker.assign([(100, 100, 80, 80), (300, 100, 80, 80)]) for _ in range(10)]
    assert all(frame_ids == [1, 2] for frame_ids in ids)


def test_track_ids_follow_a_moving_face_and_new_faces_get_new_ids():
    tracker = IoUTracker()
    first = tracker.assign([(100, 100, 80, 80)])
    moved = tracker.assign([(110, 104, 80, 80), (400, 300, 60, 60)])
    assert moved[0] == first[0] and moved[1] not in first
    # Listed in another order, boxes still keep their ids.
    assert tracker.assign([(400, 302, 60, 60), (112, 106, 80, 80)]) == [moved[1], moved[0]]


def test_a_track_survives_a_few_misses_then_ends():
    tracker = IoUTracker(max_misses=2)
    (track_id,) = tracker.assign([(100, 100, 80, 80)])
    tracker.assign([])
    tracker.assign([])
    assert tracker.assign([(100, 100, 80, 80)]) == [track_id]
    for _ in range(3):
        tracker.assign([])
    assert tracker.assign([(100, 100, 80, 80)]) != [track_id]


def test_smoothing_is_an_exponential_moving_average():
    tracker = IoUTracker(smooth=0.75)
    (track_id,) = tracker.assign([(0, 0, 50, 50)])
    first = np.array([1, 0, 0, 0, 0, 0, 0], np.float32)
    second = np.array([0, 1, 0, 0, 0, 0, 0], np.float32)
    np.testing.assert_allclose(tracker.smooth(track_id, first), first)
    np.testing.assert_allclose(tracker.smooth(track_id, second), 0.75 * first + 0.25 * second)
    unsmoothed = IoUTracker(smooth=0.0)
    (other,) = unsmoothed.assign([(0, 0, 50, 50)])
    unsmoothed.smooth(other, first)
    np.testing.assert_allclose(unsmoothed.smooth(other, second), second)
    with pytest.raises(ValueError, match="smooth"):
        IoUTracker(smooth=1.0)


def _face(box=(20, 20, 60, 60), uncertain=False):
    probabilities = {"angry": 0.1, "disgust": 0.0, "fear": 0.1, "happy": 0.6, "neutral": 0.1, "sad": 0.05, "surprise": 0.05}
    return Face(box=box, track_id=3, label="happy", confidence=0.6, probabilities=probabilities, uncertain=uncertain)


@pytest.mark.parametrize("shape", [(480, 640, 3), (480, 640), (480, 640, 4), (40, 30, 3), (2160, 3840, 3)])
def test_draw_faces_annotates_in_place_any_frame(shape):
    frame = np.zeros(shape, np.uint8)
    face = _face(box=(5, 5, min(shape[1], 60) - 10, min(shape[0], 60) - 10))
    result = draw_faces(frame, [face, _face(uncertain=True)], fps=29.5)
    assert result is frame
    assert frame.any()


def test_draw_faces_without_faces_or_fps_leaves_the_frame():
    frame = np.zeros((100, 100, 3), np.uint8)
    draw_faces(frame, [])
    assert not frame.any()
