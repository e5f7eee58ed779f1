"""The label list, its mappings, and the one preprocessing function."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.labels import LABELS, csv_code_to_index, folder_to_index, label_index
from edge_runtime.preprocess import InputSpec, crop_face, expand_box, face_to_gray48, faces_to_batch, gray48_to_input


def test_label_order_is_fixed():
    # A golden: every model file and report indexes probabilities in this order.
    assert LABELS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_fer_csv_codes_map_explicitly():
    expected = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
    assert {code: LABELS[csv_code_to_index(code)] for code in range(7)} == expected


@pytest.mark.parametrize("code", [-1, 7, 12])
def test_fer_csv_code_out_of_range(code):
    with pytest.raises(ValueError, match="expected an integer 0-6"):
        csv_code_to_index(code)


@pytest.mark.parametrize(
    "folder, label",
    [
        ("angry", "angry"),
        ("Angry", "angry"),
        ("Disgusted", "disgust"),
        ("Fearful", "fear"),
        ("HAPPY", "happy"),
        ("Neutral", "neutral"),
        ("Sad", "sad"),
        ("Surprised", "surprise"),
        ("surprise", "surprise"),
    ],
)
def test_folder_names_map_case_insensitively(folder, label):
    assert LABELS[folder_to_index(folder)] == label


def test_unknown_folder_and_label():
    assert folder_to_index("contempt") is None
    with pytest.raises(ValueError, match="unknown label 'contempt'"):
        label_index("contempt")


def test_runtime_batch_equals_training_input():
    """Training feeds gray48_to_input(images); the runtime feeds faces_to_batch(crops).
    On the same 48x48 faces they must be bit-identical."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    for spec in (InputSpec(scale=1.0), InputSpec(scale=1 / 255.0), InputSpec(scale=2 / 255.0, offset=-1.0)):
        training = gray48_to_input(faces, spec)
        runtime = faces_to_batch(list(faces), spec)
        assert runtime.dtype == np.float32 and runtime.shape == (5, 48, 48, 1)
        np.testing.assert_array_equal(training, runtime)


def test_scaling_golden():
    face = np.array([[0, 51, 255]], np.uint8).repeat(16, 0).repeat(16, 1)  # 16x48
    face48 = face_to_gray48(np.vstack([face, face, face]))
    batch = gray48_to_input(face48[None], InputSpec(scale=1 / 255.0))
    assert batch[0, 0, 0, 0] == 0.0
    assert batch[0, 0, 16, 0] == pytest.approx(0.2)
    assert batch[0, 0, 47, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(120, 100), (120, 100, 1), (120, 100, 3), (120, 100, 4), (20, 30, 3)])
def test_any_crop_becomes_48x48_gray(shape):
    crop = np.full(shape, 128, np.uint8)
    face = face_to_gray48(crop)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    assert int(face[24, 24]) == 128


def test_bgr_uses_luma_weights():
    blue = np.zeros((48, 48, 3), np.uint8)
    blue[..., 0] = 255  # OpenCV frames are BGR.
    assert int(face_to_gray48(blue)[0, 0]) == 29  # 0.114 * 255


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="empty image"):
        face_to_gray48(np.zeros((0, 0), np.uint8))
    with pytest.raises(ValueError, match="unsupported image shape"):
        face_to_gray48(np.zeros((10, 10, 2), np.uint8))


def test_empty_batch():
    assert faces_to_batch([], InputSpec()).shape == (0, 48, 48, 1)


def test_expand_box_clamps_to_frame():
    assert expand_box((10, 10, 100, 100), 0.1, (480, 640)) == (0, 0, 120, 120)
    assert expand_box((600, 440, 40, 40), 0.25, (480, 640)) == (590, 430, 50, 50)
    assert expand_box((100, 100, 100, 100), -0.1, (480, 640)) == (110, 110, 80, 80)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert crop_face(frame, (600, 440, 40, 40), 0.25).shape == (50, 50, 3)
