"""edge-bench through CliRunner: the accuracy command on the synthetic data with the tiny model,
short real runs of models/pipeline/scene, and the errors (one line and exit 1 for bad input,
exit 2 for usage errors)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from edge_runtime.limits import max_threads
from edge_runtime.model_files.bundled import BUNDLED_MODELS, MODELS_DIR
from fer_data.fer2013 import load_fer2013
from fer_data.metrics import classification_report
from tests.conftest import SHARED_YUNET
from tests.synthetic import synthetic_face

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def flat(output: str) -> str:
    """Usage errors come in a box wrapped at the terminal width: the text without the box."""
    return " ".join(output.replace("│", " ").split())


def error_line(result) -> str:
    """The one line a domain error prints, last, with no traceback."""
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("edge-bench: error: "), result.output
    assert "Traceback" not in result.output
    return lines[-1]


# --- accuracy -----------------------------------------------------------------------------------


def test_accuracy_of_the_tiny_model_on_the_synthetic_folder(tiny_model, fer_folder, tmp_path):
    out = tmp_path / "accuracy.json"
    markdown = tmp_path / "accuracy.md"
    result = invoke("accuracy", "--model", tiny_model, "--data", fer_folder, "--split", "test", "--json", out, "--markdown", markdown)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    # The folder layout's --split test is every image under test/: 6 per class.
    assert report["n"] == 42
    assert report["settings"]["backend"] == "keras"
    assert report["rows"][0]["status"] == "ok"
    from edge_runtime.backends import load_backend

    split = load_fer2013(fer_folder).evaluation_split("test")
    with load_backend(tiny_model) as backend:
        expected = classification_report(split.labels, backend.predict_faces(list(split.images)))
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert report["confusion_matrix"] == expected["confusion_matrix"]
    assert set(report["per_class"]) == set(report["labels"])
    assert "top-1" in result.output and "confusion (rows: true, columns: predicted)" in result.output
    assert "| model | status | faces | top-1 | macro-F1 |" in markdown.read_text()


def test_accuracy_on_the_csv_val_split(tiny_model, fer_csv, tmp_path):
    out = tmp_path / "a.json"
    result = invoke("accuracy", "--model", tiny_model, "--data", fer_csv, "--split", "val", "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n"] == 42  # 6 PublicTest rows per class


def test_accuracy_of_the_bundled_model(fer_folder, tmp_path):
    if not any((MODELS_DIR / name).is_file() for name in BUNDLED_MODELS.values()):
        pytest.skip("no bundled model in this checkout")
    out = tmp_path / "a.json"
    result = invoke("accuracy", "--data", fer_folder, "--split", "val", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["settings"]["model"].startswith(str(MODELS_DIR))
    assert 0.0 <= report["accuracy"] <= 1.0 and report["n"] == 42


def test_accuracy_needs_data():
    result = invoke("accuracy")
    assert result.exit_code == 2
    assert "Missing option '--data'" in flat(result.output)


def test_accuracy_on_a_folder_that_is_no_data_set(tmp_path):
    result = invoke("accuracy", "--data", tmp_path)
    assert result.exit_code == 1
    assert error_line(result) == f"edge-bench: error: {tmp_path}: no train/ or test/ folder; expected the FER-2013 folder layout " \
                                 "(train/<class>/, test/<class>/)"


def test_accuracy_of_a_file_no_backend_runs(fer_folder, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    result = invoke("accuracy", "--model", notes, "--data", fer_folder)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"edge-bench: error: {notes}: no backend runs '.txt' files")


def test_two_outputs_naming_one_file_are_refused_before_measuring(fer_folder, tmp_path):
    same = tmp_path / "report.txt"
    result = invoke("accuracy", "--data", fer_folder, "--json", same, "--markdown", same)
    assert error_line(result) == f"edge-bench: error: --markdown {same}: is also the --json output; give each output its own path"
    assert not same.exists()


def test_unknown_split_is_a_usage_error(fer_folder):
    result = invoke("accuracy", "--data", fer_folder, "--split", "holdout")
    assert result.exit_code == 2
    assert "'holdout' is not one of" in flat(result.output)


# --- models ---------------------------------------------------------------------------------------


def test_models_bad_thread_list_is_a_usage_error():
    result = invoke("models", "--threads", "1,two")
    assert result.exit_code == 2
    assert "'1,two': expected comma-separated integers >= 1" in flat(result.output)


def test_models_thread_counts_are_bounded():
    result = invoke("models", "--threads", "1,100000")
    assert result.exit_code == 2
    assert f"threads 100000 is more than {max_threads()}" in flat(result.output)
    assert invoke("pipeline", "--threads", "100000").exit_code == 2


def test_models_exits_1_when_every_row_failed(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "m.json"
    result = invoke("models", broken, "--threads", "1", "--no-floor", "--in-process", "--json", out)
    assert result.exit_code == 1
    assert "edge-bench: error: every row failed (1 of 1); the table above says why" in result.output
    assert [row["status"] for row in json.loads(out.read_text())["rows"]] == ["failed"]


def test_models_reports_an_unsupported_file_as_skipped(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = tmp_path / "m.json"
    result = invoke("models", notes, "--threads", "1", "--no-floor", "--in-process", "--json", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["status"], r["reason"].split(":")[0]) for r in rows] == [("skipped", "format unsupported")]
    assert "notes.txt" in result.output or "txt/-" in result.output


def test_models_measures_the_tiny_model_in_a_subprocess(tiny_model, tmp_path):
    out = tmp_path / "m.json"
    result = invoke("models", tiny_model, "--threads", "1", "--min-runs", "3", "--min-time", "0", "--warmup", "1", "--batch", "4",
                    "--no-floor", "--json", out)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"] == "ok", row
    assert row["name"] == "keras/keras/t1" and row["runs"] >= 3
    assert row["peak_rss_mb"] > 0 and row["size_bytes"] == tiny_model.stat().st_size
    for key in ("load_ms", "first_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "std_ms", "throughput_b1", "throughput_batch"):
        assert row[key] >= 0


def test_plot_without_matplotlib_fails_before_running(monkeypatch, tmp_path):
    monkeypatch.setattr("benchmarks.plot.module_available", lambda name: False)
    result = invoke("models", tmp_path / "x.txt", "--plot", tmp_path / "p.png")  # usage checks come first
    assert result.exit_code == 2
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    result = invoke("models", notes, "--no-floor", "--in-process", "--plot", tmp_path / "p.png")
    assert result.exit_code == 1
    assert error_line(result) == 'edge-bench: error: the --plot option needs matplotlib: pip install matplotlib (the [train] extra has it)'
    assert not (tmp_path / "p.png").exists()


# --- pipeline and scene ----------------------------------------------------------------------------


def write_video(path, frames: int = 12) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    rng = np.random.default_rng(0)
    face = cv2.resize(synthetic_face(3, rng), (170, 170))
    for _ in range(frames):
        frame = np.full((480, 640, 3), 110, np.uint8)
        frame[120:290, 230:400] = face[..., None]
        writer.write(frame)
    writer.release()


def test_pipeline_runs_the_seed_style_row_and_a_runtime_row(tiny_model, tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video)
    out, plot = tmp_path / "p.json", tmp_path / "p.png"
    result = invoke("pipeline", tiny_model, "--source", video, "--threads", "1", "--detect-scale", "0.5", "--detect-every", "1",
                    "--detector", "haar", "--max-frames", "4", "--warmup-frames", "1", "--in-process", "--json", out, "--plot", plot)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == ["seed-style", "keras haar scale 0.5 every 1"]
    for row in report["rows"]:
        assert row["status"] == "ok", row
        assert row["frames"] == 4 and row["fps"] > 0
        for stage in ("read", "detect", "preprocess", "infer", "draw"):
            assert f"{stage}_p50_ms" in row and f"{stage}_p95_ms" in row
    assert report["rows"][0]["speedup"] == pytest.approx(1.0)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_bad_detect_scale_is_a_usage_error():
    result = invoke("pipeline", "--detect-scale", "2")
    assert result.exit_code == 2
    assert "expected comma-separated fractions in (0, 1]" in flat(result.output)


def test_scene_with_the_tiny_model(tiny_model, fer_folder, tmp_path):
    out, video = tmp_path / "s.json", tmp_path / "scene.avi"
    result = invoke("scene", "--model", tiny_model, "--data", fer_folder, "--frames", "3", "--faces-per-frame", "2",
                    "--save-video", video, "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    # A row per detector, on the same frames; YuNet's needs its file (in the tests' cache when ../shared has it).
    rows = {row["detector"]: row for row in report["rows"]}
    assert set(rows) == {"yunet", "haar"}
    measured = [rows["haar"], *([rows["yunet"]] if SHARED_YUNET.is_file() else [])]
    for row in measured:
        assert row["status"] == "ok", row
        assert row["faces"] == 6 and report["scene"]["faces"] == 6
        for key in ("recall", "label_accuracy", "end_to_end_accuracy", "crop_accuracy", "crop_accuracy_detected"):
            assert 0.0 <= row[key] <= 1.0
    capture = cv2.VideoCapture(str(video))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()


@pytest.mark.skipif(not SHARED_YUNET.is_file(), reason=f"needs {SHARED_YUNET}")
def test_scene_and_pipeline_take_the_yunet_file_from_the_command_line(tiny_model, fer_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_EMOTION_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "s.json"
    result = invoke("scene", "--model", tiny_model, "--data", fer_folder, "--frames", "2", "--detector", "yunet", "--json", out)
    assert result.exit_code == 1, result.output  # the only row failed: nothing in the cache
    assert "edge-run --fetch-models" in result.output
    result = invoke("scene", "--model", tiny_model, "--data", fer_folder, "--frames", "2", "--detector", "yunet",
                    "--detector-model", SHARED_YUNET, "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["rows"][0]["status"] == "ok" and report["settings"]["detector_model"] == str(SHARED_YUNET)

    result = invoke("pipeline", tiny_model, "--detector", "yunet", "--detector-model", SHARED_YUNET, "--detect-scale", "0.5",
                    "--detect-every", "1", "--max-frames", "3", "--warmup-frames", "1", "--json", out)
    assert result.exit_code == 0, result.output
    rows = [row for row in json.loads(out.read_text())["rows"] if row.get("detector") == "yunet"]
    assert rows and all(row["status"] == "ok" and row["detector_model"] == str(SHARED_YUNET) for row in rows)


def test_scene_bad_faces_per_frame_is_a_usage_error(fer_folder):
    result = invoke("scene", "--data", fer_folder, "--faces-per-frame", "3..1")
    assert result.exit_code == 2
    assert "expected N or LOW..HIGH" in flat(result.output)
