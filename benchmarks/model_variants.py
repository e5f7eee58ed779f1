"""The model files `edge-bench models` compares when none are named: every variant that
`edge-convert --format all` makes of one Keras model (the bundled one by default), built once
into a cache folder keyed by the Keras file's hash and the calibration data.

For the bundled model, the files shipped next to it (its int8 TFLite and ONNX) are measured as
they are, since they are what users run; only the other variants are built. Building int8
variants needs calibration faces (`--data`); without them those rows are skipped, saying so.
Without TensorFlow (a runtime-only install) nothing can be converted: the files bundled in
`edge_runtime/models/` are compared instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.model_bench import guess_format
from benchmarks.rows import failed_row, module_available, skipped_row
from edge_runtime.model_files.bundled import MODELS_DIR, bundled_file
from edge_runtime.model_files.formats import FORMATS, MASTER_FORMAT, get_format, install_hint
from edge_runtime.model_files.metadata import file_sha256
from edge_runtime.outputs.atomic import write_json_atomic
from fer_data.fer2013 import default_cache_dir

MANIFEST = "manifest.json"
STEM = "emotion"


@dataclass
class ModelSet:
    """The files to compare and the rows already decided about variants that could not be made."""

    paths: list[Path]
    rows: list[dict] = field(default_factory=list)
    note: str = ""


def bundled_keras() -> Path:
    return bundled_file(MASTER_FORMAT.backend)


def bundled_files() -> list[Path]:
    """The model files shipped in `edge_runtime/models/` (any backend), in FORMATS order."""
    if not MODELS_DIR.is_dir():
        return []
    files = [p for p in sorted(MODELS_DIR.iterdir()) if p.suffix.lower() in {f.suffix for f in FORMATS}]
    return files


def cache_folder(keras_path: Path, data: Path | None, root: Path | None = None) -> Path:
    """`<cache>/bench-models/<keras hash>-<data hash>`: a new Keras file or data set builds anew."""
    data_key = hashlib.sha256(str(Path(data).resolve()).encode()).hexdigest()[:8] if data else "nodata"
    return Path(root or default_cache_dir()) / "bench-models" / f"{file_sha256(keras_path)[:16]}-{data_key}"


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return {k: v for k, v in manifest.get("files", {}).items() if (folder / v).is_file()}
    except (OSError, ValueError, AttributeError):
        return {}


def build_variants(keras_path: Path, data: Path | None, cache_root: Path | None = None, convert=None, log=None) -> ModelSet:
    """Every exportable variant of `keras_path` (int8 ones only with calibration `data`), cached.

    Args:
        keras_path: the .keras master with its sidecar.
        data: FER-2013 folder or CSV for int8 calibration; None builds the float variants only.
        cache_root: cache root (default: the FER-2013 cache folder).
        convert: `convert.api.convert_model` (injectable for tests).
        log: receives progress lines.

    Returns:
        The Keras file and its variants; rows for variants that were not built.
    """
    if convert is None:
        if not (module_available("tensorflow") and module_available("convert")):
            return _bundled_set(f"TensorFlow not installed, so no variant can be built: {install_hint('train')}")
        from convert.api import convert_model as convert
    from convert.exporters import EXPORTABLE, needs_calibration

    folder = cache_folder(keras_path, data, cache_root)
    built = _read_manifest(folder)
    # The bundled model's shipped files are what users run: they are measured as they are, and
    # only the other variants are built.
    shipped = {}
    if keras_path.resolve() == bundled_keras().resolve():
        shipped = {guess_format(p): p for p in bundled_files() if p.resolve() != keras_path.resolve()}
    buildable = [name for name in EXPORTABLE if data is not None or not needs_calibration(get_format(name))]
    wanted = [name for name in buildable if name not in shipped]
    missing = [name for name in wanted if name not in built]
    rows = [
        skipped_row(f"{name}/-", "int8 variants need calibration faces: pass --data DIR|CSV", format=name)
        for name in EXPORTABLE
        if name not in buildable and name not in shipped
    ]
    if missing:
        if log:
            log(f"building {', '.join(missing)} from {keras_path} into {folder}")
        try:
            results = convert(keras_path, missing, folder, stem=STEM, calibration_data=data, verify=False)
        except Exception as error:  # noqa: BLE001 - a failed conversion becomes failed rows
            from benchmarks.rows import error_text

            rows += [failed_row(f"{name}/-", f"conversion failed: {error_text(error)}", format=name) for name in missing]
            results = []
        for result in results:
            built[result.format] = Path(result.path).name
        write_json_atomic(folder / MANIFEST, {"source": str(keras_path), "data": str(data) if data else None, "files": built})
    paths = [keras_path]
    for name in EXPORTABLE:
        if name in shipped:
            paths.append(shipped[name])
        elif name in wanted and name in built:
            paths.append(folder / built[name])
    note = f"variants of {keras_path} built with edge-convert into {folder}"
    if shipped:
        note += f"; the shipped {', '.join(shipped)} files measured as they are"
    return ModelSet(paths, rows, note)


def _bundled_set(reason: str) -> ModelSet:
    files = bundled_files()
    return ModelSet(files, [], f"{reason}; comparing the bundled files in {MODELS_DIR} instead")


def default_model_set(keras_path: Path | None, data: Path | None, cache_root: Path | None = None, log=None) -> ModelSet:
    """The variants of `keras_path` (default: the bundled Keras model), or the bundled files."""
    keras_path = keras_path or bundled_keras()
    if not keras_path.is_file():
        return _bundled_set(f"{keras_path}: no such Keras model")
    return build_variants(keras_path, data, cache_root, log=log)


def choose_models(
    models: tuple, variants_of: Path | None, data: Path | None, model_set: Callable[..., ModelSet], log: Callable[[str], None]
) -> ModelSet:
    """The files a suite measures: those named on the command line, else `model_set`'s
    variants of `variants_of` (the bundled Keras model by default), whose note is logged."""
    if models:
        return ModelSet([Path(p) for p in models])
    chosen = model_set(variants_of, data, log=log)
    if chosen.note:
        log(chosen.note)
    return chosen
