"""edge-convert and the temporary files of a run that was killed: SIGKILL strands them and the
next run into the same folder deletes them; SIGTERM and Ctrl-C delete them on the way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from convert.cli import app  # noqa: E402
from edge_runtime.outputs.atomic import stranded_files  # noqa: E402

EDGE_CONVERT = Path(sys.executable).parent / "edge-convert"
FORMATS = ["--format", "tflite-fp32", "--format", "onnx-fp32", "--no-verify"]


def finished_pid() -> int:
    """The id of a process that has exited (and so is no one's any more)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hidden(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def start_and_signal_while_writing(model: Path, out: Path, signum: int) -> subprocess.CompletedProcess:
    """Starts edge-convert and sends `signum` as soon as a temporary export exists in `out`."""
    child = subprocess.Popen([str(EDGE_CONVERT), str(model), *FORMATS, "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        while child.poll() is None and not (out.is_dir() and any(p.name.startswith(".model_") for p in out.iterdir())):
            time.sleep(0.005)
        assert child.poll() is None, "edge-convert finished before a temporary file was seen"
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return subprocess.CompletedProcess(child.args, child.returncode, "", stderr)


def test_the_next_run_removes_files_a_killed_run_stranded(tmp_path, tiny_model, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    dead, alive = finished_pid(), os.getppid()
    stranded = out / f".emotion_fp32.tflite.{dead}.abcd1234.tflite"
    stranded.write_bytes(b"half a model")
    in_use = out / f".emotion_fp32.onnx.{alive}.abcd1234.onnx"  # another process still writing
    in_use.write_bytes(b"being written")
    own = out / ".notes.txt"
    own.write_text("the user's own hidden file")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    work = tmp_path / "system-tmp" / f"edge-convert-{dead}-x1y2z3"
    work.mkdir(parents=True)
    (work / "fp32.onnx").write_bytes(b"x")

    result = CliRunner().invoke(app, [str(tiny_model), *FORMATS, "--name", "emotion", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "removed 2 temporary file(s) left by an interrupted run" in result.output
    assert not stranded.exists() and not work.exists()
    assert in_use.exists() and own.exists()
    assert (out / "emotion_fp32.tflite").is_file() and (out / "emotion_fp32.onnx").is_file()


def test_sigkill_strands_a_file_that_the_next_run_removes(tmp_path, tiny_model):
    out = tmp_path / "out"
    killed = start_and_signal_while_writing(tiny_model, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    left = stranded_files(out)
    assert left, hidden(out)
    done = subprocess.run([str(EDGE_CONVERT), str(tiny_model), *FORMATS, "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "left by an interrupted run" in done.stderr
    assert hidden(out) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_delete_the_temporary_files_on_the_way_out(tmp_path, tiny_model, signum):
    out = tmp_path / "out"
    out.mkdir()  # a folder the run created would be removed with them, when still empty
    stopped = start_and_signal_while_writing(tiny_model, out, signum)
    assert stopped.returncode == 128 + signum
    assert f"interrupted by {signal.Signals(signum).name}" in stopped.stderr
    assert hidden(out) == []


def test_a_stop_between_a_temporary_file_and_its_clean_up_strands_nothing(tmp_path, tiny_model, monkeypatch):
    """The race the signal tests can only hit by chance: a stop lands after a temporary file of
    this process exists but before the code that would delete it runs."""
    import convert.api
    from edge_runtime.pipeline.stopping import Stopped

    out = tmp_path / "out"
    out.mkdir()  # a folder the run created would be removed with the file, when still empty

    def interrupted_export(job, row, path):
        (path.parent / f".{path.name}.{os.getpid()}.abcd1234{path.suffix}").write_bytes(b"half a model")
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(convert.api, "_export_atomically", interrupted_export)
    result = CliRunner().invoke(app, [str(tiny_model), *FORMATS, "--out", str(out)])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert hidden(out) == []


def test_the_next_run_removes_the_temporary_folder_of_a_killed_run_not_that_of_a_live_one(tmp_path, tiny_model):
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    live = system_tmp / f"edge-convert-{os.getpid()}-x1y2z3"  # a conversion still running in this process
    live.mkdir()
    environment = {**os.environ, "TMPDIR": str(system_tmp)}
    command = [str(EDGE_CONVERT), str(tiny_model), *FORMATS, "--out", str(tmp_path / "out")]
    child = subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL)
    try:
        # Killed once TensorFlow has written a temporary file (autograph's source, a SavedModel).
        while child.poll() is None and not any(path.is_file() for path in system_tmp.rglob("*")):
            time.sleep(0.005)
        assert child.poll() is None, "edge-convert finished before TensorFlow wrote a temporary file"
    finally:
        child.kill()
        child.wait()
    assert sorted(path.name for path in system_tmp.iterdir()) != [live.name]

    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "left by an interrupted run" in done.stderr
    assert [path.name for path in system_tmp.iterdir()] == [live.name]
