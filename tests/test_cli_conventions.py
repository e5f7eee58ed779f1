"""What every command line does alike: --version, help with examples and no placeholder types,
checks that come before any long work, progress on stderr."""

from __future__ import annotations

import importlib

import pytest
from typer.testing import CliRunner

from benchmarks.progress import Progress, busy_warning, format_elapsed
from edge_runtime.version import __version__

runner = CliRunner()
APPS = {"edge-run": "edge_runtime.cli", "edge-train": "trainer.cli", "edge-convert": "convert.cli", "edge-bench": "benchmarks.cli"}
HELP_PAGES = [("edge-run", []), ("edge-train", []), ("edge-convert", []),
              *(("edge-bench", [command]) for command in ("models", "pipeline", "accuracy", "scene"))]


def app_of(name: str):
    return importlib.import_module(APPS[name]).app


@pytest.mark.parametrize("name", APPS)
def test_version_prints_the_package_version(name):
    result = runner.invoke(app_of(name), ["--version"], prog_name=name)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{name} {__version__}"


@pytest.mark.parametrize(("name", "command"), HELP_PAGES)
def test_help_ends_with_examples_and_shows_no_placeholder_types(name, command):
    result = runner.invoke(app_of(name), [*command, "--help"], prog_name=name, terminal_width=200)
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage and "<" not in usage
    assert "<bool>" not in result.output
    examples = result.output[result.output.index("Examples:"):]
    assert f"{name} {' '.join(command)}".strip() in examples


def test_edge_convert_usage_names_its_argument():
    result = runner.invoke(app_of("edge-convert"), ["--help"], prog_name="edge-convert", terminal_width=200)
    assert "Usage: edge-convert [OPTIONS] MODEL" in result.output


def test_edge_train_without_keras_says_what_to_install_before_reading_data(monkeypatch, fer_folder, tmp_path):
    import trainer.framework
    import trainer.train

    real_available = trainer.framework.module_available
    monkeypatch.setattr(trainer.framework, "module_available", lambda name: name != "keras" and real_available(name))
    monkeypatch.setattr(trainer.train, "load_fer2013", lambda *a, **k: pytest.fail("data read before the framework check"))
    result = runner.invoke(app_of("edge-train"), ["--data", str(fer_folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        'edge-train: error: edge-train needs Keras and TensorFlow, which are not installed: '
        'pip install -e ".[train]" (in the edge-emotion folder)'
    )
    assert not (tmp_path / "run").exists()


def test_edge_train_without_any_keras_backend(monkeypatch):
    import trainer.framework

    monkeypatch.setattr(trainer.framework, "module_available", lambda name: name == "keras")
    assert "needs a Keras backend (TensorFlow, JAX or PyTorch)" in trainer.framework.framework_problem()


@pytest.mark.parametrize("option", ["--json", "--markdown", "--plot"])
def test_edge_bench_refuses_a_folder_as_output_before_running(monkeypatch, tmp_path, fer_folder, option):
    import benchmarks.accuracy_bench

    monkeypatch.setattr(benchmarks.accuracy_bench, "run_accuracy", lambda config: pytest.fail("benchmark ran"))
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(app_of("edge-bench"), ["accuracy", "--data", str(fer_folder), option, str(folder)])
    assert result.exit_code == 1
    assert result.output.strip() == f"edge-bench: error: {option} {folder}: is a folder; expected a file path"


def test_an_empty_source_is_called_empty():
    from edge_runtime.sources.open_source import SourceError, open_source

    for spec in ("", "   "):
        with pytest.raises(SourceError, match=r"^the source is empty; expected a webcam index"):
            open_source(spec)


def test_progress_counts_configurations_and_elapsed_time():
    lines, now = [], [100.0]
    progress = Progress(3, lines.append, clock=lambda: now[0])
    progress.start("onnx-fp32/t1")
    now[0] += 75.4
    progress.start("onnx-fp32/t2")
    assert lines == ["configuration 1 of 3 (elapsed 0:00): onnx-fp32/t1", "configuration 2 of 3 (elapsed 1:15): onnx-fp32/t2"]
    assert format_elapsed(3725) == "1:02:05"


def test_busy_machine_warning_only_above_half_the_cores():
    assert busy_warning(cores=2, load=0.9) is None
    assert busy_warning(cores=2, load=1.5) == (
        "warning: the machine is busy (load average 1.50 on 2 usable cores); timings will be slower and noisier than on a quiet machine"
    )
