"""edge-bench on an install without TensorFlow: no benchmark module imports it, and the Keras and
seed-style rows are skipped with the reason while the others run."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import benchmarks
from edge_runtime.model_files.bundled import MODELS_DIR, bundled_file
from edge_runtime.sources.open_source import demo_clip_path

# Makes TensorFlow and Keras unimportable (and invisible to find_spec), as on a runtime-only install.
BLOCK_TENSORFLOW = """
import sys
class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
"""


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def import_modules(names: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    """Imports every module in a fresh interpreter; prints whether TensorFlow got imported."""
    loop = f"import importlib, sys\nfor name in {names!r}:\n    importlib.import_module(name)\n"
    return run_python(prelude + loop + "print('tensorflow' in sys.modules)")


def test_no_benchmark_module_imports_tensorflow():
    names = [f"benchmarks.{m.name}" for m in pkgutil.iter_modules(benchmarks.__path__)]
    done = import_modules(names)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_every_runtime_module_imports_without_tensorflow():
    import edge_runtime

    names = [m.name for m in pkgutil.walk_packages(edge_runtime.__path__, "edge_runtime.")]
    assert "edge_runtime.backends.keras_backend" in names and "edge_runtime.backends.tflite_backend" in names
    done = import_modules(names, prelude=BLOCK_TENSORFLOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.skipif(not (MODELS_DIR / "emotion_int8.onnx").is_file() or not demo_clip_path().is_file(),
                    reason="needs the bundled ONNX model and the demo clip")
def test_pipeline_without_tensorflow_skips_keras_and_seed_style(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "p.json"
    models = [bundled_file("keras"), MODELS_DIR / "emotion_int8.onnx"]
    code = BLOCK_TENSORFLOW + (
        "from benchmarks.cli import app\n"
        f"app(['pipeline', *{[str(m) for m in models]!r}, '--max-frames', '3', '--warmup-frames', '1', '--threads', '1',"
        f" '--detect-scale', '0.5', '--detect-every', '1', '--detector', 'haar', '--in-process', '--json', {str(out)!r}],"
        " standalone_mode=False)\n"
        "import sys\nprint('tensorflow' in sys.modules)\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["seed-style"]["status"] == "skipped"
    assert rows["seed-style"]["reason"].startswith("TensorFlow not installed")
    assert rows["keras haar scale 0.5 every 1"]["status"] == "skipped"
    assert "pip install" in rows["keras haar scale 0.5 every 1"]["reason"]
    assert rows["onnx-int8 haar scale 0.5 every 1"]["status"] == "ok"
