"""Output files (JSONL, CSV, video) and the choice of the bundled model."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

import edge_runtime.default_model as default_model
from edge_runtime.api import Face
from edge_runtime.labels import LABELS
from edge_runtime.outputs import OutputError, Outputs, VideoOutput, face_record, to_bgr


def make_face(track_id=1, box=(10, 20, 30, 40)):
    probabilities = dict(zip(LABELS, (0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1)))
    return Face(box=box, track_id=track_id, label="happy", confidence=0.5, probabilities=probabilities, uncertain=False)


def test_face_record_schema():
    record = face_record(3, 0.2, make_face())
    assert record == {
        "frame": 3,
        "time": 0.2,
        "track_id": 1,
        "box": [10, 20, 30, 40],
        "label": "happy",
        "confidence": 0.5,
        "uncertain": False,
        "probabilities": dict(zip(LABELS, (0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1))),
    }
    json.dumps(record)


def test_outputs_appear_only_when_closed(tmp_path):
    paths = {"jsonl": tmp_path / "o.jsonl", "csv_path": tmp_path / "o.csv", "video": tmp_path / "o.avi"}
    outputs = Outputs(**paths, video_fps=5)
    frame = np.zeros((60, 80, 3), np.uint8)
    for i in range(3):
        outputs.write(i, i / 5, [make_face(), make_face(2, (40, 5, 20, 20))], frame)
    assert not any(path.exists() for path in paths.values())
    outputs.close()
    outputs.close()  # idempotent
    assert len(paths["jsonl"].read_text().splitlines()) == 6
    with open(paths["csv_path"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:10] == ["frame", "time", "track_id", "x", "y", "w", "h", "label", "confidence", "uncertain"]
    assert rows[0][10:] == [f"p_{label}" for label in LABELS]
    assert len(rows) == 7
    capture = cv2.VideoCapture(str(paths["video"]))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    capture.release()
    assert not list(tmp_path.glob(".*"))


def test_video_keeps_the_first_frame_size_and_takes_any_channels(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4", fps=None)
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.write(np.zeros((100, 100), np.uint8))
    video.write(np.zeros((30, 30, 4), np.uint8))
    video.close()
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, frame = capture.read()
    assert ok and frame.shape == (48, 64, 3)
    capture.release()


def test_video_without_frames_leaves_no_file(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4")
    video.close()
    assert not list(tmp_path.iterdir())


def test_output_errors(tmp_path):
    with pytest.raises(OutputError, match="unknown video container '.gif'"):
        VideoOutput(tmp_path / "v.gif")
    with pytest.raises(OutputError, match="is a folder"):
        Outputs(jsonl=tmp_path)


def test_to_bgr():
    assert to_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.full((4, 5, 3), 300.0)).dtype == np.uint8


def test_default_backend_is_the_first_installed_with_a_bundled_file(tmp_path, monkeypatch):
    monkeypatch.setattr(default_model, "MODELS_DIR", tmp_path)
    for name in default_model.BUNDLED_MODELS.values():
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(default_model, "installed_backends", lambda: ["onnx", "tflite", "keras"])
    assert default_model.default_backend() == "onnx"
    assert default_model.default_model_path() == tmp_path / "emotion_int8.onnx"
    assert default_model.default_model_path("keras") == tmp_path / "emotion.keras"
    monkeypatch.setattr(default_model, "installed_backends", lambda: ["tflite", "keras"])
    assert default_model.default_model_path() == tmp_path / "emotion_int8.tflite"
    (tmp_path / "emotion_int8.tflite").unlink()
    assert default_model.default_backend() == "keras"
    monkeypatch.setattr(default_model, "installed_backends", lambda: [])
    with pytest.raises(default_model.DefaultModelError, match=r'pip install "edge-emotion\[onnx\]"'):
        default_model.default_backend()


def test_bundled_models_are_in_place():
    for name in default_model.BUNDLED_MODELS.values():
        assert (default_model.MODELS_DIR / name).is_file(), name
    assert (default_model.MODELS_DIR / "emotion_int8.tflite.json").is_file()
    assert (default_model.MODELS_DIR / "emotion.keras.json").is_file()
