"""Ending a run on Ctrl-C, SIGTERM and SIGHUP the same way.

`systemctl stop`, `docker stop` and `timeout` send SIGTERM; closing the terminal sends SIGHUP.
Python's default for both is to die on the spot, which loses buffered records and leaves an
MP4 without its index. `stop_signals()` turns each of them into `Stopped`, a KeyboardInterrupt,
so the frame loop ends exactly as it does on Ctrl-C and every output is finalised.

A signal that arrives while outputs are being finalised (inside `finalising()`) is recorded
but not raised, so a second Ctrl-C or a `docker stop` right after one cannot cut a video's
container in half.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(SIGNAL_NAMES.get(signum, f"signal {signum}"))
        self.signum = signum


class StopSignals:
    """What `stop_signals()` yields: the first stop signal received, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number; 0 if none."""
        return 128 + self.signum if self.signum else 0


_state = threading.local()


def _finalising() -> bool:
    return getattr(_state, "depth", 0) > 0


@contextlib.contextmanager
def finalising() -> Iterator[None]:
    """Defers stop signals while outputs are closed: they are recorded, not raised."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def signal_name(error: BaseException) -> str:
    """How a stop is described in the summary: "Ctrl-C", "SIGTERM" or "SIGHUP"."""
    if isinstance(error, Stopped):
        return SIGNAL_NAMES.get(error.signum, f"signal {error.signum}")
    return "Ctrl-C"


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Installs handlers that raise `Stopped` once for SIGINT, SIGTERM and SIGHUP, except for a
    signal that is ignored (SIGHUP under `nohup`), which stays ignored.

    Only the first signal is raised; later ones are ignored, so the cleanup it starts runs to
    the end. The previous handlers are restored on exit. Outside the main thread (where
    Python cannot install handlers) it changes nothing.
    """
    received = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum, frame):
        if received.signum is not None:
            return
        received.signum = signum
        if not _finalising():
            raise Stopped(signum)
        _state.deferred = signum  # for `uninterrupted` to raise once its block is done

    _state.deferred = None
    # A signal ignored when the program started stays ignored: `nohup` ignores SIGHUP so that a
    # run outlives the terminal, and a shell ignores SIGINT in its background jobs.
    previous = {
        signum: signal.signal(signum, handle) for signum in STOP_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN
    }
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state.deferred = None


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Runs a step that must not be torn (one video's files of a job) to its end: a stop signal
    during the block is raised as `Stopped` right after it, so the job stops there."""
    with finalising():
        yield
    signum = getattr(_state, "deferred", None)
    if signum is not None and not _finalising():
        _state.deferred = None
        raise Stopped(signum)
