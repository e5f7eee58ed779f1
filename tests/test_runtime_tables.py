"""The backend and detector tables are the only source of their facts: CLI choices, install
hints, runtime packages and metadata locations are read from them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edge_runtime.choices import choice_enum
from edge_runtime.model_files import bundled
from edge_runtime.model_files.formats import BACKEND_NAMES, BACKENDS, get_backend

runner = CliRunner()


def test_choice_enum_keeps_the_order_and_refuses_empty_or_repeated_values():
    Choice = choice_enum("Choice", ("tflite-int8", "onnx"))
    assert [c.value for c in Choice] == ["tflite-int8", "onnx"]
    assert Choice.tflite_int8 == "tflite-int8" and Choice("onnx") is Choice.onnx
    for values in ((), ("onnx", "onnx")):
        with pytest.raises(ValueError, match="choice_enum Choice: expected distinct values"):
            choice_enum("Choice", values)


def test_bundled_files_and_runtime_order_come_from_the_table():
    assert bundled.BUNDLED_MODELS == {row.name: row.bundled_file for row in BACKENDS}
    assert bundled.DEFAULT_BACKEND_ORDER == BACKEND_NAMES
    assert {row.metadata for row in BACKENDS} <= {"inside", "sidecar"}
    assert get_backend("onnx").metadata == "inside" and get_backend("tflite").metadata == "sidecar"


def test_tensorflow_alone_does_not_count_as_a_tflite_runtime(monkeypatch):
    # The TFLite backend runs on LiteRT or tflite_runtime only; with only TensorFlow installed,
    # `auto` must take the Keras backend rather than a TFLite backend that cannot load.
    monkeypatch.setattr(bundled, "module_available", lambda module: module == "tensorflow")
    assert bundled.installed_backends() == ["keras"]
    assert "tensorflow" not in get_backend("tflite").runtime_packages


def test_the_onnx_backend_leaves_no_telemetry_in_the_home_folder(tmp_path):
    import os
    import subprocess
    import sys


    pytest.importorskip("onnxruntime")
    model_file = bundled.MODELS_DIR / get_backend("onnx").bundled_file
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")} | {"HOME": str(tmp_path)}
    code = f"from edge_runtime.backends import load_backend; load_backend({str(model_file)!r}, 'onnx').close()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".cache").exists()
