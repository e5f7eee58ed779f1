"""Hostile and damaged model files, through every command that loads them.

A `.keras` or `.h5` file whose Lambda layer or module-importing config would write a sentinel
file is refused by edge-convert, edge-run --backend keras, edge-bench and edge-train
(--weights, --teacher, --resume), and the sentinel is never written. ONNX external data that
points outside the model's folder is refused; a damaged .tflite never kills the process; a
damaged .keras file is named as damaged, not "File not found"."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

keras = pytest.importorskip("keras")

from edge_runtime.backends import BackendError, load_backend  # noqa: E402
from edge_runtime.model_files.bundled import bundled_file  # noqa: E402
from edge_runtime.model_files.metadata import sidecar_path  # noqa: E402

runner = CliRunner()
PAYLOAD_MODULE = "hostile_payload"


class Hostile:
    """The hostile files of one test session and the sentinel they would write."""

    def __init__(self, folder: Path, sidecar: Path) -> None:
        self.folder = folder
        self.sentinel = folder / "sentinel.txt"
        self.lambda_keras = folder / "lambda.keras"
        self.lambda_h5 = folder / "lambda.h5"
        self.module_keras = folder / "module.keras"
        self.sidecar = sidecar

    @property
    def keras_files(self) -> list[Path]:
        return [self.lambda_keras, self.lambda_h5, self.module_keras]

    def build(self) -> None:
        from keras import layers

        # Python code that writes the sentinel whenever the layer runs, symbolically or not.
        writes = eval(f"lambda t: (open({str(self.sentinel)!r}, 'a').write('lambda ran\\n'), t)[1]")  # noqa: S307
        inputs = keras.Input((48, 48, 1))
        hidden = layers.Lambda(writes, output_shape=(48, 48, 1))(inputs)
        outputs = layers.Dense(7, activation="softmax")(layers.Flatten()(hidden))
        model = keras.Model(inputs, outputs)
        model.save(self.lambda_keras)
        model.save(self.lambda_h5)
        plain = self.folder / "plain.keras"
        keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.Flatten()(inputs))).save(plain)
        self._with_module_activation(plain, self.module_keras)
        # A module that writes the sentinel when imported, importable from the tests' sys.path.
        (self.folder / f"{PAYLOAD_MODULE}.py").write_text(
            f"open({str(self.sentinel)!r}, 'a').write('module imported\\n')\n\ndef anything(*args, **kwargs):\n    return args\n"
        )
        # The tiny model's metadata without its checksum, so that Keras' own refusal is what is tested.
        metadata = {key: value for key, value in json.loads(self.sidecar.read_text()).items() if key != "checksum"}
        for path in self.keras_files:
            sidecar_path(path).write_text(json.dumps(metadata))
        self.sentinel.unlink(missing_ok=True)

    @staticmethod
    def _with_module_activation(source: Path, target: Path) -> None:
        """`source` with its Dense activation replaced by a function of the payload module."""
        with zipfile.ZipFile(source) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        config = json.loads(members["config.json"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["activation"] = {"module": PAYLOAD_MODULE, "class_name": "function", "config": "anything",
                                                 "registered_name": "anything"}
        members["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(target, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, tiny_model) -> Hostile:
    files = Hostile(tmp_path_factory.mktemp("hostile"), sidecar_path(tiny_model))
    files.build()
    return files


@pytest.fixture
def armed(hostile, monkeypatch) -> Hostile:
    """The hostile files, with the payload module importable and no sentinel yet."""
    monkeypatch.syspath_prepend(str(hostile.folder))
    sys.modules.pop(PAYLOAD_MODULE, None)
    hostile.sentinel.unlink(missing_ok=True)
    yield hostile
    sys.modules.pop(PAYLOAD_MODULE, None)
    hostile.sentinel.unlink(missing_ok=True)


def last_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert lines and "Traceback" not in result.output, result.output
    return lines[-1]


# --- the payloads work: loaded without Keras' safe mode, or imported, they write the sentinel --


def test_the_lambda_file_runs_its_code_when_loaded_unsafely(armed):
    model = keras.models.load_model(armed.lambda_keras, compile=False, safe_mode=False)
    model(np.zeros((1, 48, 48, 1), np.float32))
    assert armed.sentinel.exists()


def test_the_payload_module_writes_the_sentinel_when_imported(armed):
    __import__(PAYLOAD_MODULE)
    assert armed.sentinel.exists()


# --- every command refuses them and never writes the sentinel --------------------------------


@pytest.mark.parametrize("name", ["lambda_keras", "lambda_h5", "module_keras"])
def test_edge_run_keras_backend_refuses(armed, name):
    from edge_runtime.cli import app

    path = getattr(armed, name)
    result = runner.invoke(app, ["--model", str(path), "--backend", "keras", "--source", "demo", "--no-display",
                                 "--max-frames", "2"])
    assert result.exit_code == 1
    assert str(path) in last_line(result)
    assert not armed.sentinel.exists()


@pytest.mark.parametrize("name", ["lambda_keras", "lambda_h5", "module_keras"])
def test_edge_convert_refuses(armed, tmp_path, name):
    from convert.cli import app

    path = getattr(armed, name)
    result = runner.invoke(app, [str(path), "--format", "onnx", "--no-verify", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert last_line(result).startswith(f"edge-convert: error: {path}")
    if path.suffix == ".keras":
        # Keras' reason in whole sentences, never one cut in half ("... and thus it is )").
        assert last_line(result).endswith(".)"), last_line(result)
    assert not armed.sentinel.exists()


@pytest.mark.parametrize("name", ["lambda_keras", "lambda_h5", "module_keras"])
def test_edge_bench_refuses(armed, tmp_path, fer_folder, name):
    from benchmarks.cli import app

    path = getattr(armed, name)
    report = tmp_path / "models.json"
    runner.invoke(app, ["models", str(path), "--in-process", "--no-floor", "--threads", "1", "--min-runs", "1",
                        "--min-time", "0", "--warmup", "0", "--json", str(report)])
    assert [row["status"] for row in json.loads(report.read_text())["rows"]] == ["failed"]
    result = runner.invoke(app, ["accuracy", "--data", str(fer_folder), "--model", str(path), "--backend", "keras"])
    assert result.exit_code == 1
    assert str(path) in last_line(result)
    assert not armed.sentinel.exists()


@pytest.mark.parametrize("name", ["lambda_keras", "lambda_h5", "module_keras"])
def test_edge_train_weights_and_teacher_refuse(armed, tmp_path, fer_folder, name):
    from trainer.cli import app

    path = getattr(armed, name)
    common = ["--data", str(fer_folder), "--epochs", "1", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "weights"), "--weights", str(path)])
    assert result.exit_code == 1
    assert last_line(result).startswith(f"edge-train: error: {path}")
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "teacher"), "--teacher", str(path)])
    assert result.exit_code == 1
    assert last_line(result).startswith(f"edge-train: error: {path}")
    assert not armed.sentinel.exists()


def resumable_run(folder: Path, fer_folder: Path, checkpoint: Path) -> Path:
    """A run folder that stopped after one epoch, whose last checkpoint is `checkpoint`."""
    from trainer.config import make_config

    config = make_config(str(fer_folder), str(folder), "edge", epochs=2, batch_size=32, cache_dir=str(folder.parent / "cache"))
    (folder / "checkpoints").mkdir(parents=True)
    config.save(folder / "config.json")
    state = {"epochs_done": 1, "best_epoch": 1, "best_val_accuracy": 0.2, "history": [], "train_seconds": 1.0}
    (folder / "state.json").write_text(json.dumps(state))
    shutil.copyfile(checkpoint, folder / "checkpoints" / "last.keras")
    return folder


@pytest.mark.parametrize("name", ["lambda_keras", "module_keras"])
def test_edge_train_resume_refuses_a_hostile_checkpoint(armed, tmp_path, fer_folder, name):
    from trainer.cli import app

    run = resumable_run(tmp_path / "run", fer_folder, getattr(armed, name))
    result = runner.invoke(app, ["--resume", str(run)])
    assert result.exit_code == 1
    assert last_line(result).startswith(f"edge-train: error: {run / 'checkpoints' / 'last.keras'}: cannot resume")
    assert not armed.sentinel.exists()


# --- damaged Keras files: named as damaged, one line ------------------------------------------


def damaged_copies(source: Path, folder: Path) -> dict[str, Path]:
    """The first third of `source`, and a copy with one byte flipped in its middle."""
    data = source.read_bytes()
    truncated, flipped = folder / "truncated.keras", folder / "flipped.keras"
    truncated.write_bytes(data[: len(data) // 3])
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    flipped.write_bytes(bytes(changed))
    for path in (truncated, flipped):
        shutil.copyfile(sidecar_path(source), sidecar_path(path))
    return {"truncated": truncated, "flipped": flipped}


EXPECTED_DAMAGE = {
    "truncated": "not a complete .keras zip archive (damaged, truncated, or another kind of file)",
    "flipped": "damaged .keras archive: model.weights.h5 fails its CRC check",
}


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_keras_file_is_named_as_damaged_everywhere(tmp_path, tiny_model, fer_folder, damage):
    from convert.cli import app as convert_app
    from edge_runtime.cli import app as run_app
    from trainer.cli import app as train_app

    path = damaged_copies(tiny_model, tmp_path)[damage]
    expected = f"{path}: {EXPECTED_DAMAGE[damage]}"
    with pytest.raises(BackendError) as caught:
        load_backend(path, verify_model=False)
    assert str(caught.value).startswith(expected)
    result = runner.invoke(run_app, ["--model", str(path), "--source", "demo", "--no-display", "--no-verify-model"])
    assert result.exit_code == 1 and expected in last_line(result)
    result = runner.invoke(convert_app, [str(path), "--format", "onnx", "--no-verify", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and last_line(result).startswith(f"edge-convert: error: {expected}")
    result = runner.invoke(train_app, ["--data", str(fer_folder), "--out", str(tmp_path / "t"), "--teacher", str(path),
                                       "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 1
    assert last_line(result).startswith(f"edge-train: error: {path}: cannot load the teacher model ({EXPECTED_DAMAGE[damage]}")


def test_resume_from_a_damaged_checkpoint_is_one_line(tmp_path, tiny_model, fer_folder):
    from trainer.cli import app

    damaged = damaged_copies(tiny_model, tmp_path)["truncated"]
    run = resumable_run(tmp_path / "run", fer_folder, damaged)
    result = runner.invoke(app, ["--resume", str(run)])
    assert result.exit_code == 1
    checkpoint = run / "checkpoints" / "last.keras"
    assert last_line(result).startswith(f"edge-train: error: {checkpoint}: not a complete .keras zip archive")


# --- ONNX external data, damaged TFLite ----------------------------------------------------


def onnx_with_external_weights(folder: Path, location: str) -> Path:
    """A 48x48 -> 7 ONNX classifier whose weights live in the external file `location`."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((48 * 48, 7), np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": str(48 * 48 * 7 * 4)}.items():
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    nodes = [helper.make_node("Flatten", ["face"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"])]
    graph = helper.make_graph(nodes, "external", [helper.make_tensor_value_info("face", TensorProto.FLOAT, [None, 48, 48, 1])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 7])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = json.loads(sidecar_path(bundled_file("tflite")).read_text())
    metadata.pop("checksum")
    helper.set_model_props(model, {"edge_emotion": json.dumps(metadata)})
    path = folder / "model" / "external.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_onnx_external_data_inside_the_folder_loads(tmp_path):
    path = onnx_with_external_weights(tmp_path, "weights.bin")
    np.ones((48 * 48, 7), np.float32).tofile(path.parent / "weights.bin")
    with load_backend(path) as backend:
        assert backend.predict(np.zeros((1, 48, 48, 1), np.float32)).shape == (1, 7)


@pytest.mark.parametrize("location", ["../outside.bin", "ABSOLUTE"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path, location):
    outside = tmp_path / "outside.bin"
    np.ones((48 * 48, 7), np.float32).tofile(outside)
    path = onnx_with_external_weights(tmp_path, str(outside) if location == "ABSOLUTE" else location)
    with pytest.raises(BackendError) as caught:
        load_backend(path)
    assert str(caught.value).startswith(f"{path}: not a loadable ONNX model (")
    assert "\n" not in str(caught.value)


LOAD_AND_RUN = """
import sys
import numpy as np
from edge_runtime.backends import BackendError, load_backend
for path in sys.argv[1:]:
    try:
        with load_backend(path, verify_model=False) as backend:
            backend.predict(np.zeros((2, 48, 48, 1), np.float32))
        print("ran", path)
    except BackendError as error:
        print("refused", error)
"""


def test_damaged_tflite_files_never_kill_the_process(tmp_path):
    """Truncations and byte flips in the flatbuffer's tables (its first and last 20 KB) and in
    the weights: each is refused with one line or runs, and the process always survives."""
    data = bundled_file("tflite").read_bytes()
    rng = np.random.default_rng(0)
    offsets = [*rng.integers(0, 20_000, 12), *rng.integers(len(data) - 20_000, len(data), 12), *rng.integers(0, len(data), 6)]
    variants = {"empty": b"", "header": data[:64], "third": data[: len(data) // 3]}
    for offset in offsets:
        changed = bytearray(data)
        changed[int(offset)] ^= 0xFF
        variants[f"flip{offset}"] = bytes(changed)
    paths = []
    for name, content in variants.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(content)
        shutil.copyfile(sidecar_path(bundled_file("tflite")), sidecar_path(path))
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", LOAD_AND_RUN, *paths], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(paths)
    refused = [line for line in lines if line.startswith("refused")]
    assert all(": not a loadable TFLite model (" in line for line in refused)
    assert len(refused) >= 3  # at least the empty, header-only and truncated files
