"""`EmotionDetector.stream`: the loop `edge-run` runs, usable from Python; the Python API page's example."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.detectors import DetectorSettings
from edge_runtime.labels import LABELS
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.pipeline.runner import RunConfig, run
from edge_runtime.settings import ModelSettings
from edge_runtime.sources.open_source import demo_clip_path, demo_photo_path, open_source
from tests.conftest import FIXTURE_MODELS

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
pytestmark = pytest.mark.skipif("onnx" not in installed_backends(), reason="needs onnxruntime")


def detector() -> EmotionDetector:
    return EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector="haar")


def test_stream_yields_what_edge_run_writes(tmp_path):
    records = tmp_path / "demo.jsonl"
    run(RunConfig(source="demo", model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"), detector=DetectorSettings(name="haar"),
                  display=False, jsonl=records))
    written = [json.loads(line) for line in records.read_text().splitlines()]
    with detector() as pipeline:
        results = list(pipeline.stream(demo_clip_path()))
    assert [r.index for r in results] == list(range(106))
    assert all(r.time == pytest.approx(r.index / 15.0) and r.source == str(demo_clip_path()) for r in results)
    streamed = [(r.index, r.source, face.track_id, face.box, face.label) for r in results for face in r.faces]
    assert streamed == [(w["frame"], w["source"], w["track_id"], tuple(w["box"]), w["label"]) for w in written]
    assert all(r.annotated is None and set(r.timings) == {"detect", "preprocess", "infer"} for r in results)


def test_stream_of_photos_names_each_photo_and_has_no_clock(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(folder / name), cv2.imread(str(demo_photo_path())))
    with detector() as pipeline:
        results = list(pipeline.stream(str(folder), annotate=True))
    assert [(r.index, r.time, Path(r.source).name) for r in results] == [(0, None, "a.jpg"), (1, None, "b.jpg")]
    assert all(r.annotated.shape == r.frame.shape and not np.array_equal(r.annotated, r.frame) for r in results)
    assert [face.track_id for face in results[1].faces] == list(range(1, len(results[1].faces) + 1))


def test_a_source_opened_by_stream_is_closed_when_the_loop_is_left(monkeypatch):
    opened = []

    def spy(spec, **options):
        opened.append(open_source(spec, **options))
        return opened[-1]

    monkeypatch.setattr("edge_runtime.sources.open_source.open_source", spy)
    with detector() as pipeline:
        results = pipeline.stream("demo")
        for _ in range(3):
            next(results)
        assert opened[0].capture is not None
        results.close()  # what leaving a for loop early does to the generator
        assert opened[0].capture is None, "leaving the loop closes the video"
    given = open_source("demo")
    with detector() as pipeline:
        assert len(list(pipeline.stream(given, whole_image=True))) == 106
    assert given.capture is not None, "a source the caller opened is the caller's to close"
    given.close()


def test_the_readme_stream_example_runs_as_written(tmp_path):
    section = API_DOC.read_text(encoding="utf-8").split("## In your own code", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    assert "model.stream(demo_clip_path())" in code
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "30", "60", "90"]
    assert any(label in done.stdout for label in LABELS)
