"""The timing loop and its statistics, driven by a fake clock (no real timing)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.stats import LoopSettings, latency_summary, percentile, stage_summary, throughput, timed_runs
from tests.test_bench_fakes import FakeClock


def costly_step(clock: FakeClock, cost: float, calls: list):
    def step(index: int) -> None:
        calls.append(index)
        clock.advance(cost)

    return step


def test_warmup_runs_first_and_is_not_timed():
    clock, calls = FakeClock(), []
    runs = timed_runs(costly_step(clock, 0.01, calls), LoopSettings(warmup=4, min_runs=3, min_time=0.0), clock)
    assert calls == [0, 1, 2, 3, 4, 5, 6]  # indices keep counting, so inputs rotate across warm-up too
    assert runs.runs == 3
    assert runs.durations == pytest.approx((0.01, 0.01, 0.01))


def test_min_runs_dominates_for_a_slow_step():
    clock, calls = FakeClock(), []
    runs = timed_runs(costly_step(clock, 1.0, calls), LoopSettings(warmup=0, min_runs=5, min_time=2.0), clock)
    assert runs.runs == 5
    assert runs.elapsed == pytest.approx(5.0)


def test_min_time_dominates_for_a_fast_step():
    clock, calls = FakeClock(), []
    runs = timed_runs(costly_step(clock, 0.001, calls), LoopSettings(warmup=0, min_runs=5, min_time=0.1), clock)
    assert runs.runs == 100
    assert runs.elapsed >= 0.1


def test_max_runs_stops_a_step_that_takes_no_time():
    clock = FakeClock()
    runs = timed_runs(lambda i: None, LoopSettings(warmup=0, min_runs=2, min_time=1.0, max_runs=50), clock)
    assert runs.runs == 50


@pytest.mark.parametrize("bad", [dict(min_runs=0), dict(warmup=-1), dict(min_time=-1.0), dict(min_runs=10, max_runs=5)])
def test_bad_loop_settings_are_refused(bad):
    with pytest.raises(ValueError, match="bad loop settings"):
        LoopSettings(**bad)


def test_latency_summary_in_milliseconds():
    durations = [i / 1000.0 for i in range(1, 101)]  # 1..100 ms
    summary = latency_summary(durations)
    assert summary["runs"] == 100
    assert summary["min_ms"] == pytest.approx(1.0)
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p90_ms"] == pytest.approx(90.1)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["mean_ms"] == pytest.approx(50.5)
    assert summary["std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_latency_summary_of_one_run_has_zero_spread():
    summary = latency_summary([0.002])
    assert summary["p50_ms"] == summary["p99_ms"] == summary["min_ms"] == pytest.approx(2.0)
    assert summary["std_ms"] == 0.0


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError):
        latency_summary([])
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)


def test_stage_summary_and_throughput():
    assert stage_summary([0.001, 0.003]) == pytest.approx({"mean_ms": 2.0, "p50_ms": 2.0, "p95_ms": 2.9})
    assert stage_summary([]) == {"mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0}
    assert throughput(10, 2.0) == 5.0
    assert throughput(10, 0.0) == 0.0
