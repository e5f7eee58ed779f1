"""Rotation of `edge-run`'s JSONL and CSV files: by size over a demo run, by time with a fake
clock, the oldest deleted, the lock following the live file, and the usage errors."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import stat

import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.outputs.rotation import Rotation, parse_duration, parse_size, rotated_files
from edge_runtime.outputs.writers import CsvWriter, JsonlWriter, OutputError
from tests.conftest import FIXTURE_MODELS
from tests.test_runtime_disk_faults import fill
from tests.test_runtime_outputs import make_face

runner = CliRunner()
DEMO_RUN = ["--source", "demo", "--loop", "--max-frames", "40", "--detector", "haar", "--model", str(FIXTURE_MODELS["onnx"]),
            "--no-display"]
HOUR = 3600.0


class FakeClock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def in_order(live):
    """The rotated files of `live`, oldest first, then `live`."""
    return [*rotated_files(live), live]


def jsonl_records(paths):
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def one_line(output: str) -> str:
    """Typer's usage error without its box and line breaks (it wraps at 80 columns)."""
    return " ".join(output.replace("│", " ").split())


def test_size_rotation_of_a_demo_run_loses_and_repeats_no_record(tmp_path):
    plain, rotated = tmp_path / "plain", tmp_path / "rotated"
    for folder, extra in ((plain, []), (rotated, ["--rotate-size", "4k", "--rotate-keep", "100"])):
        result = runner.invoke(app, [*DEMO_RUN, "--jsonl", str(folder / "faces.jsonl"), "--csv", str(folder / "faces.csv"), *extra])
        assert result.exit_code == 0, result.output
    jsonl_files, csv_files = in_order(rotated / "faces.jsonl"), in_order(rotated / "faces.csv")
    assert len(jsonl_files) >= 3 and len(csv_files) >= 3, "the run never rotated"
    for path in jsonl_files + csv_files:
        assert path.stat().st_size <= 4096, f"{path.name} grew past --rotate-size"
    # Every line of every file is a whole record, and together, in order, they are the unrotated run's.
    assert jsonl_records(jsonl_files) == jsonl_records([plain / "faces.jsonl"])
    header, *rows = csv_rows(plain / "faces.csv")
    rotated_rows = []
    for path in csv_files:
        assert csv_rows(path)[0] == header, f"{path.name} has no header"
        rotated_rows += csv_rows(path)[1:]
    assert rotated_rows == rows
    assert not list(rotated.glob(".*")), "a hidden file was left"


def write_frames(writer, clock, times, faces_per_frame=1):
    for index, now in enumerate(times):
        clock.now = now
        writer.write(index, float(now), [make_face(track_id=i + 1) for i in range(faces_per_frame)])


def test_time_rotation_at_every_period_boundary_with_a_fake_clock(tmp_path):
    clock = FakeClock()
    live = tmp_path / "faces.csv"
    writer = CsvWriter(live, rotation=Rotation(every=HOUR), clock=clock)
    write_frames(writer, clock, [HOUR - 100, HOUR - 10, HOUR + 5, HOUR + 6])
    assert [p.name for p in rotated_files(live)] == ["faces.19700101T010005Z.csv"]
    first, second = (csv_rows(path) for path in in_order(live))
    assert first[0] == second[0] and first[0][0] == "frame"
    assert [row[1] for row in first[1:]] == [str(HOUR - 100), str(HOUR - 10)]
    assert [row[1] for row in second[1:]] == [str(HOUR + 5), str(HOUR + 6)]
    # A night without a face makes no empty files: a file without records is not rotated, and
    # its period starts again.
    writer.close()
    writer = CsvWriter(tmp_path / "night.csv", rotation=Rotation(every=HOUR), clock=clock)
    write_frames(writer, clock, [5 * HOUR + 1, 6 * HOUR + 1, 7 * HOUR + 1], faces_per_frame=0)
    write_frames(writer, clock, [7 * HOUR + 2, 7 * HOUR + 3])
    writer.close()
    assert rotated_files(tmp_path / "night.csv") == []
    assert len(csv_rows(tmp_path / "night.csv")) == 3


def test_rotate_keep_deletes_the_oldest_and_names_never_collide(tmp_path):
    clock = FakeClock(HOUR)
    live = tmp_path / "faces.jsonl"
    older = tmp_path / "faces.19700101T000000Z.jsonl"  # a previous run's
    older.write_text("{}\n")
    unrelated = [tmp_path / name for name in ("faces.notes.jsonl", "faces.19700101T000000Z.csv", "other.19700101T000000Z.jsonl")]
    for path in unrelated:
        path.write_text("kept\n")
    writer = JsonlWriter(live, rotation=Rotation(size=4096, keep=2), clock=clock)
    frames = 60  # two faces a frame, ~370 bytes a record: several rotations, all in one second
    write_frames(writer, clock, [HOUR] * frames, faces_per_frame=2)
    writer.close()
    names = [p.name for p in rotated_files(live)]
    assert len(names) == 2 and all(name.startswith("faces.19700101T010000Z_") for name in names), names
    assert not older.exists(), "the oldest rotated file was kept"
    assert all(path.read_text() == "kept\n" for path in unrelated)
    # What is left is the newest records, each once, in order.
    frames_left = [record["frame"] for record in jsonl_records(in_order(live))]
    assert frames_left == [frame for frame in range(frames_left[0], frames) for _ in range(2)]


def test_a_second_run_is_refused_after_rotations_as_before_them(tmp_path):
    clock = FakeClock()
    live = tmp_path / "faces.jsonl"
    first = JsonlWriter(live, rotation=Rotation(every=HOUR), clock=clock)
    write_frames(first, clock, [10, HOUR + 10, 2 * HOUR + 10])
    assert len(rotated_files(live)) == 2
    second = JsonlWriter(live)
    with pytest.raises(OutputError, match=rf"^--jsonl {live}: another run is writing it"):
        second.lock()
    second.close()
    result = runner.invoke(app, [*DEMO_RUN, "--jsonl", str(live), "--rotate-size", "4k"])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --jsonl {live}: another run is writing it; wait for it to end or choose another path"
    with open(live, "a") as holder, pytest.raises(BlockingIOError):
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what `flock faces.jsonl ...` waits for
    clock.now = 2 * HOUR + 20
    first.write(3, 3.0, [make_face()])
    first.close()
    assert [record["frame"] for record in jsonl_records(in_order(live))] == [0, 1, 2, 3]
    assert len(rotated_files(live)) == 2, "the refused runs rotated or wrote something"
    again = JsonlWriter(live)
    again.lock()  # free once the run has ended
    again.close()


def test_a_restarted_run_rotates_the_previous_records_and_keeps_modes_and_links(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "faces.jsonl"
    real.write_text('{"frame": 7}\n')  # what the run before a restart wrote
    os.chmod(real, 0o600)
    link = tmp_path / "faces.jsonl"
    link.symlink_to(real)
    clock = FakeClock(HOUR)
    writer = JsonlWriter(link, rotation=Rotation(size=4096), clock=clock)
    write_frames(writer, clock, [HOUR])
    writer.close()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert [p.name for p in rotated_files(real)] == ["faces.19700101T010000Z.jsonl"]
    assert jsonl_records(in_order(real)) == [{"frame": 7}, jsonl_records([real])[0]]
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600, "the new live file lost the user's permissions"


def test_sizes_and_durations_read_as_logrotate_users_write_them():
    assert [parse_size(text) for text in ("4096", "500k", "100M", "1G", "1.5M", "100MB", "1T")] == [
        4096, 500 * 1024, 100 * 2**20, 2**30, 3 * 2**19, 100 * 2**20, 2**40]
    assert [parse_duration(text) for text in ("86400", "30m", "1h", "1d", "90s")] == [86400, 1800, 3600, 86400, 90]
    with pytest.raises(ValueError, match="^rotation: give a size, a period"):
        Rotation()
    with pytest.raises(ValueError, match=r"^rotation keep 0: expected a number in \[1, 100000\]"):
        Rotation(size=4096, keep=0)


@pytest.mark.parametrize("option, value, message", [
    ("--rotate-size", "0", "expected a size from 4k to 1T, not 0"),
    ("--rotate-size", "12Q", "'12Q' is not a size"),
    ("--rotate-size", "2T", "expected a size from 4k to 1T, not 2T"),
    ("--rotate-every", "-5", "'-5' is not a duration"),
    ("--rotate-every", "0.5", "expected a duration from 1 s to 366 days, not 0.5"),
    ("--rotate-every", "1y", "'1y' is not a duration"),
    ("--rotate-keep", "0", ""),
])
def test_bad_rotation_values_are_usage_errors_naming_the_option(option, value, message, tmp_path):
    result = runner.invoke(app, [*DEMO_RUN, "--jsonl", str(tmp_path / "o.jsonl"), option, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': {message}" in one_line(result.output)
    assert not list(tmp_path.iterdir())


def test_rotation_of_nothing_or_of_what_cannot_be_renamed_is_a_usage_error(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    cases = [
        (["--jsonl", str(tmp_path / "o.jsonl"), "--rotate-keep", "3"],
         "--rotate-keep counts rotated files: give --rotate-size or --rotate-every too"),
        (["--rotate-size", "1M"], "--rotate-size rotates the --jsonl and --csv files of a run: give one of them"),
        (["--jsonl", "-", "--csv", str(tmp_path / "o.csv"), "--rotate-size", "1M"],
         "--rotate-size: --jsonl - is standard output, which cannot be renamed; give a file path"),
        (["--csv", os.devnull, "--rotate-every", "1h"],
         f"--rotate-every: --csv {os.devnull} is not a regular file (a device or a FIFO) and cannot be renamed; give a file path"),
        (["--jsonl", str(fifo), "--rotate-every", "1h"], f"--rotate-every: --jsonl {fifo} is not a regular file"),
    ]
    for options, message in cases:
        result = runner.invoke(app, [*DEMO_RUN, *options])
        assert result.exit_code == 2, result.output
        assert f"Error: {message}" in one_line(result.output)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo.jsonl"]
    with pytest.raises(OutputError, match="^--jsonl - is standard output"):
        JsonlWriter("-", rotation=Rotation(size=4096))


def test_a_clock_set_back_never_names_a_new_file_before_an_older_one(tmp_path):
    clock = FakeClock(2 * HOUR)
    live = tmp_path / "faces.jsonl"
    writer = JsonlWriter(live, rotation=Rotation(every=HOUR, keep=1), clock=clock)
    # NTP sets a device without a real-time clock back by an hour after the first rotation.
    write_frames(writer, clock, [2 * HOUR, 3 * HOUR, HOUR + 1, HOUR + 2])
    writer.close()
    assert [p.name for p in rotated_files(live)] == ["faces.19700101T030000Z_1.jsonl"], "the newest file was deleted"
    assert [record["frame"] for record in jsonl_records(in_order(live))] == [1, 2, 3]


def test_rotation_keeps_a_never_ending_run_within_its_disk(small_disk):
    fill(small_disk, leave=64 * 1024)
    clock = FakeClock(HOUR)
    live = small_disk / "faces.jsonl"
    writer = JsonlWriter(live, rotation=Rotation(size=8192, keep=3), clock=clock)
    write_frames(writer, clock, [HOUR] * 500, faces_per_frame=2)  # about 370 kB of records
    writer.close()
    assert len(rotated_files(live)) == 3
    assert jsonl_records([live])[-1]["frame"] == 499


def test_a_disk_that_fills_while_rotating_keeps_every_complete_record(small_disk):
    fill(small_disk, leave=40 * 1024)
    clock = FakeClock(HOUR)
    live = small_disk / "faces.jsonl"
    writer = JsonlWriter(live, rotation=Rotation(size=4096, keep=100), clock=clock)
    with pytest.raises(OutputError, match=rf"^--jsonl {live}: disk full \(no space left on the device\); kept the \d+ complete") as failure:
        write_frames(writer, clock, [HOUR] * 500, faces_per_frame=2)
    writer.close()
    files = [path for path in in_order(live) if path.exists()]  # a live file that got no record is removed
    frames = [record["frame"] for record in jsonl_records(files)]
    assert len(files) > 2 and frames == [frame for frame in range(len(frames) // 2) for _ in range(2)]
    assert f"kept the {len(frames)} complete records" in str(failure.value)
    assert not list(small_disk.glob(".*")), "a hidden file was left"
