"""edge-bench's worker processes run the installed code, never files from the folder the user
runs it from: a hostile `benchmarks/` package and `json.py` there are never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.worker import worker_command
from edge_runtime.model_files.bundled import MODELS_DIR

EDGE_BENCH = Path(sys.executable).parent / "edge-bench"


def hostile_folder(folder: Path) -> Path:
    """A folder whose `benchmarks/` package and `json.py` each write the returned sentinel file when imported."""
    sentinel = folder / "sentinel.txt"
    payload = f"open({str(sentinel)!r}, 'a').write(__name__ + '\\n')\n"
    (folder / "benchmarks").mkdir()
    (folder / "benchmarks" / "__init__.py").write_text(payload)
    (folder / "benchmarks" / "worker.py").write_text(payload)
    (folder / "json.py").write_text(payload)
    return sentinel


def test_the_hostile_folder_runs_under_plain_python_m(tmp_path):
    """The attack the isolation stops: `python -m benchmarks.worker` from that folder runs its code."""
    sentinel = hostile_folder(tmp_path)
    subprocess.run([sys.executable, "-m", "benchmarks.worker"], cwd=tmp_path, input=b"{}", capture_output=True, timeout=120)
    assert sentinel.exists()


def test_worker_command_ignores_the_current_folder(tmp_path):
    sentinel = hostile_folder(tmp_path)
    done = subprocess.run(worker_command(), cwd=tmp_path, input='{"kind": "nonsense"}', capture_output=True, text=True,
                          timeout=120)
    assert not sentinel.exists()
    assert "unknown job kind 'nonsense'" in done.stdout  # the installed worker answered


def test_edge_bench_from_a_hostile_folder_runs_only_installed_code(tmp_path):
    sentinel = hostile_folder(tmp_path)
    report = tmp_path / "out" / "report.json"
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [str(EDGE_BENCH), "models", str(MODELS_DIR / "emotion_int8.onnx"), "--threads", "1", "--min-runs", "2",
         "--min-time", "0", "--warmup", "0", "--batch", "2", "--no-floor", "--json", str(report)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert not sentinel.exists()
    rows = json.loads(report.read_text())["rows"]
    assert [row["status"] for row in rows] == ["ok"]
