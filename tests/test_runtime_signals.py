"""`edge-run` as a real process: stop signals, SIGKILL, a stream that hangs or stalls, exit status.

Each test starts `python -m edge_runtime.cli` with the bundled model and the Haar detector (no
download), waits in bounded loops for what it needs (records written, a connection opened),
then signals it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime.pipeline.stopping import Stopped, finalising, stop_signals
from tests.mjpeg_server import MJPEGServer
from tests.synthetic import count_video_frames

WAIT_S = 90.0  # generous bound for a loaded machine; no test relies on it for speed
BASE = ["--no-display", "--detector", "haar", "--threads", "1"]


def start(tmp_path: Path, *args: str, ignore: tuple[int, ...] = ()) -> subprocess.Popen:
    """Starts edge-run; `ignore`: signals set to SIG_IGN before it starts, as `nohup` does for SIGHUP."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def ignore_signals():
        for signum in ignore:
            signal.signal(signum, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", *BASE, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_signals if ignore else None,
    )


def wait_for_records(process: subprocess.Popen, path: Path, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"edge-run ended early ({process.returncode}): {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"{path} never reached {count} records")


def complete_records(path: Path) -> list[dict]:
    """Every complete line parses; an unfinished last line (no newline) is left out."""
    text = path.read_text()
    return [json.loads(line) for line in text.split("\n")[:-1]]


@pytest.mark.parametrize(
    ("signum", "status", "name"),
    [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")],
    ids=["sigint", "sigterm", "sighup"],
)
def test_stop_signals_finish_every_output_and_exit_with_the_signal_status(signum, status, name, tmp_path):
    process = start(tmp_path, "--source", "demo", "--loop", "--jsonl", "o.jsonl", "--csv", "o.csv", "--save-video", "o.mp4")
    wait_for_records(process, tmp_path / "o.jsonl", 10)
    process.send_signal(signum)
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == status, err
    assert f"stopped: {name}" in out
    frames = int(out.split("frames: ")[1].split(" ")[0])
    records = complete_records(tmp_path / "o.jsonl")
    # The signal may land between one output's write and the next: one frame either way.
    assert len(records) >= 10 and frames - 2 <= records[-1]["frame"] <= frames
    with open(tmp_path / "o.csv", newline="") as handle:
        last_row = list(csv.DictReader(handle))[-1]
    assert abs(int(last_row["frame"]) - records[-1]["frame"]) <= 1
    assert abs(count_video_frames(tmp_path / "o.mp4") - frames) <= 1
    assert not list(tmp_path.glob(".*")), "hidden files left behind"


def test_a_run_started_with_sighup_ignored_outlives_a_sighup_as_under_nohup(tmp_path):
    process = start(tmp_path, "--source", "demo", "--loop", "--max-frames", "300", "--jsonl", "o.jsonl", ignore=(signal.SIGHUP,))
    wait_for_records(process, tmp_path / "o.jsonl", 10)
    process.send_signal(signal.SIGHUP)
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, err
    assert "stopped: max frames (300)" in out


def test_an_ignored_signal_stays_ignored_and_the_others_are_handled():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)  # nothing happens
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_sigkill_keeps_every_complete_record_and_the_next_run_removes_the_stranded_video(tmp_path):
    process = start(tmp_path, "--source", "demo", "--loop", "--jsonl", "o.jsonl", "--save-video", "o.mp4")
    wait_for_records(process, tmp_path / "o.jsonl", 20)
    process.kill()
    process.communicate(timeout=WAIT_S)
    assert len(complete_records(tmp_path / "o.jsonl")) >= 20
    assert not (tmp_path / "o.mp4").exists(), "a video without its index replaced the target"
    assert len(list(tmp_path.glob(".o.mp4.*.part.mp4"))) == 1
    rerun = start(tmp_path, "--source", "demo", "--max-frames", "3", "--save-video", "o.mp4")
    out, err = rerun.communicate(timeout=WAIT_S)
    assert rerun.returncode == 0, err
    assert count_video_frames(tmp_path / "o.mp4") == 3
    assert not list(tmp_path.glob(".*"))


def test_ctrl_c_acts_at_once_while_a_stream_is_being_opened(tmp_path):
    # A server that accepts the connection and never answers: OpenCV's open blocks in it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent.settimeout(WAIT_S)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream"
        # With a 300 s open time-out, only an interruptible wait can end the run quickly.
        process = start(tmp_path, "--source", url, "--stall-timeout", "300")
        connection, _ = silent.accept()
        with connection:
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("Ctrl-C did not stop a run blocked in opening a stream")
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "stopped by Ctrl-C before the first frame"


def test_a_stream_that_freezes_for_good_ends_with_status_1_and_one_line(tmp_path):
    with MJPEGServer(frozen=True) as server:
        process = start(tmp_path, "--source", server.url, "--stall-timeout", "1", "--max-reopen", "1")
        out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"error: stream {server.url} stalled: no new frame for 1 s; gave up after 1 reopen attempts"
    )
    assert "reopens: 1" in out


def test_a_stream_that_never_answers_is_given_up_after_the_stall_timeout(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream"
        process = start(tmp_path, "--source", url, "--stall-timeout", "1")
        out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 1
    assert err.strip().splitlines()[-1].startswith(f"error: cannot open stream {url}: no answer within 1 s;")


def test_a_refused_port_is_said_to_refuse_at_once_not_to_time_out(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/stream"
    process = start(tmp_path, "--source", url, "--stall-timeout", "30")
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 1
    # One line (FFmpeg's own report of the refusal is silenced), saying what happened and when.
    lines = err.strip().splitlines()
    said = re.fullmatch(
        rf"error: cannot open stream {re.escape(url)}: connection refused by 127\.0\.0\.1:{port} after (\d+\.\d) s; "
        r"check that it is connected, not used by another program, and that the index or URL is right",
        lines[0],
    )
    assert len(lines) == 1 and said, err
    assert float(said.group(1)) < 30


def test_a_signal_while_outputs_are_finalised_is_recorded_not_raised():
    before = signal.getsignal(signal.SIGTERM)
    with stop_signals() as received:
        with finalising():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # let the handler run inside the block
        assert received.signum == signal.SIGTERM and received.exit_status == 143
        os.kill(os.getpid(), signal.SIGHUP)  # later signals are ignored
        time.sleep(0.05)
        assert received.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(Stopped) as stopped:
        with stop_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)  # interrupted at once by the handler
    assert stopped.value.signum == signal.SIGTERM
