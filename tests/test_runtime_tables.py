"""The backend and detector tables are the only source of their facts: CLI choices, install
hints, runtime packages and metadata locations are read from them."""

from __future__ import annotations

from typer.testing import CliRunner

from edge_runtime import default_model
from edge_runtime.cli import BackendChoice, DetectorChoice
from edge_runtime.detectors import DETECTOR_NAMES
from edge_runtime.formats import BACKEND_NAMES, BACKENDS, get_backend

runner = CliRunner()


def test_cli_choices_are_the_table_rows():
    from benchmarks import cli as bench_cli

    assert [c.value for c in BackendChoice] == ["auto", *BACKEND_NAMES]
    assert [c.value for c in DetectorChoice] == ["auto", *DETECTOR_NAMES]
    assert [c.value for c in bench_cli.BackendChoice] == ["auto", *BACKEND_NAMES]
    assert [c.value for c in bench_cli.DetectorChoice] == list(DETECTOR_NAMES)


def test_bundled_files_and_runtime_order_come_from_the_table():
    assert default_model.BUNDLED_MODELS == {row.name: row.bundled_file for row in BACKENDS}
    assert default_model.DEFAULT_BACKEND_ORDER == BACKEND_NAMES
    assert {row.metadata for row in BACKENDS} <= {"inside", "sidecar"}
    assert get_backend("onnx").metadata == "inside" and get_backend("tflite").metadata == "sidecar"


def test_tensorflow_alone_does_not_count_as_a_tflite_runtime(monkeypatch):
    # The TFLite backend runs on LiteRT or tflite_runtime only; with only TensorFlow installed,
    # `auto` must take the Keras backend rather than a TFLite backend that cannot load.
    monkeypatch.setattr(default_model, "_installed", lambda module: module == "tensorflow")
    assert default_model.installed_backends() == ["keras"]
    assert "tensorflow" not in get_backend("tflite").runtime_packages
