"""`edge-run` outputs on a disk that fills up during the run, or a folder that cannot be written.

The full-disk tests mount a real 2 MB tmpfs (root only; skipped with the reason elsewhere), so
the failure is the kernel's ENOSPC, not a simulation: the previous output must stay intact, the
error be one line, the exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import edge_runtime.outputs.writers as outputs_module
import edge_runtime.pipeline.runner as runner_module
from edge_runtime.cli import app
from edge_runtime.outputs.writers import OutputError, VideoOutput
from edge_runtime.sources.open_source import demo_photo_path
from tests.conftest import mount_tmpfs, unmount
from tests.synthetic import count_video_frames

runner = CliRunner()
BASE = ["--no-display", "--detector", "haar", "--source", "demo"]


def fill(disk: Path, leave: int) -> None:
    """Fills `disk` so that about `leave` bytes stay free."""
    usage = os.statvfs(disk)
    size = usage.f_bavail * usage.f_frsize - leave
    with open(disk / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, size))


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_full_disk_during_save_video_keeps_the_previous_video(small_disk):
    video = small_disk / "o.mp4"
    first = runner.invoke(app, [*BASE, "--max-frames", "10", "--save-video", str(video)])
    assert first.exit_code == 0, first.output
    previous = video.read_bytes()
    fill(small_disk, leave=150_000)
    result = runner.invoke(app, [*BASE, "--loop", "--max-frames", "400", "--save-video", str(video)])
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result)
    assert line.startswith(f"error: --save-video {video}: disk full after ")
    assert line.endswith("frames (no space left on the device); kept the previous video")
    assert "wrote" not in result.output
    assert video.read_bytes() == previous and count_video_frames(video) == 10
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "o.mp4"], "the partial video or its lock was left"


@pytest.mark.parametrize("option", ["--jsonl", "--csv"])
def test_a_full_disk_on_records_keeps_every_complete_record_and_closes_the_video(option, small_disk, tmp_path):
    records, video = small_disk / "o.txt", tmp_path / "o.avi"
    fill(small_disk, leave=20_000)
    result = runner.invoke(app, [*BASE, "--loop", "--max-frames", "400", option, str(records), "--save-video", str(video)])
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result)
    kept = int(line.split("kept the ")[1].split(" ")[0])
    assert line == f"error: {option} {records}: disk full (no space left on the device); kept the {kept} complete records"
    text = records.read_text()
    assert text.endswith("\n"), "a torn last line was left"
    if option == "--jsonl":
        assert len([json.loads(row) for row in text.splitlines()]) == kept
    else:
        assert len(text.splitlines()) == 1 + kept  # the header
    # The other output was finished as on any error: the video plays.
    assert count_video_frames(video) > 0
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".")]


def test_save_images_on_a_full_disk_keeps_the_previous_images_and_says_so(small_disk, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(demo_photo_path(), photos / "a.jpg")
    annotated = small_disk / "annotated"
    args = ["--no-display", "--detector", "haar", "--source", str(photos), "--save-images", str(annotated)]
    assert runner.invoke(app, args).exit_code == 0
    previous = (annotated / "a.jpg").read_bytes()
    (photos / "a.jpg").write_bytes(cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (900, 1200, 3), np.uint8))[1])
    fill(small_disk, leave=20_000)  # room to start, not for a noisy 1200x900 JPEG
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [f"error: --save-images {annotated / 'a.jpg'}: disk full (no space left on the device)"]
    assert (annotated / "a.jpg").read_bytes() == previous
    assert [p.name for p in annotated.iterdir()] == ["a.jpg"]


@pytest.fixture()
def read_only_folder(tmp_path):
    """A folder no file can be created in: a read-only tmpfs for root (whom permissions do not
    stop), a folder without write permission for anyone else."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount_tmpfs(folder, "ro,size=1m")
    try:
        yield folder
    finally:
        unmount(folder)


def test_save_images_into_a_read_only_folder_is_refused_before_the_run(read_only_folder, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(demo_photo_path(), photos / "a.jpg")
    loaded = []
    monkeypatch.setattr(runner_module, "build_detector", lambda config: loaded.append(config))
    records = tmp_path / "o.jsonl"
    result = runner.invoke(
        app, ["--no-display", "--source", str(photos), "--jsonl", str(records), "--save-images", str(read_only_folder / "annotated")]
    )
    assert result.exit_code == 1
    reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert error_lines(result) == [f"error: --save-images {read_only_folder / 'annotated'}: cannot be written ({reason})"]
    assert loaded == [], "the model was loaded before the folder was checked"
    assert not records.exists()


def test_a_video_on_a_disk_that_fills_up_is_dropped_and_the_previous_kept(tmp_path, monkeypatch):
    """The same as the tmpfs test, on any machine: the disk is reported full after frame 3."""
    target = tmp_path / "v.mp4"
    target.write_bytes(b"previous video")
    free = iter([1_000_000, 1_000_000, 0])
    monkeypatch.setattr(outputs_module, "free_bytes", lambda folder: next(free))
    video = VideoOutput(target)
    frame = np.zeros((48, 64, 3), np.uint8)
    video.write(frame)
    video.write(frame)
    with pytest.raises(OutputError, match=r"v.mp4: disk full after 3 frames \(no space left on the device\); kept the previous video$"):
        video.write(frame)
    video.close()
    assert target.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_a_finished_video_that_does_not_read_back_does_not_replace_the_previous(tmp_path):
    target = tmp_path / "v.avi"
    target.write_bytes(b"previous video")
    video = VideoOutput(target)
    for _ in range(3):
        video.write(np.zeros((48, 64, 3), np.uint8))
    # What a writer that lost its last frame leaves: a file that plays, one frame short.
    video.frames += 1
    with pytest.raises(OutputError, match=r"v.avi: the finished file reads back 3 of its 4 frames; kept the previous video$"):
        video.close()
    assert target.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["v.avi"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, which answers every write with ENOSPC")
def test_records_on_a_full_device_are_one_line():
    result = runner.invoke(app, [*BASE, "--max-frames", "2", "--jsonl", "/dev/full"])
    assert result.exit_code == 1
    assert error_lines(result) == ["error: --jsonl /dev/full: disk full (no space left on the device)"]


def test_a_frame_written_but_not_yet_counted_when_a_signal_landed_keeps_the_video(tmp_path):
    video = VideoOutput(tmp_path / "v.avi")
    for _ in range(3):
        video.write(np.zeros((48, 64, 3), np.uint8))
    video.frames -= 1  # Ctrl-C raised right after the writer took the third frame
    video.close()
    assert count_video_frames(tmp_path / "v.avi") == 3
