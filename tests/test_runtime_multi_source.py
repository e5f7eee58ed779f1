"""Several sources in one process: each read on its own thread, their faces classified together."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.detectors import DetectorSettings
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.pipeline.runner import RunConfig, run
from edge_runtime.settings import ModelSettings
from edge_runtime.sources.open_source import demo_clip_path
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


class Camera:
    """A fake live capture: a new picture about every 30 ms (its grey level counting up from
    `level`); after `stall_after` pictures its read blocks, as a hung stream's does; after `last`
    pictures it sets `finish`; once `finish` is set its reads fail."""

    def __init__(self, level: int, finish: threading.Event, stall_after: int | None = None, last: int | None = None,
                 opened: bool = True) -> None:
        self.level, self.finish, self.stall_after, self.last, self.opened = level, finish, stall_after, last, opened
        self.count = 0

    def isOpened(self):
        return self.opened

    def read(self):
        if self.count == self.stall_after:
            self.finish.wait(30)  # hung until the test ends
        if self.count == self.last:
            self.finish.set()
        if self.finish.is_set():
            return False, None
        time.sleep(0.03)
        self.count += 1
        return True, np.full((120, 160, 3), (self.level + self.count) % 256, np.uint8)

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


class EveryFrameAFace:
    """A fake face detector: one face in every frame, so every frame read writes a record."""

    def detect(self, frame):
        return [(10, 10, 40, 40)]


def test_a_stalled_source_among_several_is_reported_and_reopened_with_backoff_while_the_others_go_on(tmp_path, monkeypatch):
    pytest.importorskip("aiohttp", reason="needs the serve extra: pip install -e '.[serve]'")
    import edge_runtime.pipeline.runner
    from edge_runtime.sources.live import LiveSource
    from tests.test_serve import free_port, get

    finish = threading.Event()
    closed = Camera(0, finish, opened=False)
    captures = {
        "rtsp://cam/a": [Camera(0, finish)],
        "rtsp://cam/b": [Camera(100, finish)],
        # 30 pictures, then a read that hangs; two reopens fail, the third delivers 30 more.
        "rtsp://cam/stalls": [Camera(50, finish, stall_after=30), closed, closed, Camera(200, finish, last=30)],
    }
    waits = {name: [] for name in captures}

    def wait(name: str, seconds: float) -> None:
        waits[name].append(seconds)
        if not finish.is_set():  # once the scene is over, sources give up at once
            time.sleep(seconds)

    def open_camera(name, *, stall_timeout, max_reopen, **_):
        return LiveSource(name, lambda target: captures[name].pop(0) if captures[name] else closed, max_reopen=max_reopen,
                          backoff_s=0.2, stall_timeout=stall_timeout, sleep=lambda seconds: wait(name, seconds))

    monkeypatch.setattr(edge_runtime.pipeline.runner, "open_source", open_camera)
    port = free_port()
    health, summaries = [], []
    names = list(captures)
    config = RunConfig(source=names[0], more_sources=tuple(names[1:]), model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"),
                       display=False, jsonl=tmp_path / "o.jsonl", stall_timeout=0.5, max_reopen=3, serve=("127.0.0.1", port))
    with EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=EveryFrameAFace()) as detector:
        running = threading.Thread(target=lambda: summaries.append(run(config, detector=detector)))
        running.start()
        while running.is_alive():
            with contextlib.suppress(OSError):
                status, body = get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                health.append((status, json.loads(body)["stalled"]))
            time.sleep(0.1)
        finish.set()
    summary = summaries[0]
    times = {name: [r["time"] for r in records(tmp_path / "o.jsonl") if r["source"] == name] for name in names}
    gaps = list(zip(times["rtsp://cam/stalls"], times["rtsp://cam/stalls"][1:]))
    stall_start, stall_end = max(gaps, key=lambda gap: gap[1] - gap[0])
    # Stalled for its stall timeout, then the backoff waits of the failed reopens: 0.5 + 0.2 + 0.4 + 0.8 s.
    assert stall_end - stall_start > 1.5
    for other in ("rtsp://cam/a", "rtsp://cam/b"):
        assert sum(stall_start < t < stall_end for t in times[other]) > 20, "the others' records stopped during the stall"
    assert sum(t >= stall_end for t in times["rtsp://cam/stalls"]) >= 20, "its records did not resume"
    assert (503, ["rtsp://cam/stalls"]) in health and any(status == 200 for status, _ in health)
    assert waits["rtsp://cam/stalls"][:3] == [0.2, 0.4, 0.8]  # reopened with a doubling backoff
    assert summary.reopens == 1 and summary.stopped_by == "end of every source"  # the one that came back


def test_a_step_classified_after_the_next_search_gives_what_one_step_gives():
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (120, 160, 3), np.uint8)
    moved = np.clip(picture.astype(int) + rng.integers(-6, 7, picture.shape), 0, 255).astype(np.uint8)  # the same shot
    cut = rng.integers(0, 256, (120, 160, 3), np.uint8)  # another shot: its search ends every track
    frames = [[("cam", picture)], [("cam", moved)], [("cam", cut)]]
    with EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=EveryFrameAFace()) as detector:
        expected = [detector._track(step) for step in frames]
    with EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=EveryFrameAFace()) as detector:
        got = [detector._classify_found(detector._track_search(frames[0]))]
        second = detector._track_search(frames[1])
        third = detector._track_search(frames[2])  # searched before the step before is classified
        got += [detector._classify_found(second), detector._classify_found(third)]
    faces = lambda steps: [(face.track_id, face.label, face.probabilities) for step in steps for face in step[0]]  # noqa: E731
    assert faces(got) == faces(expected)
    assert expected[2][0][0].track_id != expected[1][0][0].track_id  # the cut ended the track


def test_the_next_step_is_searched_while_the_step_before_is_classified(tmp_path):
    from edge_runtime.pipeline.runner import run_many

    second_search = threading.Event()

    class Searches(EveryFrameAFace):
        count = 0

        def detect(self, frame):
            self.count += 1
            if self.count == 2:
                second_search.set()
            return super().detect(frame)

    overlapped = []
    with EmotionDetector(FIXTURE_MODELS["onnx"], backend="onnx", detector=Searches()) as detector:
        predict = detector.backend.predict

        def first_waits_for_the_next_search(batch, *args):
            if not overlapped:  # in turn, the second search would only come after this call
                overlapped.append(second_search.wait(5))
            return predict(batch, *args)

        detector.backend.predict = first_waits_for_the_next_search
        summary = run_many(config(cut_demo(tmp_path / "a.mp4", 0, 4)), detector=detector)
    assert overlapped == [True] and summary.frames == 4


def test_several_sources_rotate_their_records_and_classify_whole_frames_as_asked(tmp_path):
    from edge_runtime.outputs.rotation import Rotation

    first, second = cut_demo(tmp_path / "a.mp4", 0, 40), cut_demo(tmp_path / "b.mp4", 40, 40)
    out = tmp_path / "o.jsonl"
    summary = run(config(first, second, jsonl=out, whole_image=True, rotation=Rotation(size=4096, keep=50)))
    assert summary.frames == 80 and not summary.failure
    files = sorted(tmp_path.glob("o*.jsonl"))
    assert len(files) > 2  # 80 records of about 330 bytes cannot stay in one 4 KB file
    written = [record for path in files for record in records(path)]
    assert len(written) == 80  # one face a frame: each frame classified whole
    assert all(record["detector"] is None and record["score"] is None for record in written)
    assert all(record["box"] == [0, 0, 640, 480] for record in written)
