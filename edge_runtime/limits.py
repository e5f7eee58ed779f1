"""Bounds on what a user can ask the runtimes for.

An absurd thread count is not harmless: LiteRT crashes the process while it builds its pool
(100000 threads) and ONNX Runtime keeps allocating stacks while ignoring Ctrl-C. Every backend
(through `load_backend`) and every CLI `--threads` option reads the one bound here.
"""

from __future__ import annotations

import os

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
