"""The whole pipeline on every installed backend: API, `edge-run` headless, outputs, faults.

The tiny test model comes as checked-in ONNX and TFLite files (tests/fixtures), so these tests
run without TensorFlow, and as Keras when Keras is installed; a video with real face pixels (cut
from the demo assets, since Haar does not find synthetic faces) is built here.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.backends import BackendError
from edge_runtime.cli import app
from edge_runtime.labels import LABELS
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.model_files.formats import get_backend
from edge_runtime.outputs.display import display_problem
from edge_runtime.pipeline.emotion_detector import EmotionDetector, Face
from edge_runtime.pipeline.runner import RunConfig, run
from edge_runtime.sources.open_source import FrameSource
from fer_data.scenes import background, demo_faces
from tests.conftest import FIXTURE_MODELS, NEEDS_TF
from tests.synthetic import count_video_frames

runner = CliRunner()
RECORD_KEYS = {"frame", "time", "source", "detector", "track_id", "box", "score", "label", "confidence", "uncertain", "probabilities"}
VIDEO_FPS = 10.0
STILL_BOX = (40, 150, 170, 170)


BACKENDS = [b for b in ("onnx", "tflite", "keras") if b in installed_backends()]


@pytest.fixture(scope="session")
def models(request) -> dict[str, Path]:
    """The tiny model per backend: ONNX and full-int8 TFLite checked in, Keras trained when Keras is installed."""
    found = dict(FIXTURE_MODELS)
    if importlib.util.find_spec("keras") is not None:
        found["keras"] = request.getfixturevalue("tiny_model")
    return found


@pytest.fixture(scope="session")
def model(models) -> Path:
    """The tiny model for the first installed backend: for what happens around the model call."""
    if not BACKENDS:
        pytest.skip("no inference runtime installed")
    return models[BACKENDS[0]]


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> Path:
    """12 frames at 640x480: one still face and one moving face, real pixels from the demo."""
    faces = dict(demo_faces())
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (640, 480))
    backdrop = background(seed=11)
    for i in range(12):
        frame = backdrop.copy()
        for (x, y, w, h), label in ((STILL_BOX, "happy"), ((380 + 4 * i, 60 + 3 * i, 180, 180), "surprise")):
            frame[y : y + h, x : x + w] = cv2.resize(faces[label], (w, h))[:, :, None]
        writer.write(frame)
    writer.release()
    return path


def first_frame(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


count_frames = count_video_frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_headless_run_writes_jsonl_csv_and_video(backend, models, face_video, tmp_path):
    if backend not in models:
        pytest.skip(NEEDS_TF)
    jsonl, table, video = tmp_path / "faces.jsonl", tmp_path / "faces.csv", tmp_path / "annotated.mp4"
    args = ["--model", str(models[backend]), "--backend", backend, "--source", str(face_video), "--no-display"]
    result = runner.invoke(app, [*args, "--jsonl", str(jsonl), "--csv", str(table), "--save-video", str(video)])
    assert result.exit_code == 0, result.output
    assert "frames: 12 | faces: 24 | tracks: 2" in result.output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 24
    for record in records:
        assert set(record) == RECORD_KEYS
        assert list(record["probabilities"]) == list(LABELS)
        # A full-int8 model's softmax comes out in steps of 1/256: the sum is 1 within a few steps.
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=0.02)
        assert record["label"] == max(record["probabilities"], key=record["probabilities"].get)
        assert record["confidence"] == pytest.approx(record["probabilities"][record["label"]], abs=1e-4)
        assert record["time"] == pytest.approx(record["frame"] / VIDEO_FPS, abs=1e-3)
        x, y, w, h = record["box"]
        assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 and w > 0 and h > 0
    assert sorted({r["frame"] for r in records}) == list(range(12))
    # The still face keeps one track id for the whole clip.
    still = {r["track_id"] for r in records if abs(r["box"][0] - STILL_BOX[0]) < 20}
    assert len(still) == 1
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and rows[0]["p_happy"] and rows[0]["frame"] == "0"
    assert count_frames(video) == 12
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


@pytest.mark.parametrize("backend", BACKENDS)
def test_api_one_model_call_per_frame_for_all_faces(backend, models, face_video):
    if backend not in models:
        pytest.skip(NEEDS_TF)
    frame = first_frame(face_video)
    with EmotionDetector(models[backend], backend=backend) as detector:
        calls = []
        original = detector.backend.predict
        detector.backend.predict = lambda batch, *args: calls.append(batch.shape) or original(batch, *args)
        faces = detector.detect(frame)
        assert set(detector.last_timings) == {"detect", "preprocess", "infer"}
    assert len(faces) == 2 and all(isinstance(face, Face) for face in faces)
    assert calls == [(2, 48, 48, 1)]
    assert [face.track_id for face in faces] == [1, 2]


class CountingDetector:
    """A fake detector: fixed boxes, counts its calls."""

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def detect(self, frame):
        self.calls += 1
        return list(self.boxes)


def test_detect_every_n_frames_reuses_boxes(model):
    detector_fake = CountingDetector([(10, 10, 40, 40)])
    with EmotionDetector(model, detector=detector_fake, detect_every=3) as detector:
        frame = np.full((120, 160, 3), 128, np.uint8)
        results = [result.faces for result in detector.stream([frame] * 7)]
    assert detector_fake.calls == 3  # frames 0, 3 and 6
    assert all(len(faces) == 1 and faces[0].track_id == 1 for faces in results)


def test_crop_margin_comes_from_metadata_and_can_be_overridden(model, monkeypatch):
    scales = []
    import edge_runtime.preprocess as preprocess

    original = preprocess.crop_region
    monkeypatch.setattr(preprocess, "crop_region", lambda box, scale, *rest: scales.append(scale) or original(box, scale, *rest))
    frame = np.full((120, 160, 3), 128, np.uint8)
    with EmotionDetector(model, detector=CountingDetector([(150, 100, 40, 40)])) as detector:
        assert detector.crop_margin == detector.backend.metadata.input.crop_margin
        detector.detect(frame)
    assert scales[-1] == pytest.approx(1 + 2 * detector.crop_margin)
    with EmotionDetector(model, detector=CountingDetector([(150, 100, 40, 40)]), crop_margin=0.25) as detector:
        faces = detector.detect(frame)
    # A margin of 0.25 on every side: a crop 1.5 times the box; at the frame's edge it is padded, not dropped.
    assert scales[-1] == pytest.approx(1.5) and len(faces) == 1


def test_a_box_with_nothing_to_crop_is_skipped(model):
    frame = np.full((120, 160, 3), 128, np.uint8)
    boxes = [(400, 300, 40, 40), (20, 20, 40, 40)]  # the first lies wholly outside the frame
    with EmotionDetector(model, detector=CountingDetector(boxes)) as detector:
        faces = detector.detect(frame)
    assert [face.box for face in faces] == [(20, 20, 40, 40)]


@pytest.mark.parametrize(
    "frame",
    [
        np.full((480, 640), 90, np.uint8),
        np.full((480, 640, 4), 90, np.uint8),
        np.full((480, 640, 1), 90, np.uint8),
        np.full((6, 5, 3), 90, np.uint8),
        np.full((2160, 3840, 3), 90, np.uint8),
    ],
    ids=["gray", "bgra", "gray1", "tiny", "4k"],
)
def test_any_frame_kind_works(model, frame):
    with EmotionDetector(model, detector=CountingDetector([(2, 2, 3, 3)])) as detector:
        (result,) = detector.stream([frame])  # a video frame: even a tiny one is searched
    assert len(result.faces) == 1 and result.faces[0].label in LABELS


def test_real_faces_in_gray_and_bgra_frames(model, face_video):
    frame = first_frame(face_video)
    with EmotionDetector(model) as detector:
        assert len(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))) == 2
        assert len(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))) == 2


def test_not_an_image_is_refused(model):
    with EmotionDetector(model, detector=CountingDetector([])) as detector:
        with pytest.raises(ValueError, match="expected HxW"):
            detector.detect(np.zeros((4, 4, 2), np.uint8))
        with pytest.raises(ValueError, match="expected a numpy image"):
            detector.detect([[0]])


class ScriptedSource(FrameSource):
    """Yields `count` frames, then raises `error`."""

    def __init__(self, frame, count, error):
        super().__init__("scripted", fps=VIDEO_FPS)
        self.frame, self.count, self.error, self.closed = frame, count, error, False

    def __iter__(self):
        for _ in range(self.count):
            self.frames_read += 1
            yield self.frame
        raise self.error

    def close(self):
        self.closed = True


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("camera unplugged")], ids=["ctrl-c", "error"])
def test_outputs_are_finished_on_ctrl_c_and_errors(error, model, face_video, tmp_path):
    source = ScriptedSource(first_frame(face_video), 5, error)
    config = RunConfig(display=False, jsonl=tmp_path / "f.jsonl", save_video=tmp_path / "f.mp4")
    with EmotionDetector(model) as detector:
        if isinstance(error, KeyboardInterrupt):
            summary = run(config, detector=detector, source=source)
            assert summary.stopped_by == "Ctrl-C" and summary.frames == 5
        else:
            with pytest.raises(RuntimeError, match="unplugged"):
                run(config, detector=detector, source=source)
    assert source.closed
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 10
    assert count_frames(tmp_path / "f.mp4") == 5


def test_max_frames_and_summary(model, face_video):
    result = runner.invoke(
        app, ["--model", str(model), "--source", str(face_video), "--no-display", "--max-frames", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "frames: 4 |" in result.output and "stopped: max frames (4)" in result.output
    assert "labels:" in result.output and "FPS" in result.output


@pytest.mark.parametrize("backend", [b for b in ("onnx", "tflite") if b in BACKENDS])
def test_a_whole_run_never_imports_tensorflow(backend, models, face_video, tmp_path):
    script = (
        "import sys\n"
        "import edge_runtime\n"
        "assert 'tensorflow' not in sys.modules, 'import edge_runtime'\n"
        "from typer.testing import CliRunner\n"
        "from edge_runtime.cli import app\n"
        f"args = ['--model', {str(models[backend])!r}, '--source', {str(face_video)!r}, '--no-display',\n"
        f"        '--jsonl', {str(tmp_path / 'out.jsonl')!r}, '--save-video', {str(tmp_path / 'out.mp4')!r}]\n"
        "result = CliRunner().invoke(app, args)\n"
        "assert result.exit_code == 0, result.output\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False"


def test_bundled_model_runs_the_demo(tmp_path):
    result = runner.invoke(app, ["--source", "demo", "--no-display", "--max-frames", "8", "--jsonl", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 0, result.output
    assert "demo.mp4" in result.output and "frames: 8 |" in result.output


# --- faults and CLI errors -------------------------------------------------------------------


def test_bad_model_files_name_the_file_and_the_fix(tmp_path, models):
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"not a model")
    result = runner.invoke(app, ["--model", str(bad_onnx), "--source", "demo", "--no-display"])
    assert result.exit_code == 1
    assert f"{bad_onnx}: not a loadable ONNX model" in result.output
    no_sidecar = tmp_path / "model.tflite"
    no_sidecar.write_bytes(b"not a model")
    result = runner.invoke(app, ["--model", str(no_sidecar), "--source", "demo", "--no-display"])
    assert result.exit_code == 1
    assert "no metadata file model.tflite.json next to it; re-export it with edge-convert" in result.output
    result = runner.invoke(app, ["--model", str(models["tflite"]), "--backend", "onnx", "--source", "demo", "--no-display"])
    assert result.exit_code == 1 and "the onnx backend runs .onnx files, not '.tflite'" in result.output


def test_model_that_does_not_match_its_metadata(models, tmp_path):
    model = tmp_path / "wrong.tflite"
    shutil.copy(models["tflite"], model)
    sidecar = json.loads(Path(str(models["tflite"]) + ".json").read_text())
    sidecar["input_shape"] = [64, 64, 1]
    Path(str(model) + ".json").write_text(json.dumps(sidecar))
    result = runner.invoke(app, ["--model", str(model), "--source", "demo", "--no-display"])
    assert result.exit_code == 1 and "checksum mismatch" in result.output  # the edit is caught first
    if "tflite" not in BACKENDS:
        pytest.skip(f"needs LiteRT to load the model: {get_backend('tflite').install_hint}")
    result = runner.invoke(app, ["--model", str(model), "--source", "demo", "--no-display", "--no-verify-model"])
    assert result.exit_code == 1 and "does not match its metadata [64, 64, 1]" in result.output


def test_missing_runtime_package_names_the_install(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendError, match=r'pip install -e "\.\[onnx\]" \(in the edge-emotion folder\)'):
        EmotionDetector(models["onnx"])
    result = runner.invoke(app, ["--model", str(models["onnx"]), "--source", "demo", "--no-display"])
    assert result.exit_code == 1 and "The ONNX backend needs onnxruntime" in result.output


def test_cli_source_errors(tmp_path, model):
    args = ["--model", str(model), "--no-display", "--source"]
    result = runner.invoke(app, [*args, str(tmp_path / "missing.mp4")])
    assert result.exit_code == 1 and "missing.mp4: no such file or folder" in result.output
    result = runner.invoke(app, [*args, "99"])
    assert result.exit_code == 1 and "cannot open camera index 99" in result.output


def test_cli_usage_errors():
    result = runner.invoke(app, ["--backend", "onxx", "--no-display"])
    assert result.exit_code == 2 and "onxx" in result.output
    result = runner.invoke(app, ["--detect-every", "0", "--no-display"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["--model", "missing.onnx", "--no-display"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["--save-video", "out.gif", "--source", "demo", "--no-display"])
    assert result.exit_code == 1 and "unknown video container '.gif'" in result.output


@pytest.mark.skipif(display_problem() is None, reason="this OpenCV can open windows")
def test_headless_opencv_suggests_no_display():
    result = runner.invoke(app, ["--source", "demo"])
    assert result.exit_code == 1
    assert "--no-display" in result.output and "pip uninstall -y opencv-python-headless" in result.output


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_display_path_under_xvfb(model, face_video, tmp_path):
    if _gui_line().strip().endswith("NONE"):
        pytest.skip("this OpenCV has no GUI (opencv-python-headless)")
    server = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "800x600x24"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {**os.environ, "DISPLAY": ":97"}
        args = ["--model", str(model), "--source", str(face_video), "--max-frames", "6"]
        code = "from edge_runtime.cli import app; app()"
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "frames: 6 |" in done.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)


def _gui_line() -> str:
    return next((line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")), "")
