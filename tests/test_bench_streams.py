"""`edge-bench streams`: camera-like sources played in real time through the multi-source loop."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import FIXTURE_MODELS


def test_edge_bench_streams_reports_the_sources_kept_in_real_time(fer_folder, tmp_path):
    from benchmarks.cli import app as bench
    from tests.conftest import SHARED_YUNET

    if not SHARED_YUNET.is_file():
        pytest.skip("needs YuNet's file in ../shared/models")
    report_path = tmp_path / "streams.json"
    result = CliRunner().invoke(bench, ["streams", "--data", str(fer_folder), "--model", str(FIXTURE_MODELS["onnx"]),
                                        "--max-sources", "2", "--seconds", "2", "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    realtime = [row for row in report["rows"] if row["name"].endswith("realtime")]
    assert [row["sources"] for row in realtime] == [1, 2]
    assert report["max_realtime_sources"] == sum(1 for row in realtime if row["realtime"]) and report["max_realtime_sources"] >= 1
    assert all(row["fps_per_source"] <= 31 for row in realtime)  # played in real time: never faster than 30 FPS
    assert isinstance(report["batching_gain"], float)
