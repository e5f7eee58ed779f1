"""The conversion library: `.keras` in, verified TFLite and ONNX files out.

Order of work, cheapest failure first: the model file and its sidecar, where the data is, the
output folder, the data sets, then TensorFlow, the Keras model, the room on the output disk
and the model's predictions, then one export at a time.
Each export is written to a temporary file and renamed into place (its sidecar likewise), so
an interrupted or failed conversion never leaves a truncated model where a good one was. Its
metadata carries a checksum of the file (`edge_runtime.model_files.integrity`), which the runtime checks.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from convert import exporters
from convert.calibration import FaceSet, calibration_faces, load_data, training_data_path, verification_faces
from convert.errors import ConvertError
from convert.free_space import check_free_space, expected_size
from convert.job import ExportJob
from convert.source import check_model_file, load_source_model
from convert.verify import PARITY_THRESHOLDS, Thresholds, format_table, predict_in_batches, verify_export
from convert.work_dir import own_temporary_folder, remove_stranded_work_dirs
from edge_runtime.error_text import os_error_reason
from edge_runtime.model_files.formats import ModelFormat, get_backend
from edge_runtime.model_files.integrity import CHECKSUM_KEY, checksum_of_file, stamp_onnx
from edge_runtime.model_files.metadata import ModelMetadata, file_sha256, sidecar_path
from edge_runtime.outputs.atomic import atomic_path, remove_own_temporaries, remove_stranded, write_json_atomic
from edge_runtime.version import __version__

DEFAULT_CALIBRATION_SIZE = 500
DEFAULT_VERIFY_SIZE = 2000


@dataclass(frozen=True)
class ConvertConfig:
    """Everything that defines one conversion.

    Attributes:
        model_path: the .keras file (its sidecar `model.keras.json` next to it).
        formats: names from `edge_runtime.model_files.formats.FORMATS` that have an exporter.
        out_dir: where the exports (and their sidecars and reports) go.
        stem: file name stem of the exports (default: the model file's stem).
        calibration_data: FER-2013 folder or CSV for int8 calibration (default: the data in
            the model's run config.json).
        calibration_size: faces in the stratified calibration sample.
        verify: compare every export with Keras.
        verify_data: FER-2013 folder or CSV whose validation split is used (default: the
            calibration data).
        verify_size: validation faces compared (stratified, seeded); 0 means all of them.
        float_io: keep float32 input/output tensors on full-integer TFLite models.
        thresholds: pass thresholds of the verification.
    """

    model_path: Path
    formats: tuple[str, ...]
    out_dir: Path
    stem: str | None = None
    calibration_data: Path | None = None
    calibration_size: int = DEFAULT_CALIBRATION_SIZE
    verify: bool = True
    verify_data: Path | None = None
    verify_size: int = DEFAULT_VERIFY_SIZE
    float_io: bool = False
    thresholds: Thresholds = PARITY_THRESHOLDS


@dataclass(frozen=True)
class ExportResult:
    """One written export.

    Attributes:
        format: its FORMATS name.
        path: the file.
        size_bytes: its size.
        report: the verification report (also in `<path>.report.json`); None without verification.
        passed: False only when verification ran and failed its threshold.
    """

    format: str
    path: Path
    size_bytes: int
    report: dict | None
    passed: bool

    def summary(self) -> dict:
        """The row `verify.format_table` prints."""
        return {
            "format": self.format,
            "file": self.path.name,
            "size_bytes": self.size_bytes,
            "verification": None if self.report is None else self.report["verification"],
        }


def convert_model(
    model_path: Path,
    formats: Sequence[str],
    out_dir: Path,
    *,
    stem: str | None = None,
    calibration_data: Path | None = None,
    verify_data: Path | None = None,
    verify: bool = True,
    float_io: bool = False,
    calibration_size: int = DEFAULT_CALIBRATION_SIZE,
    verify_size: int = DEFAULT_VERIFY_SIZE,
    max_diff: float = PARITY_THRESHOLDS.max_diff,
    min_agreement: float = PARITY_THRESHOLDS.min_agreement,
    log: Callable[[str], None] | None = None,
) -> list[ExportResult]:
    """Exports a Keras model to the given formats and verifies each export against Keras.

    Args:
        model_path: the .keras file, with its `model.keras.json` sidecar.
        formats: FORMATS names, e.g. ["tflite-int8", "onnx-fp32"].
        out_dir: output folder (created when missing).
        stem: file name stem (default: the model file's stem), e.g. "emotion" -> emotion_int8.tflite.
        calibration_data: FER-2013 folder or CSV (default: the data of the model's training run).
        verify_data: FER-2013 folder or CSV; its validation split is used (default: the calibration data).
        verify: run the verification.
        float_io: float32 input/output tensors on the full-integer TFLite model.
        calibration_size: faces for int8 calibration.
        verify_size: validation faces to compare; 0 for the whole split.
        max_diff: largest probability difference an fp32 export may show.
        min_agreement: smallest top-1 agreement any other export may show.
        log: receives one line per step (None: silent).

    Returns:
        One ExportResult per format, in the order given. A result with `passed` False was
        still written, with its report.

    Raises:
        ConvertError: bad input (model, data, output folder, format name) or a failed export.
    """
    if isinstance(formats, str):
        formats = [formats]  # one name, not a sequence of one-letter names
    try:
        names = tuple(row.name for row in exporters.export_rows(list(formats)))
    except ValueError as error:
        raise ConvertError(str(error)) from None
    config = ConvertConfig(
        model_path=Path(model_path),
        formats=names,
        out_dir=Path(out_dir),
        stem=stem,
        calibration_data=None if calibration_data is None else Path(calibration_data),
        calibration_size=calibration_size,
        verify=verify,
        verify_data=None if verify_data is None else Path(verify_data),
        verify_size=verify_size,
        float_io=float_io,
        thresholds=Thresholds(max_diff=max_diff, min_agreement=min_agreement),
    )
    return run_conversion(config, log=log)


def run_conversion(config: ConvertConfig, log: Callable[[str], None] | None = None) -> list[ExportResult]:
    """Runs a conversion described by `config` (see `convert_model`).

    Raises:
        ConvertError: as `convert_model`.
    """
    say = log or (lambda line: None)
    if not config.formats:
        raise ConvertError("no format to export; choose one of: " + ", ".join(exporters.EXPORTABLE))
    try:
        rows = exporters.export_rows(config.formats)
    except ValueError as error:
        raise ConvertError(str(error)) from None
    if config.calibration_size < 1:
        raise ConvertError(f"calibration size {config.calibration_size}; expected at least 1 face")
    started = time.perf_counter()
    metadata = check_model_file(config.model_path)
    stem = config.stem or config.model_path.stem
    if not stem or "/" in stem or os.sep in stem:
        raise ConvertError(f"--name {stem!r}: expected a file name stem such as 'emotion'")
    calibration_path, verify_path = _data_paths(config, rows)
    created = _check_output_dir(config.out_dir)
    try:
        _remove_what_killed_runs_left(config.out_dir, say)
        with own_temporary_folder():
            results = _convert(config, rows, metadata, stem, calibration_path, verify_path, say)
    except BaseException:
        # A stop signal (or the error a library made of it) can land between a temporary
        # file's creation and its clean-up; nothing of this run's may stay behind, nor an
        # empty --out folder that would look like the place of a finished export.
        remove_own_temporaries(config.out_dir)
        _remove_empty_folders(created)
        raise
    say(f"{len(results)} file(s) in {time.perf_counter() - started:.1f} s")
    return results


def _convert(config, rows, metadata, stem, calibration_path, verify_path, say) -> list[ExportResult]:
    """Loads the faces and the Keras model, then writes every export."""
    calibration, verification = _load_faces(config, rows, metadata, calibration_path, verify_path, say)

    say(f"loading {config.model_path}")
    source = load_source_model(config.model_path, metadata)
    parameters = source.model.count_params()
    check_free_space(config.out_dir, [(config.out_dir / row.file_name(stem), expected_size(row, parameters)) for row in rows])
    job = ExportJob(source=source, calibration=None if calibration is None else calibration.batch, float_io=config.float_io)
    keras_probabilities = None
    if verification is not None:
        keras_probabilities = predict_in_batches(job.serving_function(), verification.batch)
    return [_export_one(config, job, row, stem, verification, keras_probabilities, say) for row in rows]


def _export_one(config, job, row, stem, verification, keras_probabilities, say) -> ExportResult:
    """Writes one export, verifies it and writes its report."""
    path = config.out_dir / row.file_name(stem)
    say(f"{row.name}: writing {path}")
    with _writing(path):
        export_metadata = _export_atomically(job, row, path)
    report = None
    if verification is not None:
        say(f"{row.name}: verifying on {len(verification)} faces")
        verification_result = verify_export(path, row, verification, keras_probabilities, config.thresholds)
        report = _report(config, row, path, export_metadata, verification_result)
        with _writing(_report_path(path)):
            write_json_atomic(_report_path(path), report)
    elif _report_path(path).exists():
        _report_path(path).unlink()  # A report of an earlier file would describe a file that is gone.
    passed = report is None or report["verification"]["passed"]
    return ExportResult(row.name, path, path.stat().st_size, report, passed)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turns a failed write of `path` (a full disk, a lost permission) into one line naming it."""
    try:
        yield
    except OSError as error:
        raise ConvertError(f"{path}: cannot be written ({os_error_reason(error)})") from None


def results_table(results: list[ExportResult]) -> str:
    """The table `edge-convert` prints: one line per export."""
    return format_table([result.summary() for result in results])


def _check_output_dir(out_dir: Path) -> list[Path]:
    """Creates `out_dir` when missing and checks that a file can be written in it.

    Returns:
        The folders it created, innermost first: a run that fails removes them again.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvertError(f"{out_dir}: is a file; expected an output folder")
    created = []
    folder = out_dir
    while not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".edge-convert-", dir=out_dir)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        _remove_empty_folders(created)
        raise ConvertError(f"{out_dir}: cannot write to the output folder ({os_error_reason(error)})") from None
    return created


def _remove_empty_folders(folders: list[Path]) -> None:
    """Removes `folders` (innermost first) as long as they are empty; one that holds anything,
    an export already written or a file of someone else's, stays with everything above it."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _remove_what_killed_runs_left(out_dir: Path, say: Callable[[str], None]) -> None:
    """A run killed outright (SIGKILL, power loss) strands its hidden temporary exports (up to
    several MB each) in the output folder and its temporary folder (TensorFlow's SavedModels,
    the int8 work files) in the system's; the next run deletes those whose process is gone."""
    removed = remove_stranded(out_dir) + remove_stranded_work_dirs()
    if removed:
        say(f"removed {len(removed)} temporary file(s) left by an interrupted run: {', '.join(p.name for p in removed)}")


def _data_paths(config: ConvertConfig, rows: list[ModelFormat]) -> tuple[Path | None, Path | None]:
    """Where calibration and verification faces come from, or a clear error when a needed one is unknown."""
    needs_calibration = any(exporters.needs_calibration(row) for row in rows)
    trained_on = None
    if config.calibration_data is None or (config.verify and config.verify_data is None):
        trained_on = training_data_path(config.model_path)
    calibration_path = config.calibration_data or trained_on
    if needs_calibration and calibration_path is None:
        raise ConvertError(
            f"{config.model_path}: no calibration data found (no run config.json with a reachable 'data' next to the model); "
            "pass --calibration-data DIR|CSV"
        )
    verify_path = None
    if config.verify:
        verify_path = config.verify_data or calibration_path
        if verify_path is None:
            raise ConvertError(
                f"{config.model_path}: no verification data found (no run config.json with a reachable 'data' next to the model); "
                "pass --verify-data DIR|CSV, or --no-verify"
            )
    return (calibration_path if needs_calibration else None), verify_path


def _load_faces(config, rows, metadata: ModelMetadata, calibration_path, verify_path, say) -> tuple[FaceSet | None, FaceSet | None]:
    calibration = verification = None
    loaded = {}
    if calibration_path is not None:
        say(f"calibration faces from {calibration_path}")
        loaded[calibration_path] = load_data(calibration_path, "calibration")
        calibration = calibration_faces(loaded[calibration_path], metadata.input, config.calibration_size)
    if verify_path is not None:
        if verify_path not in loaded:
            say(f"verification faces from {verify_path}")
            loaded[verify_path] = load_data(verify_path, "verification")
        verification = verification_faces(loaded[verify_path], metadata.input, config.verify_size)
    return calibration, verification


def _export_atomically(job: ExportJob, row: ModelFormat, path: Path) -> ModelMetadata:
    """Writes the model file (and its sidecar) through temporary files, renamed only when all is written."""
    exporter = exporters.EXPORTERS[row.name]
    with ExitStack() as stack:
        model_tmp = stack.enter_context(atomic_path(path))
        if get_backend(row.backend).metadata == "sidecar":
            sidecar_tmp = stack.enter_context(atomic_path(sidecar_path(path)))
            metadata = _written(exporter(job, row.name, model_tmp), model_tmp, row)
            metadata = replace(metadata, checksum=checksum_of_file(model_tmp, metadata.to_dict()))
            sidecar_tmp.write_text(metadata.to_json(), encoding="utf-8")
        else:
            metadata = _written(exporter(job, row.name, model_tmp), model_tmp, row)
            metadata = replace(metadata, checksum=stamp_onnx(model_tmp, metadata.to_dict())[CHECKSUM_KEY])
    return metadata


def _written(metadata: ModelMetadata, model_tmp: Path, row: ModelFormat) -> ModelMetadata:
    if not model_tmp.exists() or model_tmp.stat().st_size == 0:
        raise ConvertError(f"{row.name}: the exporter wrote nothing")
    return metadata


def _report_path(path: Path) -> Path:
    return path.with_name(path.name + ".report.json")


def _report(config: ConvertConfig, row: ModelFormat, path: Path, metadata: ModelMetadata, verification: dict) -> dict:
    return {
        "format": row.name,
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "precision": row.precision,
        "backend": row.backend,
        "source": str(config.model_path),
        "source_sha256": metadata.source_sha256,
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verification": verification,
        "metadata": metadata.to_dict(),
    }


__all__ = ["ConvertConfig", "ExportResult", "convert_model", "results_table", "run_conversion"]
