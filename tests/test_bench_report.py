"""Report outputs: the JSON schema, the Markdown table, the console table and its notes,
the compute floor, and the environment block (found without importing TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.compute import count_macs_onnx, floor_ms, measure_peak_gflops, measure_peak_gflops_onnxruntime, reference_model
from benchmarks.environment import cpu_info, environment, package_versions
from benchmarks.report import COLUMNS, markdown_table, render_markdown, render_text, text_table, write_json, write_markdown
from benchmarks.rows import failed_row, ok_row, skipped_row
from edge_runtime.model_files.formats import install_hint
from tests.test_bench_fakes import FakeClock

MISSING_ONNX = f"runtime not installed (onnxruntime): {install_hint('onnx')}"
ROWS = [
    ok_row("tflite-int8/tflite/t2", model="m_int8.tflite", format="tflite-int8", backend="tflite", threads=2, size_mb=1.21,
           load_ms=11.0, first_ms=0.8, p50_ms=0.4321, p90_ms=0.5, p99_ms=0.9, min_ms=0.4, std_ms=0.05, throughput_b1=2300.0,
           throughput_batch=4100.0, peak_rss_mb=98.0, accuracy=0.66),
    skipped_row("onnx-fp32/onnx/t2", MISSING_ONNX, threads=2),
    failed_row("keras/keras/t2", "BackendError: model.keras: not a loadable Keras model", threads=2),
]
FLOOR = {
    "model": "emotion_fp32.onnx", "macs": 117_450_496, "mac_method": "counted from the ONNX graph", "peak_method": "matmul",
    "per_threads": [{"threads": 2, "peak_gflops": 100.0, "floor_ms": 2.349, "best_p50_ms": 0.4321, "best_row": "tflite-int8/tflite/t2",
                     "best_over_floor": 0.184, "best_fp32_p50_ms": None}],
}


def models_report() -> dict:
    return {"command": "models", "environment": environment(), "settings": {"threads": [2]}, "rows": ROWS, "compute_floor": FLOOR}


def test_json_schema(tmp_path):
    path = tmp_path / "out" / "models.json"
    write_json(path, models_report())
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["command"] == "models"
    env = data["environment"]
    assert {"cpu", "cores", "os", "python", "packages"} <= set(env)
    assert {"model", "flags"} <= set(env["cpu"])
    assert "numpy" in env["packages"]
    for row in data["rows"]:
        assert {"name", "status"} <= set(row)
        assert row["status"] in ("ok", "skipped", "failed")
    assert data["rows"][1]["reason"].startswith("runtime not installed")
    assert data["rows"][2]["error"].startswith("BackendError")
    assert [p.name for p in path.parent.iterdir()] == ["models.json"]  # no temporary file left


def test_markdown_table_for_the_readme(tmp_path):
    text = markdown_table(ROWS, COLUMNS["models"])
    lines = text.splitlines()
    assert lines[0].startswith("| configuration | status | size MB |")
    assert lines[1].startswith("|---|---|---:|")
    assert "| tflite-int8/tflite/t2 | ok | 1.21 | 11 | 0.80 | 0.432 |" in lines[2]
    assert lines[3].startswith("| onnx-fp32/onnx/t2 | skipped | - |")
    assert f"- `onnx-fp32/onnx/t2: skipped: {MISSING_ONNX}`" in lines
    path = tmp_path / "models.md"
    write_markdown(path, models_report(), "edge-bench models --threads 2")
    written = path.read_text()
    assert written.startswith("`edge-bench models --threads 2`")
    assert "Compute floor: 117.5 M multiply-adds per face" in written


def test_console_table_lists_why_rows_were_not_measured():
    text = render_text(models_report())
    assert "tflite-int8/tflite/t2" in text and "0.432" in text
    assert "keras/keras/t2: failed: BackendError: model.keras: not a loadable Keras model" in text
    assert "2 thread(s): peak 100.0 GFLOP/s -> fp32 floor 2.349 ms per face; best overall p50 0.432 ms" in text


def test_text_table_aligns_columns():
    lines = text_table(ROWS[:2], COLUMNS["models"][:4]).splitlines()
    header, rule, measured, skipped = lines[:4]
    assert header.split() == ["configuration", "status", "size", "MB", "load", "ms"]
    assert set(rule) == {"-", " "}
    # Names start where their header starts; numbers end where theirs ends.
    assert measured.index("ok") == skipped.index("skipped") == header.index("status")
    assert measured.endswith("11") and len(measured) == len(skipped) == len(header)
    assert measured.index("1.21") + len("1.21") == header.index("size MB") + len("size MB")
    assert lines[4] == f"onnx-fp32/onnx/t2: skipped: {MISSING_ONNX}"


def test_accuracy_markdown_holds_the_per_class_table():
    report = {"command": "accuracy", "rows": [ok_row("m (onnx)", n=10, accuracy=0.5, macro_f1=0.4)], "labels": ["a", "b"],
              "per_class": {"a": {"precision": 1.0, "recall": 0.5, "f1": 0.66, "support": 4},
                            "b": {"precision": 0.2, "recall": 1.0, "f1": 0.33, "support": 6}},
              "confusion_matrix": [[2, 2], [0, 6]]}
    text = render_markdown(report)
    assert "| m (onnx) | ok | 10 | 0.5000 | 0.4000 |" in text
    assert "confusion (rows: true, columns: predicted)" in text


def test_cpu_info_reads_model_and_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx2 fma avx512_vnni\n")
    assert cpu_info(str(cpuinfo)) == {"model": "Test CPU 9000", "flags": ["sse4_2", "avx2", "fma", "avx512_vnni"]}


def test_versions_are_found_without_importing_tensorflow():
    code = ("import sys; from benchmarks.environment import package_versions; import benchmarks.cli; "
            "package_versions(); print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    assert "numpy" in package_versions(("numpy", "no-such-distribution"))
    assert "no-such-distribution" not in package_versions(("no-such-distribution",))


def test_floor_and_peak_arithmetic():
    assert floor_ms(1_000_000, 2.0) == pytest.approx(1.0)  # 2 MFLOP at 2 GFLOP/s
    assert floor_ms(0, 2.0) is None
    clock = FakeClock(tick=0.5)  # every matmul "takes" 0.5 s
    assert measure_peak_gflops(size=64, repeats=2, clock=clock) == pytest.approx(2 * 64**3 / 0.5 / 1e9)


def test_peak_through_onnxruntime():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    clock = FakeClock(tick=0.25)
    assert measure_peak_gflops_onnxruntime(1, size=32, repeats=2, clock=clock) == pytest.approx(2 * 32**3 / 0.25 / 1e9)


def test_reference_model_prefers_float_onnx(tmp_path):
    names = ["m.keras", "m_int8.tflite", "m_fp32.tflite", "m_int8.onnx", "m_fp32.onnx"]
    assert reference_model([tmp_path / n for n in names]).name == "m_fp32.onnx"
    assert reference_model([tmp_path / "m.keras", tmp_path / "m_int8.tflite"]).name == "m_int8.tflite"
    assert reference_model([tmp_path / "notes.txt"]) is None


def test_macs_counted_from_an_onnx_graph(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # Conv 3x3, 1 -> 4 channels, on 8x8 ('same'), then Gemm 256 -> 7.
    weight = numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w")
    dense = numpy_helper.from_array(np.zeros((256, 7), np.float32), "d")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Flatten", ["c"], ["f"]),
         helper.make_node("Gemm", ["f", "d"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 7])],
        [weight, dense],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert count_macs_onnx(path) == 8 * 8 * 4 * 9 + 256 * 7
