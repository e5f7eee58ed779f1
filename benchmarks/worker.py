"""Runs one benchmark configuration in a fresh Python process.

A fresh process per configuration makes its peak resident memory mean something, keeps one
runtime's thread pools (and TensorFlow, once imported) out of the next configuration, and
turns a crash of a native runtime into a `failed` row instead of the end of the benchmark.

The parent writes the job as JSON to the child's stdin; the child prints its row as one JSON
line prefixed with RESULT_MARKER (libraries may print to stdout too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.rows import failed_row

RESULT_MARKER = "EDGE_BENCH_ROW "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")

Runner = Callable[[object], dict]


def run_job(data: dict) -> dict:
    """Dispatches a job dict (see each job class's `to_dict`) to its measurement."""
    kind = data.get("kind")
    if kind == "model":
        from benchmarks.model_bench import ModelJob, measure_model

        return measure_model(ModelJob.from_dict(data))
    if kind == "pipeline":
        from benchmarks.pipeline_bench import PipelineJob, measure_pipeline

        return measure_pipeline(PipelineJob.from_dict(data))
    if kind == "peak":
        from benchmarks.compute import measure_peak

        return {"name": f"peak/t{data['threads']}", "status": "ok", "threads": data["threads"], **measure_peak(int(data["threads"]))}
    raise ValueError(f"unknown job kind {kind!r}; expected model, pipeline or peak")


def in_process(job) -> dict:
    """Runs a job in this process (tests, and `--no-subprocess` debugging)."""
    return run_job(job.to_dict())


@dataclass(frozen=True)
class SubprocessRunner:
    """Runs each job in `python -P -m benchmarks.worker`, with the job's thread count in the
    environment so BLAS/OpenMP pools inside the runtimes match it.

    Attributes:
        timeout: seconds before a configuration is stopped and reported as failed.
    """

    timeout: float = 900.0
    python: str = sys.executable

    def __call__(self, job) -> dict:
        data = job.to_dict()
        env = dict(os.environ)
        threads = str(data.get("threads") or 1)
        env.update({name: threads for name in THREAD_VARIABLES})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONSAFEPATH"] = "1"  # and for any Python the child starts in turn (3.11+)
        name = getattr(job, "name", data.get("kind", "job"))
        try:
            done = subprocess.run(
                worker_command(self.python),
                input=json.dumps(data),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return failed_row(name, f"timed out after {self.timeout:.0f} s", **_where(data))
        return parse_child_output(name, done.returncode, done.stdout, done.stderr, _where(data))


def worker_command(python: str = sys.executable) -> list[str]:
    """The command line of a benchmark child process, isolated from the current folder.

    `python -m` puts the current folder first on `sys.path`, so a `benchmarks/` folder or a
    `json.py` in the folder edge-bench is run from would be imported instead of the installed
    code. `-P` (Python 3.11+) drops that entry and keeps PYTHONPATH and the user's
    site-packages, where the parent found the project; Python 3.10 has only `-I`, which drops
    them too.
    """
    safe_path = "-P" if sys.version_info >= (3, 11) else "-I"
    return [python, safe_path, "-m", "benchmarks.worker"]


def _where(data: dict) -> dict:
    return {k: data[k] for k in ("model", "format", "backend", "threads") if k in data and data[k] is not None}


def parse_child_output(name: str, returncode: int, stdout: str, stderr: str, where: dict | None = None) -> dict:
    """The row a child printed, or a `failed` row saying how the child died."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                return json.loads(line[len(RESULT_MARKER) :])
            except json.JSONDecodeError:
                break
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    if returncode < 0:
        why = f"the benchmark process was killed by signal {-returncode}"
    else:
        why = f"the benchmark process exited with code {returncode}"
    return failed_row(name, f"{why}: {last[:300]}" if last else why, **(where or {}))


def main() -> int:
    data = json.loads(sys.stdin.read())
    try:
        row = run_job(data)
    except Exception as error:  # noqa: BLE001 - reported as the row, never a traceback
        from benchmarks.rows import error_text

        row = failed_row(data.get("kind", "job"), error_text(error))
    sys.stdout.write(RESULT_MARKER + json.dumps(row) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
