"""Data-parallel edge-train (`--devices`, `--num-processes`): the settings, then real runs of
the tiny network in processes of their own (JAX's DataParallel, TensorFlow's
MirroredStrategy), compared with one device.

Tolerance: a data-parallel run sees the same global batches as one device, so its per-epoch
training loss must match to 1e-5 (relative) and its weights to 1e-5 (absolute); what remains is
the order in which the devices' gradients are summed.

The runs need JAX (the `distributed` extra, part of `all`): without it they skip, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer.distributed import INSTALL_HINT, DistributionError, settings_from

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def test_settings_come_from_options_then_keras_environment_variables():
    assert settings_from(None, environ={}) is None
    assert settings_from(2, environ={}).devices == 2
    environ = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
    }
    settings = settings_from(None, environ=environ)
    assert (settings.coordinator, settings.num_processes, settings.process_id, settings.writes_files) == ("10.0.0.1:1234", 2, 1, False)
    assert settings_from(None, "127.0.0.1:9", None, 0, environ=environ).writes_files  # an option wins over the environment


def test_bad_settings_are_named():
    with pytest.raises(DistributionError, match="^--num-processes 2 needs --coordinator HOST:PORT"):
        settings_from(None, num_processes=2, process_id=0, environ={})
    with pytest.raises(DistributionError, match="^--process-id 2: expected 0 to 1 for 2 processes"):
        settings_from(None, "h:1", 2, 2, environ={})
    with pytest.raises(DistributionError, match="^KERAS_DISTRIBUTION_PROCESS_ID='one': expected a whole number"):
        settings_from(None, environ={"KERAS_DISTRIBUTION_PROCESS_ID": "one"})


def test_cli_refuses_several_processes_on_tensorflow(tmp_path, fer_folder):
    """The test session runs Keras on TensorFlow, whose multi-worker strategy Keras 3 cannot use."""
    pytest.importorskip("keras")
    from typer.testing import CliRunner

    from trainer.cli import app

    options = ["--data", str(fer_folder), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")]
    options += ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    result = CliRunner().invoke(app, options)
    assert result.exit_code == 1
    assert result.output.startswith(
        "edge-train: error: --num-processes on TensorFlow: MultiWorkerMirroredStrategy does not work with Keras 3"
    )
    result = CliRunner().invoke(app, ["--data", "x", "--out", "y", "--scale-batch"])
    assert result.exit_code == 2 and "--scale-batch needs --devices N" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(report: Path, arguments: list[str], devices: int = 1, overrides: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT),
        **(overrides or {}),
    }
    # Simulated devices only where asked: JAX's CPU collectives with a forced device count can crash (openxla/xla 16430).
    env.pop("XLA_FLAGS", None)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [sys.executable, "-m", "tests.distributed_worker", str(report), *arguments]
    with open(report.with_suffix(".log"), "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _finish(processes: list[subprocess.Popen], timeout: float = 420) -> None:
    try:
        for process in processes:
            process.wait(timeout=timeout)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fer_folder):
    """One device, two simulated devices (stopped after epoch 1, then resumed), and two
    processes on 127.0.0.1, each distilling the tiny network from a tiny teacher for two
    epochs. Started together: most of their time is JAX starting and compiling."""
    pytest.importorskip("jax", reason=f"the data-parallel runs need JAX: {INSTALL_HINT}")
    keras = pytest.importorskip("keras")
    from tests.training_helpers import build_tiny

    root = tmp_path_factory.mktemp("distributed")
    keras.utils.set_random_seed(7)
    build_tiny().save(root / "teacher.keras")  # distillation keeps working: every run learns from it too
    common = ["--data", str(fer_folder), "--epochs", "2", "--batch-size", "32", "--cache-dir", str(root / "cache")]
    common += ["--teacher", str(root / "teacher.keras")]
    port = _free_port()
    first = [
        _start(root / "one.json", [*common, "--out", str(root / "one"), "--devices", "1"]),
        _start(root / "two_devices.json", [*common, "--out", str(root / "two_devices"), "--devices", "2", "--max-minutes", "0"], devices=2),
    ]
    first += [
        _start(
            root / f"process{i}.json",
            [*common, "--out", str(root / "group"), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        )
        for i in (0, 1)
    ]
    _finish(first)
    _finish([_start(root / "two_devices_resumed.json", ["--resume", str(root / "two_devices"), "--devices", "2"], devices=2)])

    def report(name: str) -> dict:
        path = root / f"{name}.json"
        assert path.exists(), (root / f"{name}.log").read_text()[-3000:]
        return json.loads(path.read_text())

    names = ("one", "two_devices", "two_devices_resumed", "process0", "process1")
    return root, {name: report(name) for name in names}


def _losses(report: dict) -> list[float]:
    return [epoch["loss"] for epoch in report["epochs"]]


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    from trainer import distill, view_layers  # noqa: F401  (the checkpoints hold their layers and loss)

    return keras.models.load_model(path).get_weights()


def test_two_simulated_devices_match_one_device_and_resume(runs):
    root, reports = runs
    assert reports["one"]["exit_code"] == 0 and reports["two_devices"]["exit_code"] == 0
    assert reports["two_devices_resumed"]["exit_code"] == 0
    # Both devices held the weights; the first command stopped after epoch 1 (--max-minutes 0) and the resume ran epoch 2.
    assert [epoch["devices"] for epoch in reports["two_devices"]["epochs"]] == [["cpu:0", "cpu:1"]]
    assert [epoch["devices"] for epoch in reports["two_devices_resumed"]["epochs"]] == [["cpu:0", "cpu:1"]]
    assert reports["one"]["epochs"][0]["devices"] == ["cpu:0"]
    together = _losses(reports["two_devices"]) + _losses(reports["two_devices_resumed"])
    np.testing.assert_allclose(together, _losses(reports["one"]), rtol=TOLERANCE)
    for a, b in zip(_weights(root / "one" / "checkpoints" / "last.keras"), _weights(root / "two_devices" / "checkpoints" / "last.keras")):
        np.testing.assert_allclose(a, b, atol=TOLERANCE)
    metrics = json.loads((root / "two_devices" / "metrics.json").read_text())
    assert metrics["distribution"]["devices"] == ["cpu:0", "cpu:1"] and metrics["epochs_run"] == 2


def test_two_processes_train_together_into_one_run_folder(runs):
    root, reports = runs
    assert reports["process0"]["exit_code"] == 0 and reports["process1"]["exit_code"] == 0
    # The same global loss in both processes, and the same as one device's on the same batches.
    assert _losses(reports["process0"]) == _losses(reports["process1"])
    np.testing.assert_allclose(_losses(reports["process0"]), _losses(reports["one"]), rtol=TOLERANCE)
    assert len(reports["process0"]["epochs"][0]["devices"]) == 2  # one CPU device in each process
    metrics = json.loads((root / "group" / "metrics.json").read_text())
    assert metrics["distribution"]["processes"] == 2 and metrics["epochs_run"] == 2
    for name in ("model.keras", "state.json", "history.csv", "checkpoints/last.keras"):
        assert (root / "group" / name).is_file(), name
    assert "process 1 of 2 done; process 0 wrote" in (root / "process1.log").read_text()
    for a, b in zip(_weights(root / "one" / "model.keras"), _weights(root / "group" / "model.keras")):
        np.testing.assert_allclose(a, b, atol=TOLERANCE)


def test_mirrored_strategy_on_tensorflow_uses_both_devices(tmp_path, fer_folder):
    """On TensorFlow, --devices runs MirroredStrategy (two logical devices split from the CPU
    here). It is not the same computation as one device: batch norm's statistics are each
    replica's half batch, and every replica repeats the same augmentation draws. So the loss
    is checked against one device's within 2% only (it came within 1% in each epoch here)."""
    keras = pytest.importorskip("keras")
    from tests.training_helpers import build_tiny

    keras.utils.set_random_seed(7)
    build_tiny().save(tmp_path / "teacher.keras")
    common = ["--data", str(fer_folder), "--epochs", "2", "--batch-size", "32", "--cache-dir", str(tmp_path / "cache")]
    common += ["--teacher", str(tmp_path / "teacher.keras")]
    env = {"KERAS_BACKEND": "tensorflow"}
    one = _start(tmp_path / "one.json", [*common, "--out", str(tmp_path / "one"), "--devices", "1"], overrides=env)
    two = _start(tmp_path / "two.json", [*common, "--out", str(tmp_path / "two"), "--devices", "2"], overrides=env)
    _finish([one, two])
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "two")}
    assert reports["one"]["exit_code"] == 0 and reports["two"]["exit_code"] == 0, (tmp_path / "two.log").read_text()[-2000:]
    assert [device[-5:] for device in reports["two"]["epochs"][0]["devices"]] == ["CPU:0", "CPU:1"]
    np.testing.assert_allclose(_losses(reports["two"]), _losses(reports["one"]), rtol=0.02)
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["distribution"] == {"engine": "tf.distribute.MirroredStrategy", "devices": ["/cpu:0", "/cpu:1"], "processes": 1}
