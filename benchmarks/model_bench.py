"""`edge-bench models`: one model file on one backend at one thread count.

`measure_model` runs inside a fresh process (see `benchmarks.worker`), so that the peak
resident memory it reports belongs to that configuration alone, and so that a runtime's
thread pools, once started, cannot leak into the next configuration. Everything it touches
(loader, clock, memory probe, thread setter) is a parameter, so tests drive it with fakes.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.rows import error_text, failed_row, ok_row, skipped_row
from benchmarks.stats import Clock, LoopSettings, latency_summary, throughput, timed_runs
from edge_runtime.model_files.formats import FORMAT_NAMES, FORMATS, backend_for_path, get_format
from edge_runtime.model_files.metadata import MetadataError, read_sidecar
from edge_runtime.preprocess import faces_to_batch
from fer_data.metrics import classification_report


@dataclass(frozen=True)
class ModelJob:
    """One configuration to measure.

    Attributes:
        model: model file.
        backend: BACKENDS name that runs it.
        threads: intra-op threads for the runtime and OpenCV.
        batch: the larger batch for throughput (faces per call).
        loop: warm-up and minimum runs/time of the batch-1 loop.
        inputs: `.npz` written by `benchmarks.inputs.write_inputs` (face pool, evaluation faces).
        format: the format table's name, for the row (guessed from the file).
    """

    model: str
    backend: str
    threads: int
    batch: int
    loop: LoopSettings
    inputs: str
    format: str = ""

    @property
    def name(self) -> str:
        return f"{self.format or Path(self.model).name}/{self.backend}/t{self.threads}"

    def to_dict(self) -> dict:
        return {"kind": "model", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> ModelJob:
        fields = {k: v for k, v in data.items() if k != "kind"}
        fields["loop"] = LoopSettings(**fields["loop"])
        return cls(**fields)


def guess_format(path: str | Path) -> str:
    """The FORMATS name of a model file: its metadata's `format` when it has a sidecar, else
    the file tag the exporter put into its name (`emotion_int8.tflite` -> tflite-int8)."""
    path = Path(path)
    try:
        name = read_sidecar(path).format
        if name:
            return name
    except MetadataError:
        pass
    candidates = [f for f in FORMATS if path.suffix.lower() == f.suffix and path.stem.endswith(f.file_tag)]
    if not candidates:
        return path.suffix.lstrip(".") or path.name
    return max(candidates, key=lambda f: len(f.file_tag)).name


def _proc_status_mb(field: str) -> float | None:
    """A memory figure of /proc/self/status (Linux), in MiB, or None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM, which starts afresh at exec. `ru_maxrss` does not: it carries over the
    parent's peak through fork and exec, so a child of a large parent would report the
    parent's memory. Elsewhere ru_maxrss (KiB, bytes on macOS), the best that is available.
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / (1024.0 * 1024.0) if sys.platform == "darwin" else value / 1024.0


def current_rss_mb() -> float | None:
    """Resident memory now (Linux VmRSS), in MiB."""
    return _proc_status_mb("VmRSS")


def set_thread_counts(threads: int) -> None:
    """OpenCV's pool (the runtimes get `threads` through `load_backend`)."""
    import cv2

    cv2.setNumThreads(int(threads))


@dataclass
class ModelProbe:
    """The pieces of `measure_model` a test replaces."""

    load: Callable | None = None  # (path, backend, threads) -> Backend
    clock: Clock = time.perf_counter
    memory: Callable[[], float] = peak_rss_mb
    baseline: Callable[[], float | None] = current_rss_mb
    set_threads: Callable[[int], None] = set_thread_counts
    read_inputs: Callable | None = None

    def __post_init__(self) -> None:
        if self.load is None:
            from edge_runtime.backends import load_backend

            self.load = lambda path, backend, threads: load_backend(path, backend, threads=threads)
        if self.read_inputs is None:
            from benchmarks.inputs import read_inputs

            self.read_inputs = read_inputs


def measure_model(job: ModelJob, probe: ModelProbe | None = None) -> dict:
    """Measures one configuration; returns its row (never raises for a model that fails).

    Figures: size, load time, first inference, batch-1 latency percentiles, throughput at
    batch 1 and at `job.batch`, peak memory, and accuracy when the inputs hold evaluation faces.
    """
    probe = probe or ModelProbe()
    clock = probe.clock
    where = {"model": job.model, "format": job.format, "backend": job.backend, "threads": job.threads}
    try:
        pool, evaluation = probe.read_inputs(job.inputs)
        probe.set_threads(job.threads)
        base_rss = probe.baseline()
        start = clock()
        backend = probe.load(job.model, job.backend, job.threads)
        load_ms = (clock() - start) * 1000.0
    except Exception as error:  # noqa: BLE001 - any failure to load is this row's result
        return failed_row(job.name, error_text(error), **where)
    try:
        with backend:
            spec = backend.metadata.input
            singles = [faces_to_batch([face], spec) for face in pool]
            start = clock()
            backend.predict(singles[0])
            first_ms = (clock() - start) * 1000.0
            runs = timed_runs(lambda i: backend.predict(singles[i % len(singles)]), job.loop, clock)
            figures = latency_summary(runs.durations)
            figures["throughput_b1"] = throughput(runs.runs, runs.elapsed)
            figures.update(_batch_throughput(backend, pool, spec, job, clock))
            peak = probe.memory()
            if evaluation is not None:
                figures.update(_accuracy(backend, evaluation))
            fmt = job.format or backend.metadata.format
    except Exception as error:  # noqa: BLE001
        return failed_row(job.name, error_text(error), **where)
    size = Path(job.model).stat().st_size if Path(job.model).exists() else None
    precision = get_format(fmt).precision if fmt in FORMAT_NAMES else ""
    return ok_row(
        job.name,
        **{**where, "format": fmt, "precision": precision},
        size_bytes=size,
        size_mb=None if size is None else size / 1e6,
        load_ms=load_ms,
        first_ms=first_ms,
        **figures,
        batch=job.batch,
        base_rss_mb=base_rss,
        peak_rss_mb=peak,
    )


def _batch_throughput(backend, pool: np.ndarray, spec, job: ModelJob, clock: Clock) -> dict:
    """Faces per second at `job.batch` faces per call, batches rotated through the pool."""
    batch = max(1, job.batch)
    starts = range(0, max(1, len(pool) - batch + 1), batch)
    batches = [faces_to_batch(np.resize(pool, (batch, *pool.shape[1:])) if len(pool) < batch else pool[s : s + batch], spec)
               for s in starts]
    # Fewer runs than at batch 1 (each carries `batch` faces), the same minimum time.
    settings = LoopSettings(warmup=min(3, job.loop.warmup), min_runs=max(3, job.loop.min_runs // batch), min_time=job.loop.min_time)
    runs = timed_runs(lambda i: backend.predict(batches[i % len(batches)]), settings, clock)
    return {"throughput_batch": throughput(runs.runs * batch, runs.elapsed)}


def _accuracy(backend, evaluation) -> dict:
    from benchmarks.accuracy_bench import align_to_labels, predict_split

    probabilities = align_to_labels(predict_split(backend, evaluation.images), backend.labels, str(backend.model_path))
    report = classification_report(evaluation.labels, probabilities)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "n": report["n"]}


# ---------------------------------------------------------------- planning, in the parent


def plan_models(
    models: list[Path], threads: list[int], batch: int, loop: LoopSettings, inputs: Path, runtime_check
) -> tuple[list[ModelJob], list[dict]]:
    """The jobs to run, and the rows already decided (skipped) without running anything.

    Args:
        runtime_check: backend name -> RuntimeCheck (see `benchmarks.rows.check_runtime`).
    """
    jobs, decided = [], []
    for model in models:
        fmt = guess_format(model)
        try:
            backend = backend_for_path(model).name
        except ValueError as error:
            decided.append(skipped_row(f"{fmt}/-", f"format unsupported: {error}", model=str(model), format=fmt))
            continue
        check = runtime_check(backend)
        for count in threads:
            job = ModelJob(str(model), backend, int(count), int(batch), loop, str(inputs), fmt)
            if check.available:
                jobs.append(job)
            else:
                decided.append(skipped_row(job.name, check.reason, model=str(model), format=fmt, backend=backend, threads=count))
    return jobs, decided
