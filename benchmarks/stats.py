"""Timing loops and their statistics.

Steady-state latency is measured the way LiteRT's benchmark tool does it: warm-up runs first
(discarded), then at least `min_runs` runs *and* at least `min_time` seconds, so a fast model
gets thousands of samples and a slow one still gets enough. The clock is injectable, so the
loop and the statistics are tested with a fake clock and no real timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Clock = Callable[[], float]

# Guards a loop whose step takes no time (a fake, or a broken clock) from spinning forever.
MAX_RUNS = 1_000_000


@dataclass(frozen=True)
class LoopSettings:
    """How long a timed loop runs.

    Attributes:
        warmup: runs before timing starts, discarded (lazy allocation, caches, JIT).
        min_runs: at least this many timed runs.
        min_time: and at least this many seconds of timed runs.
        max_runs: stop here even if `min_time` is not reached.
    """

    warmup: int = 10
    min_runs: int = 100
    min_time: float = 2.0
    max_runs: int = MAX_RUNS

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_runs < 1 or self.min_time < 0 or self.max_runs < self.min_runs:
            raise ValueError(
                f"bad loop settings (warmup={self.warmup}, min_runs={self.min_runs}, min_time={self.min_time}, "
                f"max_runs={self.max_runs}); expected warmup >= 0, min_runs >= 1, min_time >= 0, max_runs >= min_runs"
            )


@dataclass(frozen=True)
class TimedRuns:
    """Durations (seconds) of the timed runs and the wall time the loop took."""

    durations: tuple[float, ...]
    elapsed: float

    @property
    def runs(self) -> int:
        return len(self.durations)


def timed_runs(step: Callable[[int], object], settings: LoopSettings, clock: Clock = time.perf_counter) -> TimedRuns:
    """Calls `step(i)` for warm-up, then times it until both minimums are met.

    Args:
        step: one unit of work; gets the run index (callers use it to rotate inputs).
        settings: warm-up and minimum runs/time.
        clock: seconds, monotonic (`time.perf_counter` unless a test passes a fake).

    Returns:
        The duration of every timed run and the loop's total elapsed time.
    """
    for index in range(settings.warmup):
        step(index)
    durations: list[float] = []
    start = clock()
    index = settings.warmup
    while True:
        before = clock()
        step(index)
        after = clock()
        durations.append(after - before)
        index += 1
        done_runs = len(durations) >= settings.min_runs
        if (done_runs and after - start >= settings.min_time) or len(durations) >= settings.max_runs:
            return TimedRuns(tuple(durations), after - start)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if len(values) == 0:
        raise ValueError("percentile of no values")
    return float(np.percentile(np.asarray(values, np.float64), q))


def latency_summary(durations: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, min, mean and standard deviation in milliseconds, and the run count."""
    ms = np.asarray(durations, np.float64) * 1000.0
    if ms.size == 0:
        raise ValueError("no timed runs to summarise")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "min_ms": float(ms.min()),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "runs": int(ms.size),
    }


def stage_summary(durations: Sequence[float]) -> dict[str, float]:
    """Mean, p50 and p95 of one pipeline stage, in milliseconds."""
    ms = np.asarray(durations, np.float64) * 1000.0
    if ms.size == 0:
        return {"mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0}
    p50, p95 = np.percentile(ms, [50, 95])
    return {"mean_ms": float(ms.mean()), "p50_ms": float(p50), "p95_ms": float(p95)}


def throughput(items: int, seconds: float) -> float:
    """Items per second (0 when no time passed, e.g. under a fake clock)."""
    return float(items / seconds) if seconds > 0 else 0.0
