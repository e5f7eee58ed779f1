"""`edge-bench models` as a library call: which files, which inputs, every configuration in
its own process, and the compute floor beside the best latency."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.compute import count_macs, floor_ms, reference_model
from benchmarks.environment import environment, usable_cores
from benchmarks.inputs import DEFAULT_POOL_SIZE, load_eval_split, pool_from_split, random_faces, write_inputs
from benchmarks.model_bench import plan_models
from benchmarks.model_variants import ModelSet, choose_models, default_model_set
from benchmarks.progress import Progress, warn_if_busy
from benchmarks.rows import OK, check_runtime, error_text
from benchmarks.stats import LoopSettings
from benchmarks.worker import Runner

PEAK_METHOD = (
    "best of 5 float32 2048x2048 @ 2048x2048 matmuls (2*n^3 FLOPs each) through numpy's BLAS and through ONNX Runtime "
    "(the faster counts), in a fresh process per thread count; what those libraries attain, not a datasheet peak"
)


@dataclass(frozen=True)
class ModelsConfig:
    """Settings of `edge-bench models`.

    Attributes:
        models: files to compare; empty for every variant of `variants_of` (default: the bundled model).
        variants_of: the Keras master whose variants are built when `models` is empty.
        threads: thread counts to measure each file at.
        batch: the larger batch for throughput.
        loop: warm-up and minimum runs/time at batch 1.
        data: FER-2013 folder or CSV: real faces for the input pool, accuracy on its val split,
            and int8 calibration when variants are built.
        pool_size: distinct faces rotated through the timed runs.
        floor: measure the CPU peak and compute the compute floor.
    """

    models: tuple[Path, ...] = ()
    variants_of: Path | None = None
    threads: tuple[int, ...] = (1, 2)
    batch: int = 32
    loop: LoopSettings = LoopSettings()
    data: Path | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    floor: bool = True

    def settings(self) -> dict:
        data = asdict(self)
        data["models"] = [str(p) for p in self.models]
        data["threads"] = list(self.threads)
        data["variants_of"] = str(self.variants_of) if self.variants_of else None
        data["data"] = str(self.data) if self.data else None
        return data


def default_threads() -> tuple[int, ...]:
    """1, 2 and 4 threads, up to the cores this process may use."""
    cores = usable_cores()
    return tuple(t for t in (1, 2, 4) if t <= cores) or (1,)


def run_models(
    config: ModelsConfig,
    runner: Runner,
    log: Callable[[str], None] = lambda line: None,
    model_set: Callable[..., ModelSet] = default_model_set,
    runtime_check=check_runtime,
) -> dict:
    """Measures every file x thread count; returns the report (environment, settings, rows, floor).

    Raises:
        DataError: `data` is given and unusable.
    """
    warn_if_busy(log)
    chosen = choose_models(config.models, config.variants_of, config.data, model_set, log)
    evaluation = load_eval_split(config.data, "val") if config.data else None
    pool = pool_from_split(evaluation, config.pool_size) if evaluation is not None else random_faces(config.pool_size)
    rows = list(chosen.rows)
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        inputs = write_inputs(Path(tmp) / "inputs.npz", pool, evaluation)
        jobs, decided = plan_models(chosen.paths, list(config.threads), config.batch, config.loop, inputs, runtime_check)
        rows += decided
        progress = Progress(len(jobs), log)
        for job in jobs:
            progress.start(f"{job.name} ({job.model})")
            row = runner(job)
            log(_progress(row))
            rows.append(row)
    report = {"command": "models", "environment": environment(), "settings": config.settings(), "rows": rows}
    if config.floor:
        report["compute_floor"] = compute_floor(chosen.paths, rows, config.threads, runner, log)
    return report


def _progress(row: dict) -> str:
    if row["status"] == OK:
        return f"  {row['name']}: p50 {row.get('p50_ms', 0.0):.3f} ms, {row.get('throughput_b1', 0.0):.0f} faces/s"
    return f"  {row['name']}: {row['status']} ({row.get('reason') or row.get('error')})"


@dataclass(frozen=True)
class PeakJob:
    """Measure the CPU's float32 matmul peak at a thread count (in its own process)."""

    threads: int

    @property
    def name(self) -> str:
        return f"peak/t{self.threads}"

    def to_dict(self) -> dict:
        return {"kind": "peak", "threads": self.threads}


def compute_floor(paths: list[Path], rows: list[dict], threads, runner: Runner, log=lambda line: None) -> dict:
    """MACs per face, the measured peak per thread count, the floor, and the best measured
    batch-1 latency at that thread count."""
    reference = reference_model(paths)
    result: dict = {"peak_method": PEAK_METHOD, "per_threads": []}
    if reference is None:
        result["error"] = "no ONNX, TFLite or Keras file to count multiply-adds from"
        return result
    try:
        macs, method = count_macs(reference)
    except Exception as error:  # noqa: BLE001 - the floor is optional; say why it is missing
        result["error"] = f"cannot count multiply-adds of {reference}: {error_text(error)}"
        return result
    result.update({"model": str(reference), "macs": macs, "mac_method": method})
    for count in threads:
        peak_row = runner(PeakJob(int(count)))
        gflops = peak_row.get("gflops") if peak_row.get("status") == OK else None
        ok_rows = [r for r in rows if r.get("status") == OK and r.get("threads") == count and "p50_ms" in r]
        best = min(ok_rows, key=lambda r: r["p50_ms"], default=None)
        best_fp32 = min((r for r in ok_rows if r.get("precision") == "fp32"), key=lambda r: r["p50_ms"], default=None)
        floor = floor_ms(macs, gflops) if gflops else None
        entry = {"threads": int(count), "peak_gflops": gflops, "peak_by_library": peak_row.get("peak_by_library"), "floor_ms": floor}
        for key, row in (("best", best), ("best_fp32", best_fp32)):
            entry[f"{key}_p50_ms"] = row["p50_ms"] if row else None
            entry[f"{key}_row"] = row["name"] if row else None
            # Above 1: that far from the float32 floor. Below 1 happens for int8 and dynamic
            # rows: integer dot-product units (VNNI) do several times the float32 rate.
            entry[f"{key}_over_floor"] = row["p50_ms"] / floor if row and floor else None
        if peak_row.get("status") != OK:
            entry["error"] = peak_row.get("error")
        log(f"  peak at {count} thread(s): {gflops or 0:.1f} GFLOP/s")
        result["per_threads"].append(entry)
    return result
