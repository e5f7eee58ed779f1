"""Calibration and verification faces, the default data set of a run, format selection and the
pass criteria: the parts of edge-convert that need no TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convert.calibration import calibration_faces, load_data, stratified_indices, training_data_path, verification_faces
from convert.errors import ConvertError
from convert.exporters import EXPORTABLE, select_formats
from convert.verify import Thresholds, compare, format_table, judge
from edge_runtime.preprocess import InputSpec


def _run_folder(root, data: str, out: str | None = None):
    run = root / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"data": data, "out": out if out is not None else "runs/r1"}))
    return run / "model.keras"


def test_training_data_relative_to_where_training_ran(tmp_path, monkeypatch):
    (tmp_path / "project" / "data").mkdir(parents=True)
    model = _run_folder(tmp_path / "project", "data")
    monkeypatch.chdir(tmp_path)  # elsewhere: the run's own `out` tells where edge-train ran
    assert training_data_path(model) == tmp_path / "project" / "data"


def test_training_data_relative_to_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "shared" / "fer").mkdir(parents=True)
    model = _run_folder(tmp_path / "elsewhere", "shared/fer", out="/somewhere/else")
    monkeypatch.chdir(tmp_path)
    assert training_data_path(model) == tmp_path / "shared" / "fer"


def test_training_data_relative_to_the_run_folders_parent(tmp_path, monkeypatch):
    model = _run_folder(tmp_path, "fer.csv", out="/moved")
    (model.parent.parent / "fer.csv").write_text("")
    monkeypatch.chdir(model.parent)
    assert training_data_path(model) == model.parent.parent / "fer.csv"


def test_training_data_absolute_missing_or_unknown(tmp_path):
    model = _run_folder(tmp_path / "a", str(tmp_path))
    assert training_data_path(model) == tmp_path
    assert training_data_path(_run_folder(tmp_path / "b", str(tmp_path / "gone"))) is None
    lonely = tmp_path / "c" / "model.keras"
    lonely.parent.mkdir()
    assert training_data_path(lonely) is None
    broken = _run_folder(tmp_path / "d", "x")
    (broken.parent / "config.json").write_text("{not json")
    assert training_data_path(broken) is None


def test_stratified_sample_follows_class_shares_and_is_seeded():
    labels = np.repeat(np.arange(7), [400, 30, 400, 700, 500, 480, 300])
    chosen = stratified_indices(labels, 300, seed=0)
    assert len(chosen) == 300 and len(np.unique(chosen)) == 300
    counts = np.bincount(labels[chosen], minlength=7)
    expected = 300 * np.bincount(labels) / len(labels)
    assert np.all(np.abs(counts - expected) <= 1)
    assert np.array_equal(chosen, stratified_indices(labels, 300, seed=0))
    assert not np.array_equal(chosen, stratified_indices(labels, 300, seed=1))


def test_stratified_sample_keeps_a_rare_class_and_returns_all_when_asked():
    labels = np.array([0] * 995 + [1] * 5)
    assert 1 in labels[stratified_indices(labels, 50, seed=0)]
    assert np.array_equal(stratified_indices(labels, 0, seed=0), np.arange(1000))
    assert np.array_equal(stratified_indices(labels, 5000, seed=0), np.arange(1000))


def test_faces_go_through_the_training_preprocessing(fer_folder):
    data = load_data(fer_folder, "calibration")
    raw = calibration_faces(data, InputSpec(), 70)
    scaled = calibration_faces(data, InputSpec(scale=1 / 255.0), 70)
    assert raw.batch.shape == (70, 48, 48, 1) and raw.batch.dtype == np.float32
    assert raw.batch.max() > 1.0 and scaled.batch.max() <= 1.0
    np.testing.assert_allclose(scaled.batch, raw.batch / 255.0, rtol=1e-6)
    assert np.bincount(raw.labels, minlength=7).tolist() == [10] * 7
    assert (raw.split, raw.source) == ("train", str(fer_folder))


def test_verification_faces_come_from_the_validation_split(fer_csv):
    data = load_data(fer_csv, "verification")
    everything = verification_faces(data, InputSpec(), 0)
    assert len(everything) == 42 and everything.split == "val"  # 6 PublicTest rows per class
    assert len(verification_faces(data, InputSpec(), 14)) == 14


def test_missing_data_is_one_line_naming_the_role(tmp_path):
    with pytest.raises(ConvertError, match=r"^verification data: .*absent: no such file or folder"):
        load_data(tmp_path / "absent", "verification")


@pytest.mark.parametrize(
    ("words", "quantize", "precision", "expected"),
    [
        (["tflite"], False, None, ["tflite-fp32"]),
        (["tflite"], True, None, ["tflite-int8"]),
        (["tflite"], False, "fp16", ["tflite-fp16"]),
        (["tflite"], False, "dynamic", ["tflite-dynamic"]),
        (["onnx"], False, None, ["onnx-fp32"]),
        (["onnx"], True, None, ["onnx-int8"]),
        (["onnx", "tflite"], True, None, ["onnx-int8", "tflite-int8"]),
        (["all"], False, None, list(EXPORTABLE)),
        (["onnx-fp32", "onnx", "tflite-int8"], False, None, ["onnx-fp32", "tflite-int8"]),
    ],
)
def test_format_words_select_table_rows(words, quantize, precision, expected):
    assert select_formats(words, quantize, precision) == expected


def test_all_is_every_exportable_format_in_table_order():
    assert EXPORTABLE == ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")


def test_the_source_format_is_not_an_export():
    with pytest.raises(ValueError, match="'keras' is the source format, not an export"):
        select_formats(["keras"])


def test_compare_counts_agreement_differences_and_accuracy():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    candidate = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    stats = compare(reference, candidate, np.array([0, 1, 1, 1]))
    assert stats["agreement"] == 0.75
    assert stats["max_abs_diff"] == pytest.approx(0.2)
    assert stats["mean_abs_diff"] == pytest.approx((0.1 * 2 + 0.2 * 2) / 8)
    assert (stats["keras_accuracy"], stats["export_accuracy"]) == (0.75, 1.0)


def test_pass_criteria_by_precision():
    # Thresholds of its own, not PARITY_THRESHOLDS: judge applies whatever it is given.
    thresholds = Thresholds(max_diff=1e-3, min_agreement=0.9)
    assert judge("fp32", {"max_abs_diff": 9e-4, "agreement": 1.0}, thresholds)[0]
    passed, reason, criterion = judge("fp32", {"max_abs_diff": 2e-3, "agreement": 1.0}, thresholds)
    assert not passed and reason == "max |difference| 2.00e-03 > 1e-03" and criterion == {"metric": "max_abs_diff", "max": 1e-3}
    for precision in ("fp16", "dynamic", "int8"):
        assert judge(precision, {"max_abs_diff": 0.05, "agreement": 0.9}, thresholds)[0]
        passed, reason, _ = judge(precision, {"max_abs_diff": 0.0, "agreement": 0.89}, thresholds)
        assert not passed and reason == "top-1 agreement 89.00% < 90%"


def test_table_lists_each_export():
    verification = {
        "agreement": 0.99,
        "max_abs_diff": 0.01,
        "mean_abs_diff": 0.001,
        "keras_accuracy": 0.65,
        "export_accuracy": 0.648,
        "passed": True,
        "reason": "",
    }
    rows = [
        {"format": "tflite-int8", "file": "m_int8.tflite", "size_bytes": 1_210_000, "verification": verification},
        {"format": "onnx-fp32", "file": "m_fp32.onnx", "size_bytes": 4_700, "verification": None},
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["format", "file", "size", "agree", "max", "diff", "mean", "diff", "keras", "acc", "export", "acc", "result"]
    assert lines[1].split() == ["tflite-int8", "m_int8.tflite", "1.21", "MB", "99.00%", "1.00e-02", "1.00e-03", "65.00%", "64.80%", "ok"]
    assert lines[2].split()[:4] == ["onnx-fp32", "m_fp32.onnx", "4.7", "kB"] and lines[2].endswith("not verified")


def test_importing_the_cli_does_not_import_tensorflow():
    # `edge-convert --help` and every bad-input error stay fast: TensorFlow loads only for real work.
    import subprocess
    import sys

    code = "import sys, convert.cli; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
