"""edge-convert through CliRunner: bad input (one line, exit 1), usage errors (exit 2), the
result table, a failed verification, and atomic writes when an export fails or is interrupted."""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, sidecar_path
from tests.conftest import REPOSITORY_MODELS

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")

from convert import exporters  # noqa: E402
from convert.cli import app  # noqa: E402
from convert.errors import ConvertError  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def error_line(result) -> str:
    """The single line a domain error prints (after any progress lines), with no traceback."""
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("edge-convert: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture(scope="module")
def misshapen_models(tmp_path_factory):
    """Models that load but are no emotion classifier: a 32x32 input, a 5-class output."""
    import keras
    from keras import layers

    from edge_runtime.model_files.keras_file import save_keras_file
    from edge_runtime.preprocess import InputSpec

    folder = tmp_path_factory.mktemp("misshapen")
    built = {}
    for name, input_shape, classes in (("small_input", (32, 32, 1), 7), ("five_classes", (48, 48, 1), 5)):
        model = keras.Sequential([keras.Input(input_shape), layers.Flatten(), layers.Dense(classes, activation="softmax")])
        built[name] = folder / name / "model.keras"
        save_keras_file(model, built[name], "test", InputSpec())
    return built


# --- bad input: one clear line, exit 1 ---------------------------------------------------------


def test_missing_model_file(tmp_path):
    result = invoke(tmp_path / "absent.keras", "--out", tmp_path / "out")
    assert result.exit_code == 1
    absent = tmp_path / "absent.keras"
    assert error_line(result) == f"edge-convert: error: {absent}: no such file; expected a .keras model written by edge-train"


def test_model_of_another_type(tmp_path):
    weights = tmp_path / "model.h5"
    weights.write_bytes(b"\x89HDF\r\n")
    result = invoke(weights, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).endswith("model.h5: not a Keras model; expected a .keras file written by edge-train")


def test_keras_suffix_on_a_file_that_is_no_archive(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    result = invoke(fake, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).endswith("model.keras: not a complete .keras zip archive (damaged, truncated, or another kind of file)")


def test_archive_that_keras_cannot_load(tmp_path, tiny_model):
    fake = tmp_path / "model.keras"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("readme.txt", "a zip, but no Keras model")
    shutil.copy(sidecar_path(tiny_model), sidecar_path(fake))
    result = invoke(fake, "--format", "onnx", "--no-verify", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result) == f"edge-convert: error: {fake}: not a Keras model: the archive has no config.json"


def test_model_without_its_metadata_sidecar(tmp_path, tiny_model):
    bare = tmp_path / "model.keras"
    shutil.copy(tiny_model, bare)
    result = invoke(bare, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).endswith(
        "model.keras: no metadata file model.keras.json next to it; "
        "expected the sidecar edge-train writes (it records the labels and the input scaling)"
    )


def test_model_input_not_48x48x1(tmp_path, misshapen_models):
    result = invoke(misshapen_models["small_input"], "--format", "onnx", "--no-verify", "--out", tmp_path)
    assert result.exit_code == 1
    assert error_line(result).endswith("model.keras: model input is 32x32x1; expected 48x48x1 (a grayscale face)")


def test_model_output_not_seven_classes(tmp_path, misshapen_models):
    result = invoke(misshapen_models["five_classes"], "--format", "onnx", "--no-verify", "--out", tmp_path)
    assert result.exit_code == 1
    assert error_line(result).endswith("model.keras: model output is 5; expected 7 class probabilities")


def test_empty_calibration_folder(tmp_path, tiny_model):
    empty = tmp_path / "faces"
    empty.mkdir()
    result = invoke(tiny_model, "--format", "tflite", "--quantize", "--calibration-data", empty, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).startswith(f"edge-convert: error: calibration data: {empty}: no train/ or test/ folder;")


def test_calibration_csv_without_faces(tmp_path, tiny_model):
    csv_file = tmp_path / "fer2013.csv"
    csv_file.write_text("emotion,pixels,Usage\n")
    result = invoke(tiny_model, "-f", "onnx", "-q", "--calibration-data", csv_file, "--no-verify", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result) == f"edge-convert: error: calibration data: {csv_file}: no faces found; expected rows"


def test_unreadable_calibration_csv(tmp_path, tiny_model):
    csv_file = tmp_path / "faces.csv"
    csv_file.write_bytes(b"\xff\xfe\x00binary")
    result = invoke(tiny_model, "-f", "tflite-int8", "--calibration-data", csv_file, "--no-verify", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).startswith(f"edge-convert: error: calibration data: {csv_file}: header is")


def test_calibration_data_without_a_train_split(tmp_path, tiny_model, fer_folder):
    test_only = tmp_path / "test_only"
    shutil.copytree(fer_folder / "test", test_only / "test")
    result = invoke(tiny_model, "-f", "tflite-int8", "--calibration-data", test_only, "--no-verify", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"edge-convert: error: calibration data: {test_only}: no training faces; expected images in train/<class>/"
    )


def test_output_folder_that_is_a_file(tmp_path, tiny_model):
    taken = tmp_path / "taken"
    taken.write_text("")
    result = invoke(tiny_model, "--format", "onnx", "--no-verify", "--out", taken)
    assert result.exit_code == 1
    assert error_line(result) == f"edge-convert: error: {taken}: is a file; expected an output folder"


def test_output_folder_that_cannot_be_created(tmp_path, tiny_model):
    blocked = tmp_path / "taken" / "exports"
    (tmp_path / "taken").write_text("")
    result = invoke(tiny_model, "--format", "onnx", "--no-verify", "--out", blocked)
    assert result.exit_code == 1
    assert error_line(result) == f"edge-convert: error: {blocked}: cannot write to the output folder (Not a directory)"


def test_a_refused_run_removes_the_out_folder_it_created_and_keeps_an_existing_one(tmp_path, tiny_model):
    empty = tmp_path / "faces"
    empty.mkdir()
    created, existing = tmp_path / "new" / "exports", tmp_path / "existing"
    existing.mkdir()
    for out in (created, existing):
        result = invoke(tiny_model, "-f", "tflite", "--quantize", "--calibration-data", empty, "--no-verify", "--out", out)
        assert result.exit_code == 1
        assert error_line(result).startswith(f"edge-convert: error: calibration data: {empty}: no train/ or test/ folder;")
    assert not (tmp_path / "new").exists()
    assert existing.is_dir() and list(existing.iterdir()) == []


def test_no_verification_data_found(tmp_path, tiny_model):
    # The tiny model has no run config.json next to it, so there is no default data set.
    result = invoke(tiny_model, "--format", "onnx", "--out", tmp_path)
    assert result.exit_code == 1
    assert error_line(result).endswith("pass --verify-data DIR|CSV, or --no-verify")


def test_no_calibration_data_found(tmp_path, tiny_model):
    result = invoke(tiny_model, "--format", "tflite", "--quantize", "--no-verify", "--out", tmp_path)
    assert result.exit_code == 1
    assert error_line(result).endswith("pass --calibration-data DIR|CSV")


def test_verification_data_without_a_validation_split(tmp_path, tiny_model, fer_folder):
    train_only = tmp_path / "train_only"
    shutil.copytree(fer_folder / "train", train_only / "train")
    result = invoke(tiny_model, "--format", "onnx", "--verify-data", train_only, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert error_line(result).endswith(
        f"verification data: {train_only}: no validation faces; expected PublicTest_* images in test/<class>/, "
        "or pass --verify-data or --no-verify"
    )


def test_name_that_is_not_a_file_stem(tmp_path, tiny_model):
    result = invoke(tiny_model, "--format", "onnx", "--no-verify", "--name", "a/b", "--out", tmp_path)
    assert result.exit_code == 1
    assert error_line(result) == "edge-convert: error: --name 'a/b': expected a file name stem such as 'emotion'"


# --- usage errors: typer's exit code 2 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quantize", "--precision", "fp16"], "--quantize (full int8) and --precision choose different variants"),
        (["--format", "onnx", "--precision", "fp16"], "--precision fp16 is a TFLite variant"),
        (["--format", "tflite-int8", "--quantize"], "--format tflite-int8 names one variant"),
        (["--format", "all", "--quantize"], "--format all writes every variant"),
        (["--format", "keras"], "'keras' is not one of"),
        (["--format", "tflite-int4"], "'tflite-int4' is not one of"),
        (["--precision", "int4"], "'int4' is not one of"),
        (["--min-agreement", "1.5"], "--min-agreement"),
    ],
)
def test_usage_errors(tmp_path, tiny_model, args, message):
    result = invoke(tiny_model, "--out", tmp_path, *args)
    assert result.exit_code == 2
    assert message in " ".join(line.strip("│ ") for line in result.output.splitlines())


# --- a conversion through the CLI --------------------------------------------------------------


def test_cli_writes_verified_exports_and_prints_the_table(tmp_path, tiny_model, fer_csv):
    out = tmp_path / "out"
    result = invoke(tiny_model, "-f", "onnx", "-f", "tflite", "--verify-data", fer_csv, "--name", "emotion", "--out", out)
    assert result.exit_code == 0, result.output
    table = [line for line in result.stdout.splitlines() if line.startswith(("format", "onnx", "tflite"))]
    assert table[0].split()[:3] == ["format", "file", "size"]
    assert [line.split()[:2] for line in table[1:]] == [["onnx-fp32", "emotion_fp32.onnx"], ["tflite-fp32", "emotion_fp32.tflite"]]
    assert all(line.endswith("ok") for line in table[1:])
    for name in ("emotion_fp32.onnx", "emotion_fp32.tflite"):
        report = json.loads((out / f"{name}.report.json").read_text())
        assert report["verification"]["passed"] and report["verification"]["n"] == 42  # 6 PublicTest rows per class
    assert sorted(p.name for p in out.iterdir()) == [
        "emotion_fp32.onnx",
        "emotion_fp32.onnx.report.json",
        "emotion_fp32.tflite",
        "emotion_fp32.tflite.json",
        "emotion_fp32.tflite.report.json",
    ]


def test_no_verify_writes_the_file_without_a_report(tmp_path, tiny_model):
    result = invoke(tiny_model, "--format", "onnx", "--no-verify", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model_fp32.onnx").is_file()
    assert not (tmp_path / "model_fp32.onnx.report.json").exists()
    assert "not verified" in result.stdout


def _wrong_onnx_exporter(job, format_name, target):
    """A valid ONNX classifier that is not the Keras model: what verification exists to catch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.01, (48 * 48, 7)).astype(np.float32), "weights"),
        numpy_helper.from_array(np.array([-1, 48 * 48], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Reshape", ["face", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "wrong",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", 48, 48, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 7])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = job.metadata(format_name, {})
    helper.set_model_props(model, {ONNX_METADATA_KEY: metadata.to_json()})
    onnx.save(model, str(target))
    return metadata


def test_an_export_that_differs_from_keras_fails_verification(tmp_path, tiny_model, fer_folder, monkeypatch):
    monkeypatch.setitem(exporters.EXPORTERS, "onnx-fp32", _wrong_onnx_exporter)
    result = invoke(tiny_model, "--format", "onnx", "--verify-data", fer_folder, "--out", tmp_path)
    assert result.exit_code == 1
    assert f"edge-convert: error: onnx-fp32 failed verification (see the .report.json files in {tmp_path})" in result.output
    report = json.loads((tmp_path / "model_fp32.onnx.report.json").read_text())
    assert report["verification"]["passed"] is False
    assert report["verification"]["reason"].startswith("max |difference|") and "> 1e-04" in report["verification"]["reason"]


# --- atomic writes ------------------------------------------------------------------------------


def _existing_export(folder):
    folder.mkdir(exist_ok=True)
    good = folder / "model_fp32.tflite"
    good.write_bytes(b"GOOD MODEL")
    sidecar_path(good).write_text("GOOD METADATA")
    return good


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_failing_exporter_leaves_the_previous_file_untouched(tmp_path, tiny_model, monkeypatch):
    good = _existing_export(tmp_path / "out")

    def failing_exporter(job, format_name, target):
        target.write_bytes(b"HALF A MOD")
        raise ConvertError(f"{format_name}: the TFLite converter failed (simulated)")

    monkeypatch.setitem(exporters.EXPORTERS, "tflite-fp32", failing_exporter)
    result = invoke(tiny_model, "--format", "tflite", "--no-verify", "--out", good.parent)
    assert result.exit_code == 1
    assert error_line(result) == "edge-convert: error: tflite-fp32: the TFLite converter failed (simulated)"
    assert good.read_bytes() == b"GOOD MODEL" and sidecar_path(good).read_text() == "GOOD METADATA"
    assert _leftovers(good.parent) == []


def test_an_interrupted_export_leaves_the_previous_file_untouched(tmp_path, tiny_model, monkeypatch):
    good = _existing_export(tmp_path / "out")

    def interrupted_exporter(job, format_name, target):
        target.write_bytes(b"HALF A MOD")
        raise KeyboardInterrupt

    monkeypatch.setitem(exporters.EXPORTERS, "tflite-fp32", interrupted_exporter)
    result = invoke(tiny_model, "--format", "tflite", "--no-verify", "--out", good.parent)
    assert result.exit_code == 130
    assert "interrupted" in result.output
    assert good.read_bytes() == b"GOOD MODEL" and sidecar_path(good).read_text() == "GOOD METADATA"
    assert _leftovers(good.parent) == []


# --- a full disk ---------------------------------------------------------------------------------


def _fill(path):
    """Writes `path` until its disk is full, as another program could while a run converts."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(handle, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(handle)


def test_a_disk_too_small_for_the_export_is_refused_before_converting(small_disk):
    previous = small_disk / "emotion_fp32.onnx"
    previous.write_bytes(b"GOOD MODEL")
    result = invoke(REPOSITORY_MODELS / "emotion.keras", "-f", "onnx-fp32", "--no-verify", "--name", "emotion", "--out", small_disk)
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith(f"edge-convert: error: {small_disk}: not enough disk space: ")
    assert line.endswith("free some space or choose another --out")
    assert "writing" not in result.output
    assert previous.read_bytes() == b"GOOD MODEL" and os.listdir(small_disk) == ["emotion_fp32.onnx"]


def test_a_disk_that_fills_during_the_run_keeps_the_previous_export(small_disk, tiny_model, monkeypatch):
    import convert.api

    previous = small_disk / "model_fp32.onnx"
    previous.write_bytes(b"GOOD MODEL")
    room_checked = convert.api.check_free_space

    def check_then_fill(out_dir, exports):
        room_checked(out_dir, exports)
        _fill(small_disk / "filler")

    monkeypatch.setattr(convert.api, "check_free_space", check_then_fill)
    result = invoke(tiny_model, "-f", "onnx-fp32", "--no-verify", "--out", small_disk)
    assert result.exit_code == 1
    assert error_line(result) == f"edge-convert: error: {previous}: cannot be written (disk full)"
    assert previous.read_bytes() == b"GOOD MODEL" and sorted(os.listdir(small_disk)) == ["filler", "model_fp32.onnx"]
