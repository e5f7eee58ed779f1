"""Bounds on what a user can ask the runtimes for.

An absurd thread count is not harmless: LiteRT crashes the process while it builds its pool
(100000 threads) and ONNX Runtime keeps allocating stacks while ignoring Ctrl-C. Every backend
(through `load_backend`) and every CLI `--threads` option reads the one bound here. Neither
is an absurd Haar scale factor (see HAAR_SCALE_FACTOR): every numeric `edge-run` option and
the API behind it read their bounds here too.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

# Oversubscribing a core a few times over can still pay off (hyper-threads, a runtime's
# pool idling on I/O); beyond that, more threads only cost memory and context switches.
THREADS_PER_CPU = 4


def max_threads() -> int:
    """The largest thread count a backend accepts: a small multiple of the CPU count."""
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def threads_problem(threads: int | None) -> str:
    """Why `threads` is refused, as one line naming the bound; "" when it is acceptable.

    Args:
        threads: a requested thread count; None means "the runtime's default".
    """
    if threads is None:
        return ""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        return f"threads must be a whole number of at least 1, not {threads!r}"
    if threads > max_threads():
        return f"threads {threads} is more than {max_threads()} ({THREADS_PER_CPU} per CPU core, {os.cpu_count() or 1} cores)"
    return ""


@dataclass(frozen=True)
class Bound:
    """The values a numeric setting accepts, low to high inclusive.

    The `edge-run` options take `low` and `high` as their typer `min` and `max`; the Python API
    (`DetectorSettings`, the detectors, `PipelineSettings`) checks the same bound with `problem`,
    so no caller can pass what the CLI refuses.
    """

    low: float
    high: float

    def problem(self, name: str, value: object) -> str:
        """Why `value` is refused, as one line naming `name`; "" when it is in the bound (NaN is not)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"{name} {value!r}: expected a number in [{self.low:g}, {self.high:g}]"
        if not self.low <= value <= self.high:
            return f"{name} {value:g}: expected a number in [{self.low:g}, {self.high:g}]"
        return ""


# OpenCV sizes each Haar pyramid level as round(window * step ** level) in a 32-bit int and
# stops when the window outgrows the image. From a step of 2**31 / 24 (the frontal cascade's
# 24 px window; about 9e7) the rounding overflows to a negative size, the stop never comes and
# detectMultiScale appends levels until memory runs out, inside one C++ call that no signal
# interrupts. A step above 3 already misses every face that falls between two levels.
HAAR_SCALE_FACTOR = Bound(1.01, 3.0)
# A face gathers one hit per pyramid level and neighbouring position: a few dozen at most.
# Beyond that nothing is ever reported (and OpenCV takes the count as a 32-bit int).
HAAR_MIN_NEIGHBORS = Bound(0, 100)
# Pixels of the source: more than the side of any camera frame (8K is 7680 px wide); OpenCV
# takes sizes as 32-bit ints.
MIN_FACE_SIZE = Bound(1, 16384)
# Below 1/20 a 640x480 frame becomes 32x24 px: nothing a detector can find a face in.
DETECT_SCALE = Bound(0.05, 1.0)
# YuNet's least face score: 0 would keep every anchor of the network, 1 none.
SCORE_THRESHOLD = Bound(0.01, 0.99)
# Frames a detection's boxes are reused for: 1000 is half a minute at 30 FPS, long after the
# faces have moved.
DETECT_EVERY = Bound(1, 1000)
# Weight of the past in the per-face moving average: at 1 a face would keep its first label.
SMOOTH = Bound(0.0, 0.99)
MIN_CONFIDENCE = Bound(0.0, 1.0)
# Fraction of the crop's side added on every side: -0.45 leaves a tenth of the face, 2 a crop
# five times the face's side.
CROP_MARGIN = Bound(-0.45, 2.0)
# A billion frames is a year at 30 FPS: anything larger is a typo.
MAX_FRAMES = Bound(1, 10**9)
# OpenCV takes its open and read time-outs as 32-bit milliseconds (24.8 days); a stream that
# sends nothing for an hour is gone, not stalled. Below half a second a busy network's
# ordinary jitter would count as a stall.
STALL_TIMEOUT_S = Bound(0.5, 3600.0)
# About two weeks of attempts at the longest back-off; a source that needs more is better
# restarted by the supervisor that runs the program (systemd's Restart=).
MAX_REOPEN = Bound(0, 100_000)
# Mean change of brightness (0-255) that is a shot cut; 0 turns the test off.
CUT_THRESHOLD = Bound(0.0, 255.0)
# Correlation of a track's crop with its last one; 1 would end every track at every frame.
MIN_LIKENESS = Bound(0.0, 0.99)
# Worker processes of a video job: far above any machine's cores, so a typo cannot start a
# million processes.
JOB_WORKERS = Bound(1, 1024)
# Minutes per chunk of a video job: from under a second (tests, very short clips) to a day.
CHUNK_MINUTES = Bound(0.01, 24 * 60.0)
# Frames a second sent to each viewer of `--serve`'s stream: a browser shows no more than 60.
SERVE_FPS = Bound(1.0, 60.0)
# Streams open at once: each costs a connection and a write per frame.
SERVE_MAX_CLIENTS = Bound(1, 1000)
# Bytes a rotated record file may reach (`--rotate-size`). A file system stores even a one-byte
# file in a 4 KiB block, so smaller files save no disk and only rotate at nearly every frame; a
# tebibyte is more than an edge device's disk holds.
ROTATE_SIZE = Bound(4096, 2**40)
# Seconds between time rotations (`--rotate-every`): rotated names carry whole seconds, and a
# period longer than a year is a typo.
ROTATE_EVERY_S = Bound(1.0, 366 * 24 * 3600.0)
# Rotated files kept per output (`--rotate-keep`): 0 would delete each file as it is rotated,
# records written and gone at once; every rotation lists the folder, which 100,000 files slow.
ROTATE_KEEP = Bound(1, 100_000)
