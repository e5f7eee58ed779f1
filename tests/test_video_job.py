"""`edge-run --source FOLDER --out RESULTS`: a folder of videos as one resumable job.

Videos are cut from the bundled demo clip (real faces, with its ground truth), so every
detector finds them; the tiny test model keeps the workers quick to start.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.detectors import DetectorSettings
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.pipeline.runner import RunConfig
from edge_runtime.settings import ModelSettings, PipelineSettings
from edge_runtime.sources.base import SourceError
from edge_runtime.sources.open_source import demo_clip_path
from edge_runtime.video_job.discover import discover
from edge_runtime.video_job.job import JobSettings, run_job
from tests.conftest import FIXTURE_MODELS

EDGE_RUN = Path(sys.executable).parent / "edge-run"
pytestmark = pytest.mark.skipif("onnx" not in installed_backends(), reason="needs onnxruntime")


def cut_demo(path: Path, start: int, count: int) -> Path:
    """Frames [start, start + count) of the demo clip as a video of its own."""
    capture = cv2.VideoCapture(str(demo_clip_path()))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 480))
    for _ in range(count):
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    capture.release()
    return path


def config(source: Path, **pipeline) -> RunConfig:
    """A job's RunConfig on the fixture model and Haar; `pipeline` takes PipelineSettings fields."""
    return RunConfig(source=str(source), model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"), detector=DetectorSettings(name="haar"),
                     pipeline=PipelineSettings(**pipeline), display=False)


def files_of(out: Path) -> dict[str, bytes]:
    """Every file under a results folder except the run-dependent report, by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("report.json", "manifest.json", "timeline.png")}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Three short videos (one in a subfolder), a photo, a damaged video, one without frames, and
    a hidden folder."""
    root = tmp_path_factory.mktemp("recordings")
    cut_demo(root / "interview_a.mp4", 0, 40)
    cut_demo(root / "day2" / "interview_b.avi", 30, 40)
    cut_demo(root / "interview_c.mp4", 60, 40)
    cv2.imwrite(str(root / "still.jpg"), cv2.imread(str(demo_clip_path().with_name("demo_photo.jpg"))))
    good = (root / "interview_a.mp4").read_bytes()
    (root / "damaged.mp4").write_bytes(good[: len(good) // 3])  # no index: OpenCV cannot open it
    cv2.VideoWriter(str(root / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 480)).release()  # no frame
    (root / ".cache").mkdir()
    cut_demo(root / ".cache" / "hidden.mp4", 0, 5)
    return root


def test_discovery_walks_folders_and_lists(recordings, tmp_path):
    found = discover(str(recordings))
    assert [video.name for video in found.videos] == ["damaged.mp4", "day2/interview_b.avi", "empty.avi", "interview_a.mp4",
                                                      "interview_c.mp4"]
    assert [photo.name for photo in found.photos] == ["still.jpg"]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "local.mp4").write_bytes((recordings / "interview_a.mp4").read_bytes())
    listing = lists / "videos.txt"
    upward = os.path.relpath(recordings / "interview_c.mp4", lists)
    listing.write_text(f"# today's\n\nlocal.mp4\n{recordings / 'interview_a.mp4'}\n{upward}\n", encoding="utf-8")
    names = [video.name for video in discover(str(listing)).videos]
    # As listed where that stays below --out; absolute and upward paths by their absolute path.
    assert names == ["local.mp4", str(recordings / "interview_a.mp4").lstrip("/"),
                     str((recordings / "interview_c.mp4").resolve()).lstrip("/")]
    listing.write_text("missing.mp4\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"videos.txt, line 1: missing.mp4: no such video file"):
        discover(str(listing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no video files below it"):
        discover(str(tmp_path / "empty"))
    with pytest.raises(SourceError, match="no such file or folder"):
        discover(str(tmp_path / "absent"))


def test_a_job_writes_per_video_files_a_summary_and_a_report_and_resumes(recordings, tmp_path):
    out = tmp_path / "results"
    report = run_job(config(recordings), JobSettings(out, workers=2, chunk_minutes=1 / 60))  # 15-frame chunks
    assert report.done == ["day2/interview_b.avi", "interview_a.mp4", "interview_c.mp4"]
    assert list(report.failed) == ["damaged.mp4", "empty.avi"] and "cannot be opened" in report.failed["damaged.mp4"]
    assert "no frames" in report.failed["empty.avi"]
    assert report.photos_left == 1 and report.frames == 120 and report.faces > 0
    for name in report.done:
        records = [json.loads(line) for line in (out / name / "records.jsonl").read_text().splitlines()]
        assert records and {record["source"] for record in records} == {name}
        assert (out / name / "summary.json").is_file()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [row["video"] for row in rows if row["track"] == "all"] == report.done
    assert all(abs(sum(float(row[f"share_{label}"] or 0) for label in ("angry", "disgust", "fear", "happy", "neutral", "sad",
                                                                        "surprise")) - 1) < 1e-3 for row in rows)
    assert not [p for p in out.rglob(".*")], "no hidden part or temporary file is left"
    first = files_of(out)

    again = run_job(config(recordings), JobSettings(out, workers=2, chunk_minutes=1 / 60))
    assert sorted(again.skipped) == report.done and list(again.failed) == ["damaged.mp4", "empty.avi"] and again.done == []
    assert files_of(out) == first  # the summary holds no timings: the same bytes

    touched = recordings / "interview_c.mp4"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    changed = run_job(config(recordings), JobSettings(out, workers=1, chunk_minutes=1 / 60))
    assert changed.done == ["interview_c.mp4"] and len(changed.skipped) == 2
    assert files_of(out) == first  # one worker or two, the same records
    other_settings = run_job(config(recordings, smooth=0.0), JobSettings(out, workers=1))
    assert len(other_settings.done) == 3, "a video done under other settings is done again"


def test_chunks_are_joined_into_the_records_of_one_pass(tmp_path):
    video = cut_demo(tmp_path / "clip.mp4", 0, 106)
    one_pass = run_job(config(video), JobSettings(tmp_path / "one", workers=1, chunk_minutes=60))
    chunked = run_job(config(video), JobSettings(tmp_path / "chunked", workers=2, chunk_minutes=1.5 / 60))  # 23-frame chunks
    assert one_pass.done == chunked.done == ["clip.mp4"]
    whole = (tmp_path / "one" / "clip.mp4" / "records.jsonl").read_text().splitlines()
    joined = (tmp_path / "chunked" / "clip.mp4" / "records.jsonl").read_text().splitlines()
    assert len(whole) == len(joined) > 0
    strip = ("probabilities", "confidence")  # smoothing starts afresh at a chunk's first frame
    assert [{k: v for k, v in json.loads(a).items() if k not in strip} for a in whole] == \
        [{k: v for k, v in json.loads(b).items() if k not in strip} for b in joined]
    assert json.loads(joined[-1])["track_id"] == json.loads(whole[-1])["track_id"]


def job_command(source: Path, out: Path, *extra: str) -> list[str]:
    return [str(EDGE_RUN), "--source", str(source), "--out", str(out), "--model", str(FIXTURE_MODELS["onnx"]),
            "--detector", "haar", *extra]


def done_count(out: Path) -> int:
    try:
        return sum(entry["status"] == "done" for entry in json.loads((out / "manifest.json").read_text())["videos"].values())
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_halfway_loses_only_the_videos_in_flight_and_a_rerun_finishes_the_job(tmp_path, stop):
    source = tmp_path / "videos"
    for index in range(20):
        cut_demo(source / f"v{index:02d}.mp4", (index * 5) % 60, 30)
    reference = tmp_path / "reference"
    subprocess.run(job_command(source, reference, "--workers", "2"), capture_output=True, timeout=300, check=True)

    out = tmp_path / "results"
    job = subprocess.Popen(job_command(source, out, "--workers", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while done_count(out) < 8 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(stop)
    stdout, stderr = job.communicate(timeout=60)
    assert job.returncode == 128 + stop, stderr
    assert ("stopped: SIGTERM" if stop == signal.SIGTERM else "stopped: Ctrl-C") in stdout
    finished = done_count(out)
    assert 8 <= finished < 20
    assert not [p for p in out.rglob(".*")], "no part file of the videos in flight is left"
    assert len(list(out.rglob("records.jsonl"))) == finished  # nothing half-written under a final name

    rerun = subprocess.run(job_command(source, out, "--workers", "2"), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((out / "report.json").read_text())
    assert len(report["skipped"]) == finished and len(report["done"]) == 20 - finished
    assert files_of(out) == files_of(reference)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_a_killed_worker_fails_its_video_only_and_the_job_goes_on(tmp_path):
    source = tmp_path / "videos"
    for index in range(6):
        cut_demo(source / f"v{index}.mp4", index * 10, 45)
    out = tmp_path / "results"
    job = subprocess.Popen(job_command(source, out, "--workers", "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while done_count(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The worker is the job's child that is not the multiprocessing helper (resource tracker).
    workers = [pid for pid in children(job.pid) if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    assert workers, "the job has a worker process"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=180)
    report = json.loads((out / "report.json").read_text())
    assert job.returncode == 1 and len(report["failed"]) >= 1, stdout + stderr
    assert all("worker process died" in reason for reason in report["failed"].values())
    assert len(report["done"]) + len(report["failed"]) == 6
    rerun = subprocess.run(job_command(source, out, "--workers", "1"), capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert done_count(out) == 6


def test_the_dominant_emotion_of_each_track_is_the_clip_s_truth(tmp_path):
    # The bundled model on the demo clip, whose ground truth names every face's label.
    result = CliRunner().invoke(app, ["--source", "demo", "--out", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    truth = json.loads(demo_clip_path().with_suffix(".json").read_text())["frames"]
    records = [json.loads(line) for line in (tmp_path / "demo.mp4" / "records.jsonl").read_text().splitlines()]
    true_label = {}
    for record in records:
        x, y, w, h = record["box"]
        centre = (x + w / 2, y + h / 2)
        for face in truth[record["frame"]]["faces"]:
            fx, fy, fw, fh = face["box"]
            if fx <= centre[0] <= fx + fw and fy <= centre[1] <= fy + fh:
                true_label.setdefault(record["track_id"], face["label"])
    rows = {row["track"]: row for row in csv.DictReader((tmp_path / "summary.csv").open()) if row["track"] != "all"}
    assert len(rows) == 7 and set(rows) == {str(track) for track in true_label}
    # The summary is what the track's records say: its most frequent label.
    for track, row in rows.items():
        labels = [record["label"] for record in records if record["track_id"] == int(track)]
        assert row["dominant"] == max(set(labels), key=labels.count) and int(row["frames"]) == len(labels)
    # And that is the truth for every face but one: the bundled model takes the clip's one fear
    # face for neutral in every frame (`edge-run --source demo` counts no fear at all).
    wrong = {track: (row["dominant"], true_label[int(track)]) for track, row in rows.items() if row["dominant"] != true_label[int(track)]}
    assert list(wrong.values()) == [("neutral", "fear")]


@pytest.mark.parametrize("arguments, message", [
    (["--workers", "2"], "--workers and --ray run a video job"),
    (["--out", "results", "--jsonl", "x.jsonl"], "--out writes each video's records under it"),
    (["--out", "results", "--chunk-minutes", "0"], "--chunk-minutes"),
    (["--out", "results", "--workers", "0"], "--workers"),
])
def test_job_options_that_do_not_fit_are_usage_errors(arguments, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--source", "demo", *arguments])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray: pip install -e '.[cluster]'")
def test_ray_runs_the_same_job_with_the_same_outputs(tmp_path):
    # Not imported here: the job's own Ray instance must be told to keep to loopback before Ray loads.
    source = tmp_path / "videos"
    cut_demo(source / "a.mp4", 0, 40)
    cut_demo(source / "b.mp4", 50, 40)
    local = run_job(config(source), JobSettings(tmp_path / "local", workers=2, chunk_minutes=1 / 60))
    on_ray = run_job(config(source), JobSettings(tmp_path / "ray", workers=2, chunk_minutes=1 / 60, ray="local"))
    assert on_ray.mode == "ray" and on_ray.done == local.done == ["a.mp4", "b.mp4"]
    assert files_of(tmp_path / "ray") == files_of(tmp_path / "local")
