"""Long-run check of `edge-run`: resident memory and speed over many minutes.

Starts `edge-run` with the arguments after `--` (which must include `--jsonl PATH`), samples the
process's resident memory (VmRSS in /proc/PID/status) and the last frame index written to the
JSONL at a fixed interval, stops it with SIGTERM after the given time, and reports:
- the RSS slope after the warm-up, by least squares, in MB per hour;
- frames per second in one-minute windows after the warm-up, and their largest deviation from
  the median window, in percent; the same per second of the process's own CPU time, which
  other programs on a busy machine do not disturb (a leak or a growing structure would still
  show in it as a slowdown).

    nice -n 10 python tools/long_run.py --minutes 16 --warmup-minutes 3 --report long_run.json -- \
        --source demo --loop --no-display --detector haar --threads 1 \
        --jsonl run.jsonl --csv run.csv --save-video run.mp4

Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

WINDOW_S = 60.0


def resident_mb(pid: int) -> float | None:
    """The process's resident set size in MB (VmRSS), or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used (from /proc/PID/stat), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def last_frame(jsonl: Path) -> int | None:
    """The frame index of the last complete record in a JSONL that is still being written."""
    try:
        with open(jsonl, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 65536))
            lines = handle.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(lines[:-1]):  # the piece after the last newline may be incomplete
        try:
            return int(json.loads(line)["frame"])
        except (ValueError, KeyError):
            continue
    return None


def slope_per_hour(times: list[float], values: list[float]) -> float:
    """Least-squares slope of values over times (seconds), per hour."""
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values))
    variance = sum((t - mean_t) ** 2 for t in times)
    return 3600.0 * covariance / variance if variance else 0.0


def window_fps(samples: list[dict], start_s: float, clock: str = "t") -> list[float]:
    """Frames per second of `clock` ("t": wall time, "cpu_s": CPU time) in consecutive
    WINDOW_S windows of wall time from `start_s`."""
    rates = []
    points = [s for s in samples if s["t"] >= start_s and s["frame"] is not None and s.get(clock) is not None]
    window_start = points[0] if points else None
    for point in points[1:]:
        if point["t"] - window_start["t"] >= WINDOW_S and point[clock] > window_start[clock]:
            rates.append((point["frame"] - window_start["frame"]) / (point[clock] - window_start[clock]))
            window_start = point
    return rates


def steadiness(rates: list[float]) -> dict:
    """The median window and the largest deviation from it, in percent."""
    median = statistics.median(rates) if rates else 0.0
    deviation = round(100 * max(abs(r - median) for r in rates) / median, 2) if median else None
    return {"windows": [round(r, 2) for r in rates], "median": round(median, 2), "max_deviation_pct": deviation}


def summarise(samples: list[dict], warmup_s: float) -> dict:
    after = [s for s in samples if s["t"] >= warmup_s and s["rss_mb"] is not None]
    return {
        "samples": len(samples),
        "seconds": samples[-1]["t"] if samples else 0.0,
        "warmup_s": warmup_s,
        "rss_mb_first_after_warmup": after[0]["rss_mb"] if after else None,
        "rss_mb_last": after[-1]["rss_mb"] if after else None,
        "rss_mb_max": max(s["rss_mb"] for s in after) if after else None,
        "rss_slope_mb_per_hour": slope_per_hour([s["t"] for s in after], [s["rss_mb"] for s in after]) if len(after) > 2 else None,
        "fps": steadiness(window_fps(samples, warmup_s)),
        "fps_per_cpu_second": steadiness(window_fps(samples, warmup_s, "cpu_s")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="How long to run edge-run.")
    parser.add_argument("--warmup-minutes", type=float, default=2.0, help="Left out of the slope and the FPS windows.")
    parser.add_argument("--interval", type=float, default=5.0, help="Seconds between samples.")
    parser.add_argument("--report", type=Path, required=True, help="Where the JSON report goes.")
    parser.add_argument("edge_run_args", nargs=argparse.REMAINDER, help="-- then edge-run's arguments (with --jsonl).")
    args = parser.parse_args()
    run_args = [a for a in args.edge_run_args if a != "--"]
    if "--jsonl" not in run_args:
        parser.error("edge-run's arguments must include --jsonl PATH (its frame indices measure the speed)")
    jsonl = Path(run_args[run_args.index("--jsonl") + 1])

    command = [sys.executable, "-m", "edge_runtime.cli", *run_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    samples = []
    try:
        while time.monotonic() - started < 60 * args.minutes and process.poll() is None:
            samples.append({
                "t": round(time.monotonic() - started, 2),
                "rss_mb": resident_mb(process.pid),
                "cpu_s": cpu_seconds(process.pid),
                "frame": last_frame(jsonl),
            })
            time.sleep(args.interval)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    report = {
        "command": ["edge-run", *run_args],
        "exit_status": process.returncode,
        "summary": output.strip().splitlines()[-8:],
        **summarise(samples, 60 * args.warmup_minutes),
        "trace": samples,
    }
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    for key in ("exit_status", "seconds", "rss_mb_first_after_warmup", "rss_mb_last", "rss_slope_mb_per_hour"):
        print(f"{key}: {report[key]}")
    for key in ("fps", "fps_per_cpu_second"):
        print(f"{key}: median {report[key]['median']}, largest deviation {report[key]['max_deviation_pct']}%")
    return 0 if process.returncode == 128 + signal.SIGTERM else 1


if __name__ == "__main__":
    sys.exit(main())
