"""`edge-bench pipeline` as a library call: the configurations that matter, each in its own
process, with the seed-style loop first so every row reads as a speed-up over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.environment import environment, usable_cores
from benchmarks.model_bench import guess_format
from benchmarks.model_variants import ModelSet, bundled_keras, choose_models, default_model_set
from benchmarks.pipeline_bench import SEED_STYLE, PipelineJob
from benchmarks.progress import Progress, warn_if_busy
from benchmarks.rows import OK, check_runtime, skipped_row, tensorflow_check
from benchmarks.worker import Runner
from edge_runtime.detectors import DETECTOR_NAMES
from edge_runtime.model_files.formats import FORMAT_NAMES, MASTER_FORMAT, backend_for_path, get_backend, get_format

DEFAULT_SCALE = 0.5
SWEEP_PREFERENCE = ("tflite-int8", "onnx-int8", "tflite-fp32", "onnx-fp32")


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of `edge-bench pipeline`.

    Attributes:
        source: `--source` spec ("demo" or a video file).
        models: files to run; empty for every variant of `variants_of` (default: the bundled model).
        variants_of: the Keras master whose variants are built when `models` is empty; also the
            model of the seed-style row.
        data: FER-2013 folder or CSV for int8 calibration when variants are built.
        threads: inference and OpenCV threads.
        detect_scales: detection scales of the sweep.
        detect_every: detection intervals of the sweep.
        detectors: face detectors (DETECTORS names), a row for each on the same frames.
        detector_model: the model file of the detectors that need one (YuNet), instead of the
            cache's copy; None: the cache's.
        max_frames: frames timed per configuration (0: the whole source).
        warmup_frames: frames run first and not counted.
    """

    source: str = "demo"
    models: tuple[Path, ...] = ()
    variants_of: Path | None = None
    data: Path | None = None
    threads: int = 2
    detect_scales: tuple[float, ...] = (1.0, 0.5)
    detect_every: tuple[int, ...] = (1, 3)
    detectors: tuple[str, ...] = DETECTOR_NAMES
    detector_model: Path | None = None
    max_frames: int = 300
    warmup_frames: int = 5

    def settings(self) -> dict:
        data = asdict(self)
        data.update(
            models=[str(p) for p in self.models],
            variants_of=str(self.variants_of) if self.variants_of else None,
            data=str(self.data) if self.data else None,
            detect_scales=list(self.detect_scales),
            detect_every=list(self.detect_every),
            detectors=list(self.detectors),
            detector_model=str(self.detector_model) if self.detector_model else None,
        )
        return data


def detector_file(name: str, explicit: Path | None) -> tuple[str, str]:
    """The model file a benchmark gives detector `name` (`explicit`, or "" for the cache's copy
    and for a detector that reads none), and why the detector cannot run here ("" when it can).
    The file is found as the runtime finds it (`model_files.resolve`), but never downloaded."""
    from edge_runtime.detectors import DetectorError, downloads, get_detector_info

    info = get_detector_info(name)
    if info.model_file is None:
        return "", ""
    try:
        downloads.resolve(info.model_file, explicit, download=False)
    except DetectorError as error:
        return "", f"{error} (or pass --detector-model)"
    return str(explicit or ""), ""


def default_pipeline_threads() -> int:
    return min(2, usable_cores())


def row_name(fmt: str, scale: float, every: int, detector: str) -> str:
    return f"{fmt} {detector} scale {scale:g} every {every}"


def plan_pipeline(config: PipelineConfig, models: list[Path], seed_keras: Path | None, runtime_check=check_runtime,
                  tf_check=tensorflow_check) -> tuple[list[PipelineJob], list[dict]]:
    """The jobs (seed-style first) and the rows decided without running (skipped).

    Every model runs at the runtime's default detection (scale 0.5, every frame) with each
    detector; one model, the fastest kind available (int8 first), also runs the whole
    detect-scale x detect-every sweep with each detector. A detector whose model file is neither
    passed (`detector_model`) nor in the cache is skipped (a benchmark never downloads).
    """
    jobs, decided = [], []
    common = {"source": config.source, "threads": config.threads, "max_frames": config.max_frames, "warmup_frames": config.warmup_frames}
    tf = tf_check()
    if seed_keras is None:
        decided.append(skipped_row(SEED_STYLE, "no Keras model to run the seed's loop with: pass a .keras model or --variants-of"))
    elif not tf.available:
        decided.append(skipped_row(SEED_STYLE, tf.reason, model=str(seed_keras), backend=MASTER_FORMAT.backend))
    else:
        jobs.append(PipelineJob(SEED_STYLE, model=str(seed_keras), backend=MASTER_FORMAT.backend, style="seed",
                                precision=MASTER_FORMAT.precision, **common))
    formats = {path: guess_format(path) for path in models}
    detector_files = {detector: detector_file(detector, config.detector_model) for detector in config.detectors}
    sweep_model = next((p for name in SWEEP_PREFERENCE for p in models if formats[p] == name), models[0] if models else None)
    grid = [(DEFAULT_SCALE, 1)]
    for model in models:
        fmt = formats[model]
        settings = [(s, e) for s in config.detect_scales for e in config.detect_every] if model == sweep_model else grid
        try:
            backend = backend_for_path(model).name
        except ValueError as error:
            decided.append(skipped_row(fmt, f"format unsupported: {error}", model=str(model)))  # no detector ran
            continue
        check = runtime_check(backend)
        precision = get_format(fmt).precision if fmt in FORMAT_NAMES else ""
        for detector in config.detectors:
            detector_model, missing = detector_files[detector]
            for scale, every in dict.fromkeys(settings):
                job = PipelineJob(row_name(fmt, scale, every, detector), model=str(model), backend=backend, detect_scale=scale,
                                  detect_every=every, detector=detector, detector_model=detector_model, precision=precision,
                                  **common)
                if check.available and not missing:
                    jobs.append(job)
                else:
                    decided.append(skipped_row(job.name, missing or check.reason, **job.describe()))
    return jobs, decided


def add_speedups(rows: list[dict]) -> None:
    """`speedup`: each ok row's FPS over the seed-style row's (when that row was measured)."""
    seed = next((r for r in rows if r["name"] == SEED_STYLE and r["status"] == OK and r.get("fps")), None)
    for row in rows:
        if seed is not None and row["status"] == OK:
            row["speedup"] = row["fps"] / seed["fps"]


def run_pipeline(
    config: PipelineConfig,
    runner: Runner,
    log: Callable[[str], None] = lambda line: None,
    model_set: Callable[..., ModelSet] = default_model_set,
    runtime_check=check_runtime,
    tf_check=tensorflow_check,
) -> dict:
    """Runs every configuration; returns the report (environment, settings, rows with speed-ups)."""
    warn_if_busy(log)
    chosen = choose_models(config.models, config.variants_of, config.data, model_set, log)
    keras_files = [p for p in chosen.paths if p.suffix.lower() in get_backend(MASTER_FORMAT.backend).suffixes]
    bundled = bundled_keras()
    seed_keras = keras_files[0] if keras_files else (config.variants_of or (bundled if bundled.is_file() else None))
    jobs, decided = plan_pipeline(config, chosen.paths, seed_keras, runtime_check, tf_check)
    rows = [r for r in decided if r["name"] == SEED_STYLE]
    progress = Progress(len(jobs), log)
    for job in jobs:
        progress.start(f"{job.name} on {config.source}")
        row = runner(job)
        detail = f"{row['fps']:.1f} FPS" if row["status"] == OK else (row.get("error") or row.get("reason"))
        log(f"  {row['name']}: {row['status']}, {detail}")
        rows.append(row)
    rows += [r for r in decided if r["name"] != SEED_STYLE] + list(chosen.rows)
    add_speedups(rows)
    best = max((r for r in rows if r["status"] == OK and r["name"] != SEED_STYLE), key=lambda r: r["fps"], default=None)
    report = {"command": "pipeline", "environment": environment(), "settings": config.settings(), "rows": rows}
    if best is not None:
        report["best"] = {"name": best["name"], "fps": best["fps"], "speedup": best.get("speedup")}
    return report
