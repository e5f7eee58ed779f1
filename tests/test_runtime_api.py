"""The embedding API: `detect` for one image, `stream` for frames, the settings of each stage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import edge_runtime.cli as cli_module
from edge_runtime.detectors import DetectorSettings
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.pipeline.runner import RunConfig, RunSummary, build_detector
from edge_runtime.settings import ModelSettings, PipelineSettings
from tests.conftest import FIXTURE_MODELS

pytestmark = pytest.mark.skipif("onnx" not in installed_backends(), reason="needs onnxruntime")

BOXES = [(10, 10, 80, 80), (110, 110, 80, 80)]


class CountingDetector:
    """A fake face detector: fixed boxes, counts its calls."""

    def __init__(self, boxes=BOXES) -> None:
        self.boxes, self.calls = list(boxes), 0

    def detect(self, frame):
        self.calls += 1
        return list(self.boxes)


def noise(seed: int, shape=(200, 200, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def model(**pipeline) -> EmotionDetector:
    """The fixture model behind CountingDetector. Frames of noise differ like two shots and their
    crops like two people, so shot cuts and likeness are off: tracks hold by overlap alone."""
    return EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=CountingDetector(),
                           **{"cut_threshold": 0.0, "min_likeness": 0.0, **pipeline})


def probabilities(faces) -> list[float]:
    return [p for face in faces for p in face.probabilities.values()]


def test_detect_stands_alone_nothing_carries_from_an_earlier_call():
    first, second = noise(1), noise(2)
    with model() as detector:
        alone = detector.detect(second)
        detector.detect(first)
        after_another = detector.detect(second)
        streamed = [result.faces for result in detector.stream([first, second])]
    assert [face.track_id for face in alone] == [face.track_id for face in after_another] == [1, 2]
    assert probabilities(after_another) == pytest.approx(probabilities(alone))
    # The same two images as frames of one video: the second frame's labels are smoothed with the first's.
    assert probabilities(streamed[1]) != pytest.approx(probabilities(alone))


def test_detect_classifies_a_face_crop_whole_and_whole_decides_when_given():
    crop, photo = noise(3, (48, 48)), noise(4, (300, 300, 3))
    with model() as detector:
        faces = detector.detect(crop)  # a FER-2013-sized image: already a face
        assert [face.box for face in faces] == [(0, 0, 48, 48)] and detector.face_detector.calls == 0
        assert [face.box for face in detector.detect(photo, whole=True)] == [(0, 0, 300, 300)]
        assert detector.face_detector.calls == 0
        assert [face.box for face in detector.detect(crop, whole=False)] == BOXES[:1]  # the second lies outside it
        assert [face.box for face in detector.detect(photo)] == BOXES
        assert detector.face_detector.calls == 2


def test_stream_takes_a_list_of_numpy_frames_and_tracks_across_them():
    frames = [noise(seed) for seed in range(5)]
    with model(detect_every=2) as detector:
        results = list(detector.stream(frames))
        assert detector.face_detector.calls == 3  # frames 0, 2 and 4
        assert [result.index for result in results] == [0, 1, 2, 3, 4]
        assert all(result.source == "frames" and result.time is not None for result in results)
        assert {tuple(face.track_id for face in result.faces) for result in results} == {(1, 2)}
        # A second stream starts afresh: its faces are numbered from 1 again.
        assert [face.track_id for face in next(iter(detector.stream(frames[:1]))).faces] == [1, 2]


def test_stream_refuses_one_image_and_names_the_call_for_it():
    with model() as detector:
        with pytest.raises(ValueError, match=r"^source is one numpy image of shape \(200, 200, 3\); use detect\(image\)"):
            next(iter(detector.stream(noise(5))))


def test_pipeline_settings_come_whole_or_as_keywords_and_are_checked():
    with EmotionDetector(FIXTURE_MODELS["onnx"], detector=CountingDetector(), settings=PipelineSettings(smooth=0.1),
                         min_confidence=0.9) as detector:
        assert detector.settings == PipelineSettings(smooth=0.1, min_confidence=0.9)
    with pytest.raises(ValueError, match=r"^cut_threshold 300: expected a number in"):
        PipelineSettings(cut_threshold=300)


def test_the_cli_builds_one_settings_object_per_stage(monkeypatch):
    seen = []
    monkeypatch.setattr(cli_module, "run", lambda config: seen.append(config) or RunSummary(stopped_by="end of source"))
    result = CliRunner().invoke(cli_module.app, ["--source", "demo", "--no-display", "--detector", "haar", "--scale-factor", "1.3",
                                                 "--threads", "2", "--no-verify-model", "--smooth", "0.2", "--detect-every", "3"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert isinstance(config, RunConfig)
    assert config.model == ModelSettings(path=None, backend="auto", threads=2, verify=False)
    assert config.detector == DetectorSettings(name="haar", scale_factor=1.3)
    assert config.pipeline == PipelineSettings(smooth=0.2, detect_every=3)


def test_build_detector_takes_each_stage_from_its_settings_object():
    config = RunConfig(model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"), detector=DetectorSettings(name="haar", min_size=33),
                       pipeline=PipelineSettings(smooth=0.25, crop_margin=0.1))
    with build_detector(config) as built:
        assert built.settings == config.pipeline and built.crop_margin == 0.1
        assert built.face_detector.min_size == 33 and built.detector_name == "haar" and built.backend.name == "onnx"


def test_the_cli_refuses_a_setting_of_another_detector_in_one_line():
    result = CliRunner().invoke(cli_module.app, ["--source", "demo", "--no-display", "--detector", "yunet", "--scale-factor", "1.3"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: scale_factor is a haar setting, not a yunet one; use it with detector haar (or auto)"]


def test_import_edge_runtime_stays_light_and_exports_the_api_lazily():
    code = ("import sys, edge_runtime; light = 'cv2' not in sys.modules and 'onnxruntime' not in sys.modules; "
            "from edge_runtime import EmotionDetector, Face, FrameResult, DetectorSettings, ModelSettings, PipelineSettings; "
            "from edge_runtime.pipeline import emotion_detector; print(light, EmotionDetector is emotion_detector.EmotionDetector)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr
