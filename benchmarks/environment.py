"""What machine and software a benchmark ran on, for the JSON report.

Package versions come from installed distributions' metadata (`importlib.metadata`), so finding
TensorFlow's version never imports TensorFlow.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

# Distribution names whose versions matter to the numbers; only installed ones are reported.
DISTRIBUTIONS = (
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "onnxruntime",
    "ai-edge-litert",
    "tflite-runtime",
    "tensorflow",
    "keras",
    "edge-emotion",
)

# CPU flags that decide which kernels the runtimes pick.
INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                     "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "fphp", "i8mm", "sve")


def package_versions(names: tuple[str, ...] = DISTRIBUTIONS) -> dict[str, str]:
    """Versions of the installed distributions among `names`."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_info(cpuinfo_path: str = "/proc/cpuinfo") -> dict:
    """CPU model name and the flags among INTERESTING_FLAGS (Linux); the platform's answer elsewhere."""
    model, flags = platform.processor() or platform.machine(), set()
    path = Path(cpuinfo_path)
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    return {"model": model, "flags": [flag for flag in INTERESTING_FLAGS if flag in flags]}


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def environment() -> dict:
    """The environment block of every JSON report."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu_info(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        # A busy machine makes every timing pessimistic: keep the evidence with the numbers.
        "load_average": load,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
    }
