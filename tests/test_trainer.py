"""edge-train: the seed network, a short real run, its artifacts, resume, and CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

keras = pytest.importorskip("keras")

from tests.training_helpers import interrupted_after_each_epoch  # noqa: E402
from trainer import train as train_module  # noqa: E402
from trainer.cli import app  # noqa: E402
from trainer.config import make_config  # noqa: E402
from trainer.models import ARCHITECTURES, build_seed  # noqa: E402
from trainer.train import TrainingError, train  # noqa: E402

runner = CliRunner()


def test_seed_network_is_the_seeds():
    model = build_seed()
    assert model.count_params() == 2_345_607
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64, 128, 128]
    assert model.layers[-1].units == 7 and model.layers[-3].units == 1024
    assert ARCHITECTURES["seed"].input_spec.scale == pytest.approx(1 / 255)


def test_seed_recipe_defaults(tmp_path):
    config = make_config("data", str(tmp_path), "seed")
    assert (config.epochs, config.batch_size, config.learning_rate, config.optimizer) == (60, 64, 1e-4, "adam")
    assert config.lr_decay == 1e-6 and not config.augment


def test_edge_network_takes_raw_pixels():
    model = ARCHITECTURES["edge"].build()
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert ARCHITECTURES["edge"].input_spec.scale == 1.0
    assert model.layers[1].name == "rescale"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, fer_folder):
    """Two epochs of the default network on synthetic faces."""
    out = tmp_path_factory.mktemp("runs") / "edge"
    config = make_config(str(fer_folder), str(out), "edge", epochs=2, batch_size=32, cache_dir=str(out.parent / "cache"))
    metrics = train(config)
    return out, metrics


def test_run_writes_every_artifact(short_run):
    out, metrics = short_run
    for name in (
        "model.keras",
        "model.keras.json",
        "metrics.json",
        "history.csv",
        "curves.png",
        "confusion_matrix.png",
        "config.json",
        "state.json",
        "checkpoints/last.keras",
    ):
        assert (out / name).is_file(), name
    written = json.loads((out / "metrics.json").read_text())
    for key in ("val_accuracy", "macro_f1", "best_epoch", "epochs_run", "training_seconds", "counts", "config", "version"):
        assert key in written
    assert set(written["val"]["per_class"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert np.asarray(written["val"]["confusion_matrix"]).sum() == 42
    assert written["counts"] == {"train": 140, "val": 42, "test": 0}
    assert written["epochs_run"] == 2
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3
    sidecar = json.loads((out / "model.keras.json").read_text())
    assert sidecar["labels"][0] == "angry" and sidecar["input"]["scale"] == 1.0
    assert metrics["val_accuracy"] == written["val_accuracy"]


def test_best_model_reproduces_reported_accuracy(short_run):
    out, metrics = short_run
    from edge_runtime.backends import load_backend
    from fer_data.fer2013 import load_fer2013

    data = load_fer2013(json.loads((out / "config.json").read_text())["data"], cache_dir=out.parent / "cache")
    with load_backend(out / "model.keras") as backend:
        probabilities = backend.predict_faces(list(data.split("val").images))
    accuracy = float((probabilities.argmax(1) == data.split("val").labels).mean())
    assert accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-6)


def test_existing_run_needs_resume(short_run):
    out, _ = short_run
    config = make_config("unused", str(out), "edge")
    with pytest.raises(TrainingError, match="already holds a run; use --resume"):
        train(config)


def test_resume_continues_an_interrupted_run(tmp_path, fer_folder, monkeypatch):
    out = tmp_path / "run"
    config = make_config(str(fer_folder), str(out), "edge", epochs=2, batch_size=64, cache_dir=str(tmp_path / "cache"))
    original = train_module._EpochCheckpoint

    monkeypatch.setattr(train_module, "_EpochCheckpoint", interrupted_after_each_epoch(original))
    with pytest.raises(KeyboardInterrupt):
        train(config)
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 1
    monkeypatch.setattr(train_module, "_EpochCheckpoint", original)

    metrics = train(config, resume=True)
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]
    assert metrics["epochs_run"] == 2
    last = keras.models.load_model(out / "checkpoints" / "last.keras")
    assert int(last.optimizer.iterations.numpy()) == 2 * 3  # 140 faces / 64 = 3 steps per epoch, both epochs


def test_seed_weights_are_kept(tmp_path, fer_folder):
    h5py = pytest.importorskip("h5py")
    from keras.src.legacy.saving import legacy_h5_format

    seed_model = build_seed()
    weights = tmp_path / "model.h5"
    with h5py.File(weights, "w") as handle:  # the format of the seed's model.save_weights('model.h5')
        legacy_h5_format.save_weights_to_hdf5_group(handle, seed_model)
    out = tmp_path / "seed_run"
    result = runner.invoke(
        app,
        [
            "--data",
            str(fer_folder),
            "--out",
            str(out),
            "--arch",
            "seed",
            "--epochs",
            "0",
            "--weights",
            str(weights),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    packaged = keras.models.load_model(out / "model.keras")
    for a, b in zip(seed_model.get_weights(), packaged.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert json.loads((out / "model.keras.json").read_text())["input"]["scale"] == pytest.approx(1 / 255)


def test_cli_bad_data_is_one_line(tmp_path):
    bad = tmp_path / "fer2013.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["--data", str(bad), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip() == f"edge-train: error: {bad}: header is 'a,b'; expected 'emotion,pixels,Usage' (fer2013.csv)"


def test_bad_data_leaves_no_run_folder(tmp_path):
    # The run folder is created only once training is about to start.
    bad = tmp_path / "fer2013.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["--data", str(bad), "--out", str(tmp_path / "deep" / "run")])
    assert result.exit_code == 1 and "header is 'a,b'" in result.output
    assert not (tmp_path / "deep").exists()


def test_settings_are_checked_before_the_data_set_is_read(tmp_path, monkeypatch):
    weights = tmp_path / "broken.keras"
    weights.write_bytes(b"not a zip archive")
    read = []
    monkeypatch.setattr(train_module, "load_training_data", lambda config: read.append(config) or pytest.fail("data read"))
    result = runner.invoke(app, ["--data", str(tmp_path / "fer"), "--out", str(tmp_path / "run"), "--weights", str(weights)])
    assert result.exit_code == 1 and str(weights) in result.output, result.output
    assert not read and not (tmp_path / "run").exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    result = runner.invoke(app, ["--data", str(tmp_path / "fer"), "--out", str(a_file)])
    assert result.exit_code == 1 and f"--out {a_file}: is not a folder" in result.output, result.output
    assert not read


def test_cli_empty_validation_split(tmp_path):
    from tests.synthetic import write_folder

    root = write_folder(tmp_path / "fer", train_per_class=2, test_per_class=0)
    result = runner.invoke(app, ["--data", str(root), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "the val split is empty; expected test/<class>/ images" in result.output


def test_cli_usage_errors(tmp_path):
    result = runner.invoke(app, ["--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--data and --out are required" in result.output
    result = runner.invoke(app, ["--data", "x", "--out", "y", "--arch", "resnet"])
    assert result.exit_code == 2 and "'resnet' is not one of" in result.output
    result = runner.invoke(app, ["--resume", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no config.json; expected a run folder written by edge-train" in result.output
    result = runner.invoke(app, ["--data", "x", "--out", "y", "--epochs", "0"])
    assert result.exit_code == 2 and "--epochs 0 needs --weights" in result.output
