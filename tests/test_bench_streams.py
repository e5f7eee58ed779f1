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


@pytest.mark.parametrize("staggered", [True, False])
def test_sources_change_scene_at_different_moments_unless_asked_not_to(fer_folder, tmp_path, staggered):
    import cv2
    import numpy as np

    from benchmarks.streams import StreamsConfig, _write_sources

    config = StreamsConfig(data=fer_folder, max_sources=3, seconds=2, staggered_cuts=staggered)
    changes = []
    for video in _write_sources(config, tmp_path, lambda line: None):
        capture, frames = cv2.VideoCapture(str(video)), []
        while (read := capture.read())[0]:
            frames.append(read[1].astype(np.int16))
        capture.release()
        # A scene change moves the picture far more than the codec's noise does.
        changes.append([n for n in range(1, len(frames)) if np.abs(frames[n] - frames[n - 1]).mean() > 10])
    assert all(len(found) == 1 for found in changes), changes
    moments = [found[0] for found in changes]
    assert (len(set(moments)) == 3) if staggered else (moments == [30, 30, 30]), moments
