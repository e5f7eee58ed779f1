"""`edge-run` exit status and refusals made before the run: nothing processed, shared output
paths, an output another run is writing, the bounds of the numeric options and threads."""

from __future__ import annotations

import fcntl
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.backends import BackendError, load_backend
from edge_runtime.cli import app
from edge_runtime.detectors import DetectorSettings
from edge_runtime.detectors.haar import HaarDetector
from edge_runtime.limits import max_threads, threads_problem
from edge_runtime.model_files.bundled import default_model_path
from edge_runtime.sources.open_source import demo_photo_path

runner = CliRunner()
BASE = ["--no-display", "--detector", "haar"]


def undecodable_video(path):
    """An MP4 whose container opens and counts 8 frames, none of which decodes."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(8):
        writer.write(np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 8
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["text named .jpg", "undecodable video"])
def test_a_run_that_processed_nothing_exits_1_and_writes_nothing(kind, tmp_path):
    if kind == "text named .jpg":
        source = tmp_path / "photo.jpg"
        source.write_text("not a picture")
    else:
        source = undecodable_video(tmp_path / "clip.mp4")
        capture = cv2.VideoCapture(str(source))
        assert capture.isOpened() and not capture.read()[0]  # the case this test is about
        capture.release()
    result = runner.invoke(app, [*BASE, "--source", str(source), "--jsonl", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1, result.output
    # One image says what is wrong with it; a video, how many frames failed.
    said = "not an image OpenCV can decode; nothing was processed" if kind == "text named .jpg" else "no frame could be read"
    assert f"error: {source}: {said}" in result.output
    assert "frames: 0 |" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_an_output_that_is_the_source_is_refused_and_the_source_kept(tmp_path):
    clip = undecodable_video(tmp_path / "clip.mp4")
    before = clip.read_bytes()
    result = runner.invoke(app, [*BASE, "--source", str(clip), "--save-video", str(clip)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --save-video {clip}: is the source being read; choose another output path"
    assert clip.read_bytes() == before
    result = runner.invoke(app, [*BASE, "--source", "demo", "--jsonl", str(tmp_path / "o"), "--csv", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --csv {tmp_path / 'o'}: is also the --jsonl output; give each output its own path"


def test_threads_are_bounded_in_the_cli_and_in_every_backend():
    result = runner.invoke(app, [*BASE, "--source", "demo", "--threads", "100000"])
    assert result.exit_code == 2 and "--threads" in result.output
    assert threads_problem(max_threads()) == "" and threads_problem(None) == ""
    assert threads_problem(max_threads() + 1).startswith(f"threads {max_threads() + 1} is more than {max_threads()}")
    for backend in ("onnx", "tflite"):
        with pytest.raises(BackendError, match=r"^threads 100000 is more than \d+ \(4 per CPU core"):
            load_backend(default_model_path(backend), backend, threads=100000)
    with pytest.raises(BackendError, match="at least 1"):
        load_backend(default_model_path("onnx"), "onnx", threads=0)


def test_records_on_standard_output_keep_it_to_themselves(tmp_path):
    result = runner.invoke(app, [*BASE, "--source", "demo", "--max-frames", "3", "--jsonl", "-", "--csv", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and {record["frame"] for record in records} == {0, 1, 2}
    assert "frames: 3 |" in result.stderr and f"wrote {tmp_path / 'o.csv'}" in result.stderr


def test_a_run_on_records_another_process_is_writing_is_refused_and_leaves_them_alone(tmp_path):
    records = tmp_path / "o.jsonl"
    records.write_text('{"frame": 0}\n')
    with open(records, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # what a running edge-run (or `flock o.jsonl ...`) holds
        result = runner.invoke(app, [*BASE, "--source", "demo", "--max-frames", "2", "--jsonl", str(records),
                                     "--csv", str(tmp_path / "o.csv")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --jsonl {records}: another run is writing it; wait for it to end or choose another path"
    assert records.read_text() == '{"frame": 0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]


# One value past each bound. A Haar scale factor of 1e8 made OpenCV's pyramid loop overflow and
# grow memory without end in a call that SIGTERM and Ctrl-C could not interrupt.
OUT_OF_RANGE = [
    ("--scale-factor", "1e8"), ("--scale-factor", "1.0"), ("--min-neighbors", "101"), ("--min-size", "16385"),
    ("--detect-scale", "0.01"), ("--score-threshold", "1"), ("--detect-every", "1001"), ("--smooth", "0.995"),
    ("--min-confidence", "1.5"), ("--crop-margin", "2.5"), ("--max-frames", "1000000001"), ("--stall-timeout", "inf"),
    ("--stall-timeout", "1e308"), ("--stall-timeout", "3e6"), ("--max-reopen", "100001"), ("--threads", "0"),
]


@pytest.mark.parametrize("option, value", OUT_OF_RANGE)
def test_every_numeric_option_out_of_its_bound_is_a_usage_error(option, value):
    result = runner.invoke(app, [*BASE, "--source", "demo", "--max-frames", "1", option, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output


def test_the_options_at_their_bounds_still_run():
    upper = ["--scale-factor", "3", "--min-neighbors", "100", "--min-size", "1", "--detect-scale", "1", "--detect-every", "1000",
             "--smooth", "0.99", "--min-confidence", "1", "--crop-margin", "2", "--stall-timeout", "3600", "--max-reopen", "100000"]
    result = runner.invoke(app, [*BASE, "--source", "demo", "--max-frames", "3", *upper])
    assert result.exit_code == 0, result.output
    assert "frames: 3 |" in result.output
    lower = ["--scale-factor", "1.01", "--min-neighbors", "0", "--min-size", "16384", "--detect-scale", "0.05",
             "--crop-margin", "-0.45", "--stall-timeout", "0.5", "--max-reopen", "0", "--max-frames", "1000000000"]
    result = runner.invoke(app, [*BASE, "--source", str(demo_photo_path()), *lower])
    assert result.exit_code == 0, result.output
    assert "frames: 1 |" in result.output


@pytest.mark.parametrize(
    "setting, value",
    [("scale_factor", 1e8), ("scale_factor", float("nan")), ("min_neighbors", 10**20), ("min_size", 0), ("min_size", 10**9),
     ("detect_scale", 0.0), ("score_threshold", 1.0)],
)
def test_detector_settings_refuse_what_the_cli_refuses(setting, value):
    with pytest.raises(ValueError, match=f"^{setting} "):
        DetectorSettings(**{setting: value})
    if setting != "score_threshold":
        with pytest.raises(ValueError, match=f"^{setting} "):
            HaarDetector(**{setting: value})


@pytest.mark.parametrize("setting, value", [("detect_every", 1001), ("smooth", 0.995), ("min_confidence", -0.1), ("crop_margin", 2.5)])
def test_emotion_detector_refuses_what_the_cli_refuses(setting, value):
    from edge_runtime.pipeline.emotion_detector import EmotionDetector

    with pytest.raises(ValueError, match=f"^{setting} {value:g}: expected a number in"):
        EmotionDetector(detector="haar", **{setting: value})
