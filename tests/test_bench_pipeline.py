"""`edge-bench pipeline` with a fake capture, fake stages and a fake clock: per-stage figures,
warm-up frames, the seed-style loop, skipped rows on runtime-only installs, speed-ups."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.pipeline_bench import SEED_STYLE, PipelineJob, measure_pipeline, run_frame_loop
from benchmarks.pipeline_suite import PipelineConfig, add_speedups, plan_pipeline, run_pipeline
from benchmarks.rows import FAILED, OK, SKIPPED, RuntimeCheck
from benchmarks.seed_loop import SeedLoop
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import InputSpec
from tests.synthetic import synthetic_face
from tests.test_bench_fakes import FakeClock


class FakeCapture:
    """A finite source whose every read costs `read_cost` seconds on the fake clock."""

    def __init__(self, clock: FakeClock, frames: int, read_cost: float = 0.002) -> None:
        self.clock, self.frames, self.read_cost = clock, frames, read_cost
        self.closed = False

    def __iter__(self):
        for index in range(self.frames):
            self.clock.advance(self.read_cost)
            yield np.full((480, 640, 3), index % 255, np.uint8)

    def close(self) -> None:
        self.closed = True


def fake_stages(clock: FakeClock, faces_per_frame: int = 2):
    """process(): 10 ms detect, 1 ms preprocess, 3 ms infer per frame; draw(): 0.5 ms."""

    def process(frames):
        for _ in frames:
            clock.advance(0.014)
            yield ["face"] * faces_per_frame, {"detect": 0.010, "preprocess": 0.001, "infer": 0.003}

    def draw(frame, faces, fps):
        clock.advance(0.0005)

    return process, draw


def test_frame_loop_times_every_stage():
    clock = FakeClock()
    process, draw = fake_stages(clock)
    result = run_frame_loop(FakeCapture(clock, 12), process, draw, clock, max_frames=0, warmup_frames=2)
    assert result.frames == 10
    figures = result.figures()
    assert figures["frames"] == 10
    assert figures["faces_per_frame"] == 2.0
    assert figures["frame_size"] == "640x480"
    assert figures["read_p50_ms"] == pytest.approx(2.0)
    assert figures["detect_p95_ms"] == pytest.approx(10.0)
    assert figures["preprocess_p50_ms"] == pytest.approx(1.0)
    assert figures["infer_p50_ms"] == pytest.approx(3.0)
    assert figures["draw_p50_ms"] == pytest.approx(0.5)
    assert figures["total_p50_ms"] == pytest.approx(16.5)
    assert figures["fps"] == pytest.approx(1000 / 16.5)


def test_frame_loop_stops_at_max_frames():
    clock = FakeClock()
    process, draw = fake_stages(clock)
    result = run_frame_loop(FakeCapture(clock, 100), process, draw, clock, max_frames=7, warmup_frames=3)
    assert result.frames == 7


def test_measure_pipeline_with_injected_source_and_stages():
    clock = FakeClock()
    capture = FakeCapture(clock, 8)
    closed = []

    def build(job):
        process, draw = fake_stages(clock, faces_per_frame=1)
        return process, draw, lambda: closed.append(True)

    job = PipelineJob("tflite-int8 scale 0.5 every 1", source="demo", model="m.tflite", backend="tflite", threads=2,
                      warmup_frames=1, precision="int8")
    row = measure_pipeline(job, open_source=lambda spec: capture, build=build, clock=clock)
    assert row["status"] == OK
    assert row["frames"] == 7 and row["faces_per_frame"] == 1.0
    assert row["detect_scale"] == 0.5 and row["precision"] == "int8"
    assert capture.closed and closed == [True]


def test_the_runtime_row_times_the_loop_edge_run_runs(monkeypatch):
    """`edge-bench pipeline` times `EmotionDetector.stream` itself, not a loop of its own."""
    from edge_runtime.model_files.bundled import installed_backends
    from edge_runtime.pipeline.emotion_detector import EmotionDetector
    from tests.conftest import FIXTURE_MODELS

    if "onnx" not in installed_backends():
        pytest.skip("needs onnxruntime")
    streamed = []
    original = EmotionDetector.stream

    def stream(self, source, **options):
        for result in original(self, source, **options):
            streamed.append(result.index)
            yield result

    monkeypatch.setattr(EmotionDetector, "stream", stream)
    frames = [face_frame()[0] for _ in range(4)]
    job = PipelineJob("x", source="demo", model=str(FIXTURE_MODELS["onnx"]), backend="onnx", threads=1, warmup_frames=1)
    row = measure_pipeline(job, open_source=lambda spec: FakeSource(frames))
    assert row["status"] == OK and row["frames"] == 3
    assert streamed == [0, 1, 2, 3]


class FakeSource(list):
    """Frames with the `close()` of a source."""

    def close(self) -> None:
        pass


def test_a_source_that_cannot_open_is_a_failed_row():
    def open_source(spec):
        raise OSError(f"{spec}: cannot be opened as a video")

    job = PipelineJob("x", source="missing.mp4", model="m.onnx", backend="onnx", threads=1)
    row = measure_pipeline(job, open_source=open_source, build=lambda job: (None, None, lambda: None))
    assert row["status"] == FAILED
    assert row["error"] == "OSError: missing.mp4: cannot be opened as a video"


def test_too_short_a_source_is_a_failed_row():
    clock = FakeClock()
    job = PipelineJob("x", source="demo", model="m.onnx", backend="onnx", threads=1, warmup_frames=5)
    row = measure_pipeline(job, open_source=lambda spec: FakeCapture(clock, 3),
                           build=lambda job: (*fake_stages(clock), lambda: None), clock=clock)
    assert row["status"] == FAILED and "no frames left after 5 warm-up frames" in row["error"]


def face_frame() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 640x480 frame with one synthetic face, large enough for the cascade to be run on."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    face = cv2.resize(synthetic_face(3, np.random.default_rng(0)), (160, 160))
    frame[100:260, 200:360] = face[..., None]
    return frame, (200, 100, 160, 160)


def test_seed_loop_does_the_seed_steps_one_face_at_a_time(monkeypatch):
    calls = []

    def predict(batch):
        calls.append(batch.shape)
        return np.eye(len(LABELS))[[3]]

    class FakeCascade:
        loads = 0

        def __init__(self, path):
            FakeCascade.loads += 1

        def detectMultiScale(self, gray, scaleFactor, minNeighbors):  # noqa: N802 - OpenCV's name
            assert gray.ndim == 2 and (scaleFactor, minNeighbors) == (1.3, 5)
            return np.array([[10, 10, 50, 50], [100, 100, 60, 60]])

    monkeypatch.setattr("benchmarks.seed_loop.cv2.CascadeClassifier", FakeCascade)
    loop = SeedLoop(predict, LABELS, InputSpec(scale=1 / 255.0), cascade_path="cascade.xml", clock=FakeClock(tick=0.001))
    frame, _ = face_frame()
    for _ in range(3):
        faces, timings = loop.process(frame)
    assert FakeCascade.loads == 3  # the cascade is loaded again on every frame, as the seed did
    assert calls == [(1, 48, 48, 1)] * 6  # model.predict on one face at a time
    assert [label for _, label in faces] == ["happy", "happy"]
    assert set(timings) == {"detect", "preprocess", "infer"}
    assert loop.draw(frame.copy(), faces) is not None


def test_seed_loop_runs_the_real_cascade():
    loop = SeedLoop(lambda batch: np.eye(len(LABELS))[[0]], LABELS, InputSpec())
    frame, _ = face_frame()
    faces, timings = loop.process(frame)
    assert isinstance(faces, list)
    assert timings["detect"] >= 0.0


def no_tensorflow():
    return RuntimeCheck(False, 'TensorFlow not installed (needed for Keras rows): pip install -e ".[train]" (in the edge-emotion folder)')


def runtimes_without_keras(backend):
    return RuntimeCheck(backend != "keras", 'runtime not installed (tensorflow): pip install -e ".[train]" (in the edge-emotion folder)')


def model_files(tmp_path: Path) -> list[Path]:
    files = [tmp_path / name for name in ("emotion.keras", "emotion_fp32.onnx", "emotion_int8.tflite")]
    for path in files:
        path.write_bytes(b"0")
    return files


def test_runtime_only_install_skips_keras_and_seed_style_rows(tmp_path):
    files = model_files(tmp_path)
    config = PipelineConfig(detect_scales=(1.0, 0.5), detect_every=(1, 3), detectors=("haar",))
    jobs, decided = plan_pipeline(config, files, files[0], runtimes_without_keras, no_tensorflow)
    by_name = {row["name"]: row for row in decided}
    assert by_name[SEED_STYLE]["status"] == SKIPPED and "TensorFlow not installed" in by_name[SEED_STYLE]["reason"]
    assert by_name["keras haar scale 0.5 every 1"]["status"] == SKIPPED
    # The int8 TFLite model gets the whole sweep; the others run at the default detection.
    assert [job.name for job in jobs] == [
        "onnx-fp32 haar scale 0.5 every 1",
        "tflite-int8 haar scale 1 every 1",
        "tflite-int8 haar scale 1 every 3",
        "tflite-int8 haar scale 0.5 every 1",
        "tflite-int8 haar scale 0.5 every 3",
    ]


def test_every_detector_gets_its_rows_and_an_uncached_one_is_skipped(tmp_path, monkeypatch):
    files = model_files(tmp_path)[1:2]
    config = PipelineConfig(detect_scales=(0.5,), detect_every=(1, 3), detectors=("yunet", "haar"))
    jobs, _ = plan_pipeline(config, files, None, lambda b: RuntimeCheck(True), lambda: RuntimeCheck(True))
    assert [(job.name, job.detector) for job in jobs] == [
        ("onnx-fp32 yunet scale 0.5 every 1", "yunet"), ("onnx-fp32 yunet scale 0.5 every 3", "yunet"),
        ("onnx-fp32 haar scale 0.5 every 1", "haar"), ("onnx-fp32 haar scale 0.5 every 3", "haar"),
    ]
    monkeypatch.setenv("EDGE_EMOTION_CACHE", str(tmp_path / "empty-cache"))
    jobs, decided = plan_pipeline(config, files, None, lambda b: RuntimeCheck(True), lambda: RuntimeCheck(True))
    assert [job.detector for job in jobs] == ["haar", "haar"]
    yunet_rows = [row for row in decided if row.get("detector") == "yunet"]
    assert len(yunet_rows) == 2 and all(row["status"] == SKIPPED and "edge-run --fetch-models" in row["reason"] for row in yunet_rows)


def test_a_detector_file_passed_in_is_used_without_the_cache(tmp_path, monkeypatch):
    files = model_files(tmp_path)[1:2]
    monkeypatch.setenv("EDGE_EMOTION_CACHE", str(tmp_path / "empty-cache"))
    yunet_file = tmp_path / "yunet.onnx"
    yunet_file.write_bytes(b"0")
    config = PipelineConfig(detect_scales=(0.5,), detect_every=(1,), detectors=("yunet", "haar"), detector_model=yunet_file)
    jobs, decided = plan_pipeline(config, files, None, lambda b: RuntimeCheck(True), lambda: RuntimeCheck(True))
    assert [row["name"] for row in decided] == [SEED_STYLE]  # no Keras model given: nothing else is skipped
    # The file goes to the detector that reads one; Haar would refuse a YuNet file.
    assert [(job.detector, job.detector_model) for job in jobs] == [("yunet", str(yunet_file)), ("haar", "")]
    assert jobs[0].describe()["detector_model"] == str(yunet_file) and jobs[1].describe()["detector_model"] is None

    gone = PipelineConfig(detect_scales=(0.5,), detect_every=(1,), detectors=("yunet",), detector_model=tmp_path / "gone.onnx")
    jobs, decided = plan_pipeline(gone, files, None, lambda b: RuntimeCheck(True), lambda: RuntimeCheck(True))
    (row,) = [row for row in decided if row["name"] != SEED_STYLE]
    assert jobs == [] and row["status"] == SKIPPED and row["reason"].startswith(f"{tmp_path / 'gone.onnx'}: no such detector model file")


def test_seed_style_runs_first_when_tensorflow_is_there(tmp_path):
    files = model_files(tmp_path)
    jobs, decided = plan_pipeline(PipelineConfig(), files, files[0], lambda b: RuntimeCheck(True), lambda: RuntimeCheck(True))
    assert jobs[0].name == SEED_STYLE and jobs[0].style == "seed" and jobs[0].backend == "keras"
    assert decided == []


def test_speedups_are_relative_to_the_seed_style_row():
    rows = [{"name": SEED_STYLE, "status": OK, "fps": 2.0}, {"name": "a", "status": OK, "fps": 50.0},
            {"name": "b", "status": SKIPPED, "reason": "x"}]
    add_speedups(rows)
    assert rows[0]["speedup"] == 1.0 and rows[1]["speedup"] == 25.0
    assert "speedup" not in rows[2]


def test_run_pipeline_report(tmp_path):
    files = model_files(tmp_path)

    def runner(job):
        return {"name": job.name, "status": OK, "fps": 4.0 if job.style == "seed" else 100.0}

    report = run_pipeline(PipelineConfig(models=tuple(files), detect_scales=(0.5,), detect_every=(1,)), runner,
                          runtime_check=lambda b: RuntimeCheck(True), tf_check=lambda: RuntimeCheck(True))
    assert report["rows"][0]["name"] == SEED_STYLE
    assert report["best"]["speedup"] == 25.0
    assert report["settings"]["detect_scales"] == [0.5]
