"""Every row of every table reaches every place that reads it: the choices of each command
line, the install hints, the backend classes and the benchmarks' rows.

The cases are made from the tables themselves, so a new row is tested here without anyone
adding a case."""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks import cli as bench_cli
from benchmarks.compute import MAC_COUNTERS, reference_model
from benchmarks.model_bench import plan_models
from benchmarks.model_variants import build_variants
from benchmarks.pipeline_suite import SWEEP_PREFERENCE
from benchmarks.rows import SKIPPED, RuntimeCheck, check_runtime
from benchmarks.stats import LoopSettings
from convert.exporters import DEFAULT_PRECISION, EXPORTABLE, EXPORTERS, FAMILIES, QUANTIZED_PRECISION, select_formats
from convert.free_space import expected_size
from convert.verify import PARITY_THRESHOLDS, judge
from edge_runtime.choices import BackendChoice, DetectorChoice
from edge_runtime.detectors import DETECTOR_NAMES, DETECTORS
from edge_runtime.model_files.formats import BACKEND_NAMES, BACKENDS, FORMATS, MASTER_FORMAT, PRECISIONS, get_backend
from edge_runtime.outputs.draw import OVERLAYS
from trainer.augment import CROP_JITTERS
from trainer.config import PRESETS
from trainer.optimizers import OPTIMIZERS, SCHEDULES
from trainer.views import VIEWS

runner = CliRunner()
REPOSITORY = Path(__file__).resolve().parents[1]
APPS = {"edge-run": "edge_runtime.cli", "edge-bench": "benchmarks.cli", "edge-convert": "convert.cli", "edge-train": "trainer.cli"}
NOT_A_ROW = "no-such-row"

# Where each table's names are choices: (command line, arguments that come before, option).
# "{dir}" and "{file}" stand for an existing folder and file (options with exists=True).
BACKEND_OPTIONS = [("edge-run", (), "--backend")] + [
    ("edge-bench", (command, "--data", "{dir}"), "--backend") for command in ("accuracy", "scene", "streams")
]
DETECTOR_OPTIONS = [("edge-run", (), "--detector"), ("edge-bench", ("pipeline",), "--detector"),
                    ("edge-bench", ("scene", "--data", "{dir}"), "--detector")]
CONVERT_FORMAT = ("edge-convert", ("{file}", "--out", "{dir}"), "--format")
CONVERT_PRECISION = ("edge-convert", ("{file}", "--out", "{dir}"), "--precision")


def _rows(table: str, names, options) -> list:
    return [pytest.param(name, options, id=f"{table}:{name}") for name in names]


CHOICE_CASES = [
    *_rows("BACKENDS", BACKEND_NAMES, BACKEND_OPTIONS),
    *_rows("DETECTORS", [row.name for row in DETECTORS], DETECTOR_OPTIONS),
    *_rows("OVERLAYS", OVERLAYS, [("edge-run", (), "--overlay")]),
    *_rows("FORMATS", EXPORTABLE, [CONVERT_FORMAT]),
    *_rows("FAMILIES", FAMILIES, [CONVERT_FORMAT]),
    *_rows("PRESETS", PRESETS, [("edge-train", (), "--preset")]),
    *_rows("OPTIMIZERS", OPTIMIZERS, [("edge-train", (), "--optimizer")]),
    *_rows("SCHEDULES", SCHEDULES, [("edge-train", (), "--schedule")]),
    *_rows("CROP_JITTERS", CROP_JITTERS, [("edge-train", (), "--crop-jitter")]),
    *_rows("VIEWS", VIEWS, [("edge-train", (), "--tta")]),
]


@cache
def cli_choices(cli: str, before: tuple[str, ...], option: str, folder: str) -> tuple[str, ...]:
    """The choices a command line offers for `option`, read from the error it gives for a
    value that is no choice (what a user sees, whatever the CLI's internals)."""
    stand_in = Path(folder) / "model.keras"
    stand_in.touch()
    arguments = [arg.format(dir=folder, file=stand_in) for arg in before]
    app = importlib.import_module(APPS[cli]).app
    result = runner.invoke(app, [*arguments, option, NOT_A_ROW], prog_name=cli)
    assert result.exit_code == 2, result.output
    # The error may be boxed and wrapped: read it as one line.
    message = " ".join(result.output.replace("│", " ").split())
    listed = re.search(rf"'{NOT_A_ROW}' is not one of ((?:'[^']*'(?:, )?)+)", message)
    assert listed, result.output
    return tuple(re.findall(r"'([^']*)'", listed.group(1)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("choices"))


@pytest.mark.parametrize(("name", "options"), CHOICE_CASES)
def test_every_row_is_a_choice_of_every_command_that_reads_its_table(name, options, folder):
    for cli, before, option in options:
        assert name in cli_choices(cli, before, option, folder), f"{cli} {' '.join(before)} {option}"


def test_choices_are_the_rows_and_nothing_else(folder):
    assert cli_choices(*BACKEND_OPTIONS[0], folder) == ("auto", *BACKEND_NAMES)
    assert cli_choices(*DETECTOR_OPTIONS[1], folder) == tuple(row.name for row in DETECTORS)
    assert cli_choices(*CONVERT_FORMAT, folder) == (*FAMILIES, "all", *EXPORTABLE)


@pytest.mark.parametrize("row", FORMATS, ids=lambda row: row.name)
def test_every_format_row_is_exported_or_is_the_master(row, folder):
    assert (row.name in EXPORTERS) != row.master
    assert row.backend in BACKEND_NAMES and row.precision in PRECISIONS and row.weight_bytes > 0
    if row.master:
        assert row is MASTER_FORMAT and row.name not in cli_choices(*CONVERT_FORMAT, folder)
        return
    # Its family word reaches it: alone, with --quantize, or with its --precision.
    if row.precision in (DEFAULT_PRECISION, QUANTIZED_PRECISION):
        assert select_formats([row.backend], quantize=row.precision == QUANTIZED_PRECISION) == [row.name]
    else:
        assert row.precision in cli_choices(*CONVERT_PRECISION, folder)
        assert select_formats([row.backend], precision=row.precision) == [row.name]
    # Its verification has a criterion, and its free-space estimate a size.
    assert judge(row.precision, {"max_abs_diff": 0.0, "agreement": 1.0}, PARITY_THRESHOLDS)[0]
    assert expected_size(row, 1000) == 1000 * row.weight_bytes


def _extras() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["optional-dependencies"]


def _distribution(requirement: str) -> str:
    """The importable name a requirement installs, as pip spells it ("ai-edge-litert>=2" -> ai_edge_litert)."""
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].replace("-", "_").lower()


@pytest.mark.parametrize("row", BACKENDS, ids=lambda row: row.name)
def test_every_backend_row_has_an_install_hint_that_installs_its_runtime(row):
    assert f'".[{row.extra}]"' in row.install_hint
    installed_by_extra = {_distribution(requirement) for requirement in _extras()[row.extra]}
    assert installed_by_extra & set(row.runtime_packages), f"[{row.extra}] installs none of {row.runtime_packages}"
    missing = check_runtime(row.name, available=lambda module: False)
    assert not missing.available and row.install_hint in missing.reason


@pytest.mark.parametrize("row", BACKENDS, ids=lambda row: row.name)
def test_every_backend_class_takes_its_name_from_its_row(row):
    backend_class = getattr(importlib.import_module(row.module), row.class_name)
    assert backend_class.name == row.name and backend_class.info is row
    assert row.install_hint in str(backend_class.missing_runtime("its runtime"))
    assert row.name in MAC_COUNTERS


@pytest.mark.parametrize("row", FORMATS, ids=lambda row: row.name)
def test_every_format_row_becomes_a_benchmark_row(row, tmp_path):
    model = tmp_path / row.file_name("emotion")
    model.write_bytes(b"0")
    loop = LoopSettings(warmup=0, min_runs=1, min_time=0.0)
    jobs, decided = plan_models([model], [1], 4, loop, tmp_path / "inputs.npz", lambda backend: RuntimeCheck(True))
    assert decided == [] and [(job.format, job.backend) for job in jobs] == [(row.name, row.backend)]
    assert reference_model([model]) == model
    missing = lambda backend: check_runtime(backend, available=lambda module: False)  # noqa: E731
    jobs, decided = plan_models([model], [1], 4, loop, tmp_path / "inputs.npz", missing)
    assert jobs == [] and decided[0]["status"] == SKIPPED and decided[0]["format"] == row.name
    assert get_backend(row.backend).install_hint in decided[0]["reason"]


def test_every_exportable_row_is_built_as_a_benchmark_variant(tmp_path):
    keras_file = tmp_path / MASTER_FORMAT.file_name("emotion")
    keras_file.write_bytes(b"pretend keras")

    def convert(model_path, formats, out_dir, **options):
        results = []
        for name in formats:
            path = Path(out_dir) / next(row for row in FORMATS if row.name == name).file_name("emotion")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"0")
            results.append(type("Result", (), {"format": name, "path": path})())
        return results

    chosen = build_variants(keras_file, tmp_path / "data", cache_root=tmp_path / "cache", convert=convert)
    built = [path.name for path in chosen.paths]
    assert built == [row.file_name("emotion") for row in FORMATS if row.master or row.name in EXPORTABLE]


def test_benchmark_preferences_name_rows():
    assert set(SWEEP_PREFERENCE) <= set(EXPORTABLE)
    assert set(MAC_COUNTERS) == set(BACKEND_NAMES)


def test_the_architecture_choices_are_the_architecture_table(folder):
    pytest.importorskip("keras")
    from trainer.models import ARCHITECTURES

    assert cli_choices("edge-train", (), "--arch", folder) == tuple(ARCHITECTURES)


def test_cli_choices_are_the_table_rows():
    assert [c.value for c in BackendChoice] == ["auto", *BACKEND_NAMES]
    assert [c.value for c in DetectorChoice] == ["auto", *DETECTOR_NAMES]
    assert bench_cli.BackendChoice is BackendChoice  # one enum, not a second copy
    assert [c.value for c in bench_cli.DetectorChoice] == list(DETECTOR_NAMES)
