"""`edge-bench models` with fakes: one configuration's figures, ok/skipped/failed rows, input
rotation, planning, the subprocess boundary, and the variant cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.model_bench import ModelJob, ModelProbe, guess_format, measure_model, plan_models
from benchmarks.model_suite import ModelsConfig, run_models
from benchmarks.model_variants import build_variants
from benchmarks.rows import FAILED, OK, SKIPPED, RuntimeCheck, check_runtime
from benchmarks.stats import LoopSettings
from benchmarks.worker import RESULT_MARKER, parse_child_output, run_job
from fer_data.fer2013 import Split
from tests.test_bench_fakes import FakeBackend, FakeClock

LOOP = LoopSettings(warmup=3, min_runs=20, min_time=0.05)


def make_job(tmp_path: Path, **changes) -> ModelJob:
    model = tmp_path / "emotion_int8.tflite"
    model.write_bytes(b"x" * 1234)
    fields = dict(model=str(model), backend="tflite", threads=2, batch=8, loop=LOOP, inputs="unused.npz", format="tflite-int8")
    fields.update(changes)
    return ModelJob(**fields)


def make_probe(clock: FakeClock, backend: FakeBackend | None = None, evaluation: Split | None = None, load_error=None):
    pool = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    threads_set = []

    def load(path, backend_name, threads):
        if load_error is not None:
            raise load_error
        clock.advance(0.25)
        return backend

    probe = ModelProbe(
        load=load, clock=clock, memory=lambda: 321.0, baseline=lambda: 100.0, set_threads=threads_set.append,
        read_inputs=lambda path: (pool, evaluation),
    )
    return probe, threads_set


def test_ok_row_has_every_figure(tmp_path):
    clock = FakeClock()
    backend = FakeBackend(clock, cost=0.001)
    probe, threads_set = make_probe(clock, backend)
    row = measure_model(make_job(tmp_path), probe)
    assert row["status"] == OK
    assert row["name"] == "tflite-int8/tflite/t2"
    assert threads_set == [2]
    assert row["size_bytes"] == 1234
    assert row["load_ms"] == pytest.approx(250.0)
    assert row["first_ms"] == pytest.approx(1.0)
    assert row["p50_ms"] == pytest.approx(1.0) and row["min_ms"] == pytest.approx(1.0)
    assert row["runs"] >= LOOP.min_runs
    assert row["throughput_b1"] == pytest.approx(1000.0)
    assert row["throughput_batch"] == pytest.approx(1000.0)  # the fake costs the same per face at any batch
    assert row["batch"] == 8
    assert (row["base_rss_mb"], row["peak_rss_mb"]) == (100.0, 321.0)
    assert row["precision"] == "int8"
    assert "accuracy" not in row
    assert backend.closed


def test_inputs_rotate_through_the_pool(tmp_path):
    clock = FakeClock()
    backend = FakeBackend(clock)
    probe, _ = make_probe(clock, backend)
    measure_model(make_job(tmp_path), probe)
    singles = [batch for batch in backend.inputs if len(batch) == 1]
    distinct = {batch.tobytes() for batch in singles[1:17]}  # after the first-inference call
    assert len(distinct) == 16  # 16 consecutive runs, 16 different faces


def test_accuracy_when_evaluation_faces_are_given(tmp_path):
    clock = FakeClock()
    backend = FakeBackend(clock)
    images = np.stack([np.full((48, 48), value, np.uint8) for value in (10, 50, 90, 130)])
    truth = (images.reshape(4, -1).mean(axis=1) // 37).astype(int)
    truth[0] = (truth[0] + 1) % 7  # one wrong answer of four
    probe, _ = make_probe(clock, backend, evaluation=Split(images, truth))
    row = measure_model(make_job(tmp_path), probe)
    assert row["accuracy"] == pytest.approx(0.75)
    assert row["n"] == 4


def test_a_model_that_fails_to_load_is_a_failed_row(tmp_path):
    clock = FakeClock()
    probe, _ = make_probe(clock, load_error=ValueError("model.tflite: not a loadable TFLite model"))
    row = measure_model(make_job(tmp_path), probe)
    assert row["status"] == FAILED
    assert row["error"] == "ValueError: model.tflite: not a loadable TFLite model"
    assert row["backend"] == "tflite" and row["threads"] == 2


def test_a_crash_while_running_is_a_failed_row_not_a_skip(tmp_path):
    clock = FakeClock()
    backend = FakeBackend(clock, fail_on_call=5)
    probe, _ = make_probe(clock, backend)
    row = measure_model(make_job(tmp_path), probe)
    assert row["status"] == FAILED
    assert "interpreter exploded" in row["error"]


def test_plan_skips_missing_runtimes_and_unknown_formats(tmp_path):
    onnx_file, tflite_file, text_file = tmp_path / "m_fp32.onnx", tmp_path / "m_int8.tflite", tmp_path / "notes.txt"
    for path in (onnx_file, tflite_file, text_file):
        path.write_bytes(b"0")

    def runtime(backend):
        return RuntimeCheck(backend == "tflite", "" if backend == "tflite" else "runtime not installed (onnxruntime): pip install x")

    jobs, decided = plan_models([onnx_file, tflite_file, text_file], [1, 2], 32, LOOP, tmp_path / "in.npz", runtime)
    assert [job.name for job in jobs] == ["tflite-int8/tflite/t1", "tflite-int8/tflite/t2"]
    assert [row["status"] for row in decided] == [SKIPPED, SKIPPED, SKIPPED]
    assert decided[0]["reason"].startswith("runtime not installed (onnxruntime)")
    assert decided[0]["threads"] == 1 and decided[1]["threads"] == 2
    assert decided[2]["reason"].startswith("format unsupported:")


def test_check_runtime_names_the_install_command():
    missing = check_runtime("onnx", available=lambda module: False)
    assert not missing.available
    assert missing.reason == 'runtime not installed (onnxruntime): pip install -e ".[onnx]" (in the edge-emotion folder)'
    assert check_runtime("tflite", available=lambda module: module == "tflite_runtime").available
    # TensorFlow alone does not make the TFLite backend available: only the Keras backend uses it.
    assert not check_runtime("tflite", available=lambda module: module == "tensorflow").available


def test_guess_format_from_sidecar_or_file_tag(tmp_path):
    tagged = tmp_path / "emotion_dynamic.tflite"
    tagged.write_bytes(b"0")
    assert guess_format(tagged) == "tflite-dynamic"
    assert guess_format(tmp_path / "emotion_int8.onnx") == "onnx-int8"
    described = tmp_path / "plain.tflite"
    described.write_bytes(b"0")
    (tmp_path / "plain.tflite.json").write_text(json.dumps({"labels": [], "input_shape": [48, 48, 1], "format": "tflite-fp16"}))
    assert guess_format(described) == "tflite-fp16"


def test_job_round_trips_through_json(tmp_path):
    job = make_job(tmp_path)
    assert ModelJob.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_child_output_is_parsed_or_reported_as_failure():
    row = {"name": "x", "status": OK, "p50_ms": 1.0}
    noisy = "INFO: Created TensorFlow Lite XNNPACK delegate\n" + RESULT_MARKER + json.dumps(row) + "\n"
    assert parse_child_output("x", 0, noisy, "") == row
    killed = parse_child_output("x", -11, "", "some log\nSegmentation fault\n", {"threads": 2})
    assert killed["status"] == FAILED
    assert killed["error"] == "the benchmark process was killed by signal 11: Segmentation fault"
    assert killed["threads"] == 2
    exited = parse_child_output("x", 1, "", "")
    assert exited["error"] == "the benchmark process exited with code 1"


def test_worker_process_reports_a_bad_job_as_a_failed_row():
    done = subprocess.run([sys.executable, "-m", "benchmarks.worker"], input='{"kind": "nonsense"}', capture_output=True, text=True,
                          timeout=120)
    row = parse_child_output("job", done.returncode, done.stdout, done.stderr)
    assert row["status"] == FAILED
    assert "unknown job kind 'nonsense'" in row["error"]
    with pytest.raises(ValueError):
        run_job({"kind": "nonsense"})


def test_run_models_combines_decided_and_measured_rows(tmp_path):
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"0")
    measured = []

    def runner(job):
        measured.append(job)
        return {"name": job.name, "status": OK, "threads": job.threads, "p50_ms": 1.0 / job.threads, "precision": "int8"}

    config = ModelsConfig(models=(model, tmp_path / "m.keras"), threads=(1, 2), loop=LOOP, floor=False)
    no_tf = lambda backend: RuntimeCheck(backend != "keras", "TensorFlow not installed")  # noqa: E731
    report = run_models(config, runner, runtime_check=no_tf)
    assert [row["status"] for row in report["rows"]] == [SKIPPED, SKIPPED, OK, OK]
    assert len(measured) == 2
    assert {"command", "environment", "settings", "rows"} <= set(report)
    assert report["settings"]["threads"] == [1, 2]


def test_variants_are_built_once_then_read_from_the_cache(tmp_path):
    keras_file = tmp_path / "emotion.keras"
    keras_file.write_bytes(b"pretend keras")
    calls = []

    def convert(model_path, formats, out_dir, **options):
        calls.append((list(formats), options))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        results = []
        for name in formats:
            path = Path(out_dir) / f"emotion_{name}.bin"
            path.write_bytes(b"0")
            results.append(SimpleNamespace(format=name, path=path))
        return results

    first = build_variants(keras_file, None, cache_root=tmp_path / "cache", convert=convert)
    # Without calibration data the int8 variants are skipped, with the reason.
    assert calls[0][0] == ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "onnx-fp32"]
    assert [row["name"] for row in first.rows] == ["tflite-int8/-", "onnx-int8/-"]
    assert all(row["status"] == SKIPPED and "--data" in row["reason"] for row in first.rows)
    assert first.paths[0] == keras_file and len(first.paths) == 5
    second = build_variants(keras_file, None, cache_root=tmp_path / "cache", convert=convert)
    assert len(calls) == 1
    assert second.paths == first.paths


def test_a_failed_conversion_becomes_failed_rows(tmp_path):
    keras_file = tmp_path / "emotion.keras"
    keras_file.write_bytes(b"pretend keras")

    def convert(*args, **kwargs):
        raise RuntimeError("exporter broke")

    built = build_variants(keras_file, tmp_path, cache_root=tmp_path / "cache", convert=convert)
    assert built.paths == [keras_file]
    assert {row["status"] for row in built.rows} == {FAILED}
    assert all("conversion failed: RuntimeError: exporter broke" in row["error"] for row in built.rows)


def test_the_bundled_models_shipped_files_are_measured_not_rebuilt(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    keras_file = models / "emotion.keras"
    keras_file.write_bytes(b"pretend keras")
    for name in ("emotion_int8.tflite", "emotion_int8.onnx"):
        (models / name).write_bytes(b"0")
    monkeypatch.setattr("benchmarks.model_variants.MODELS_DIR", models)
    monkeypatch.setattr("benchmarks.model_variants.bundled_keras", lambda: keras_file)
    asked = []

    def convert(model_path, formats, out_dir, **options):
        asked.extend(formats)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return [SimpleNamespace(format=name, path=Path(out_dir) / f"{name}.bin") for name in formats]

    built = build_variants(keras_file, tmp_path / "data", cache_root=tmp_path / "cache", convert=convert)
    assert asked == ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "onnx-fp32"]
    assert models / "emotion_int8.tflite" in built.paths and models / "emotion_int8.onnx" in built.paths
    assert built.rows == []
