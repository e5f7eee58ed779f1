"""Several sources in one process: each read on its own thread, their faces classified together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.api import EmotionDetector
from edge_runtime.cli import app
from edge_runtime.default_model import installed_backends
from edge_runtime.detectors import DetectorSettings
from edge_runtime.runner import RunConfig, run
from edge_runtime.settings import ModelSettings
from edge_runtime.sources import demo_clip_path
from tests.conftest import FIXTURE_MODELS
from tests.test_video_job import cut_demo

pytestmark = pytest.mark.skipif("onnx" not in installed_backends(), reason="needs onnxruntime")


def config(*sources: Path, **changes) -> RunConfig:
    return RunConfig(source=str(sources[0]), more_sources=tuple(str(s) for s in sources[1:]),
                     model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"), detector=DetectorSettings(name="haar"), display=False,
                     **changes)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_sources_in_one_process_are_classified_together_and_each_as_alone(tmp_path):
    first, second = cut_demo(tmp_path / "a.mp4", 0, 60), cut_demo(tmp_path / "b.mp4", 40, 50)
    batches = []
    detector = EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector="haar")
    predict = detector.backend.predict
    detector.backend.predict = lambda batch, *args: batches.append(len(batch)) or predict(batch, *args)
    together = run(config(first, second, jsonl=tmp_path / "both.jsonl"), detector=detector)
    detector.close()
    assert together.frames == 110 and not together.failure
    both = records(tmp_path / "both.jsonl")
    faces_per_frame = {}
    for record in both:
        faces_per_frame[record["source"], record["frame"]] = faces_per_frame.get((record["source"], record["frame"]), 0) + 1
    # Fewer model calls than frames, and calls carrying more faces than any one frame holds:
    # the faces of both sources' frames went through the model together.
    assert len(batches) < together.frames and max(batches) > max(faces_per_frame.values())
    for source in (first, second):
        run(config(source, jsonl=tmp_path / f"{source.stem}.jsonl"))
        alone = records(tmp_path / f"{source.stem}.jsonl")
        mine = [r for r in both if r["source"] == str(source)]
        # Its own tracks, frame numbers and clock: what a run on that source alone writes.
        keys = ("frame", "time", "track_id", "box", "label")
        assert [{k: r[k] for k in keys} for r in mine] == [{k: r[k] for k in keys} for r in alone]


def test_a_source_that_ends_leaves_the_others_running(tmp_path):
    short, long = cut_demo(tmp_path / "short.mp4", 0, 5), cut_demo(tmp_path / "long.mp4", 0, 80)
    summary = run(config(short, long, jsonl=tmp_path / "o.jsonl"))
    counts = {}
    for record in records(tmp_path / "o.jsonl"):
        counts[record["source"]] = max(counts.get(record["source"], 0), record["frame"] + 1)
    assert counts == {str(short): 5, str(long): 80} and summary.stopped_by == "end of every source"


@pytest.mark.parametrize("arguments, status, message", [
    (["--save-video", "o.mp4"], 1, "take one source"),
    (["--out", "results"], 2, "--out takes one --source"),
])
def test_what_takes_one_source_refuses_several(arguments, status, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = str(demo_clip_path())
    copy = tmp_path / "b.mp4"
    copy.write_bytes(demo_clip_path().read_bytes())
    result = CliRunner().invoke(app, ["--source", clip, "--source", str(copy), "--no-display", "--model", str(FIXTURE_MODELS["onnx"]),
                                      *arguments])
    assert result.exit_code == status and message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]



class MarkedFrames:
    """A fake face detector that notes which source each detected frame came from (its pixel value)."""

    def __init__(self) -> None:
        self.detected: list[int] = []

    def detect(self, frame):
        self.detected.append(int(frame[0, 0, 0]))
        return [(10, 10, 40, 40)]


def test_sources_take_turns_at_detection_so_no_step_carries_them_all():
    fake = MarkedFrames()
    with EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=fake, detect_every=3) as detector:
        per_step = []
        for _ in range(9):
            before = len(fake.detected)
            detector._track([(name, np.full((120, 160, 3), value, np.uint8)) for name, value in (("a", 1), ("b", 2), ("c", 3))])
            per_step.append(sorted(fake.detected[before:]))
    assert per_step[0] == [1, 2, 3]  # every source's first frame is searched
    assert per_step[1:] == [[3], [2], [1], [3], [2], [1], [3], [2]]  # then one source a step, in turn
