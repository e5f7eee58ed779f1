"""Progress of a long benchmark on stderr: "configuration n of N" with the time elapsed, and a
warning at the start when other work is already loading the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from benchmarks.environment import usable_cores

# Above this load average per usable core, other processes take a noticeable share of the cores
# the benchmark times (every figure comes out slower and noisier).
BUSY_LOAD_PER_CORE = 0.5


def busy_warning(cores: int | None = None, load: float | None = None) -> str | None:
    """A one-line warning when the 1-minute load average says the machine is busy; else None.

    Args:
        cores: usable cores (default: this process's).
        load: the 1-minute load average (default: the system's; None where it has none).
    """
    cores = cores or usable_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    if load <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (
        f"warning: the machine is busy (load average {load:.2f} on {cores} usable cores); "
        "timings will be slower and noisier than on a quiet machine"
    )


def warn_if_busy(log: Callable[[str], None]) -> None:
    """Logs `busy_warning()` when there is one: the README asks for a quiet machine."""
    warning = busy_warning()
    if warning:
        log(warning)


def format_elapsed(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss`) for a duration in seconds."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts configurations as they start and says how long the whole run has taken so far."""

    def __init__(self, total: int, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.log = log
        self.clock = clock
        self.started = clock()
        self.done = 0

    def start(self, what: str) -> None:
        """Logs `configuration n of N (elapsed m:ss): what` for the next configuration."""
        self.done += 1
        elapsed = format_elapsed(self.clock() - self.started)
        self.log(f"configuration {self.done} of {self.total} (elapsed {elapsed}): {what}")
