"""Model integrity: every bundled model carries a checksum; a copy with one byte flipped is
refused with one line naming it, and loads again with verification turned off."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.backends import BackendError, load_backend
from edge_runtime.labels import LABELS
from edge_runtime.model_files import onnx_props
from edge_runtime.model_files.bundled import MODELS_DIR, installed_backends
from edge_runtime.model_files.formats import backend_for_path, install_hint
from edge_runtime.model_files.integrity import CHECKSUM_KEY, ChecksumError, stamp_model_file, verify_model_file
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, read_sidecar, sidecar_path
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from tests.conftest import REPOSITORY_MODELS

BUNDLED = ("emotion_int8.onnx", "emotion_int8.tflite", "emotion.keras")


def installed(name: str) -> bool:
    return backend_for_path(name).name in installed_backends()


def runnable(name: str):
    """A bundled model as a test parameter, skipped where its runtime is not installed."""
    backend = backend_for_path(name)
    missing = pytest.mark.skipif(not installed(name), reason=f"needs the {backend.name} runtime: {backend.install_hint}")
    return pytest.param(name, marks=missing)


RUNNABLE = (runnable("emotion_int8.onnx"), runnable("emotion_int8.tflite"))  # without TensorFlow
# The bundled model of the first installed runtime: for checks that every runtime passes alike.
ANY_RUNNABLE = next((name for name in ("emotion_int8.onnx", "emotion_int8.tflite") if installed(name)), None)
needs_a_runtime = pytest.mark.skipif(ANY_RUNNABLE is None, reason="needs onnxruntime or LiteRT")


def bundled(name: str) -> Path:
    """A bundled model by file name (the Keras master lives in the repository's models/)."""
    return (REPOSITORY_MODELS if name.endswith(".keras") else MODELS_DIR) / name


def copy_model(name: str, folder: Path) -> Path:
    """A copy of a bundled model (and its sidecar, where it has one) in `folder`."""
    target = folder / name
    shutil.copyfile(bundled(name), target)
    if sidecar_path(bundled(name)).exists():
        shutil.copyfile(sidecar_path(bundled(name)), sidecar_path(target))
    return target


def weight_offset(path: Path) -> int:
    """A byte inside the weights: the middle of the ONNX graph record, or of a TFLite/Keras file."""
    data = path.read_bytes()
    if path.suffix == ".onnx":
        graph = next(record for record in onnx_props.records(data) if record.field == 7)
        return (graph.value_start + graph.end) // 2
    return len(data) // 2


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[weight_offset(path)] ^= 0x01
    path.write_bytes(bytes(data))


def faces() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_carry_a_checksum_that_matches(name):
    assert verify_model_file(bundled(name)) is True


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_flipped_weight_byte_is_refused_with_one_line(tmp_path, name):
    model = copy_model(name, tmp_path)
    flip_byte(model)
    with pytest.raises(BackendError) as caught:
        load_backend(model)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{model}: checksum mismatch")
    assert "--no-verify-model" in message


@pytest.mark.parametrize("name", RUNNABLE)
def test_verification_off_runs_the_edited_model(tmp_path, name):
    model = copy_model(name, tmp_path)
    with load_backend(model) as backend:
        before = backend.predict(faces())
    flip_byte(model)
    with load_backend(model, verify_model=False) as backend:
        after = backend.predict(faces())
    assert after.shape == before.shape == (4, 7)


def test_a_flipped_keras_byte_is_refused_before_tensorflow_loads(tmp_path):
    model = copy_model("emotion.keras", tmp_path)
    flip_byte(model)
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        verify_model_file(model)


def test_changed_metadata_is_refused_too(tmp_path):
    """Swapping two labels in the sidecar would mislabel every face: the checksum covers it."""
    model = copy_model("emotion_int8.tflite", tmp_path)
    data = json.loads(sidecar_path(model).read_text())
    data["labels"][0], data["labels"][1] = data["labels"][1], data["labels"][0]
    sidecar_path(model).write_text(json.dumps(data))
    with pytest.raises(BackendError, match="checksum mismatch"):
        load_backend(model)


@pytest.mark.parametrize("name", RUNNABLE[1:])  # metadata in a sidecar
def test_a_model_without_a_checksum_loads_unchecked(tmp_path, name):
    model = copy_model(name, tmp_path)
    data = json.loads(sidecar_path(model).read_text())
    del data[CHECKSUM_KEY]
    sidecar_path(model).write_text(json.dumps(data))
    assert verify_model_file(model) is False
    with load_backend(model) as backend:
        assert backend.metadata.checksum == ""


@pytest.mark.parametrize("name", RUNNABLE)
def test_stamping_an_edited_model_makes_it_load_again(tmp_path, name):
    model = copy_model(name, tmp_path)
    flip_byte(model)
    stamp_model_file(model)
    assert verify_model_file(model) is True
    with load_backend(model) as backend:
        assert backend.predict(faces()).shape == (4, 7)


def test_onnx_checksum_lives_in_metadata_props_and_leaves_the_graph_alone(tmp_path):
    onnx = pytest.importorskip("onnx", reason=f"needs the onnx package: {install_hint('train')}")
    model = copy_model("emotion_int8.onnx", tmp_path)
    before = onnx.load(str(model))
    stored = json.loads(onnx_props.read_props(model.read_bytes())[ONNX_METADATA_KEY])
    model.write_bytes(onnx_props.with_prop(model.read_bytes(), ONNX_METADATA_KEY, json.dumps({**stored, CHECKSUM_KEY: ""})))
    stamp_model_file(model)
    after = onnx.load(str(model))
    assert after.graph.SerializeToString() == before.graph.SerializeToString()
    assert [prop.key for prop in after.metadata_props] == [ONNX_METADATA_KEY]
    assert json.loads(after.metadata_props[0].value)[CHECKSUM_KEY] == stored[CHECKSUM_KEY]


def test_a_truncated_onnx_file_is_named_not_a_traceback(tmp_path):
    model = copy_model("emotion_int8.onnx", tmp_path)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    with pytest.raises(BackendError) as caught:
        load_backend(model)
    assert str(caught.value).startswith(f"{model}: ")
    assert "\n" not in str(caught.value)


@needs_a_runtime
def test_emotion_detector_takes_verify_model(tmp_path):
    model = copy_model(ANY_RUNNABLE, tmp_path)
    flip_byte(model)
    with pytest.raises(BackendError, match="checksum mismatch"):
        EmotionDetector(model, detector="haar")
    with EmotionDetector(model, detector="haar", verify_model=False) as detector:
        assert list(detector.labels) == list(LABELS)


@needs_a_runtime
def test_edge_run_refuses_the_edited_model_and_runs_it_with_no_verify_model(tmp_path):
    from edge_runtime.cli import app

    model = copy_model(ANY_RUNNABLE, tmp_path)
    flip_byte(model)
    runner = CliRunner()
    args = ["--model", str(model), "--source", "demo", "--no-display", "--max-frames", "3"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "checksum mismatch" in lines[0] and str(model) in lines[0]
    ran = runner.invoke(app, [*args, "--no-verify-model"])
    assert ran.exit_code == 0, ran.output


def test_edge_train_writes_the_checksum_into_the_model_sidecar(tiny_model):
    """tiny_model is written by edge-train's writer, edge_runtime.model_files.keras_file.save_keras_file."""
    assert read_sidecar(tiny_model).checksum.startswith("sha256:")
    assert verify_model_file(tiny_model) is True


def test_stamp_tool_refreshes_the_checksum_of_an_edited_model(tmp_path):
    import subprocess
    import sys

    model = copy_model("emotion_int8.onnx", tmp_path)
    flip_byte(model)
    tool = Path(__file__).resolve().parents[1] / "tools" / "stamp_checksums.py"
    done = subprocess.run([sys.executable, str(tool), str(model)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{model}: sha256:")
    assert verify_model_file(model) is True
    missing = subprocess.run([sys.executable, str(tool), str(tmp_path / "none.tflite")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"stamp_checksums: error: {tmp_path / 'none.tflite'}: No such file or directory"
