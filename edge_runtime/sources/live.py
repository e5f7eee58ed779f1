"""Webcams and streams: read on their own threads, watched for stalls, reopened within bounds.

A live source can fail in three ways, and each is bounded by `stall_timeout`:
- opening hangs (a camera that never answers, a server that accepts and stays silent):
  OpenCV's open time-out is set, and the open runs on a worker thread that the caller waits
  for interruptibly, so Ctrl-C acts at once and a hung open is abandoned after the time-out;
- reads fail, or block (OpenCV's read time-out is set; a read that still blocks is abandoned
  with its capture, which its own thread releases when the read returns);
- frames keep coming but the picture never changes (a frozen encoder) or none is decodable.
In each case the source is reopened after an exponential backoff; after `max_reopen` attempts
in a row without a new picture it ends with `ended_reason` set, saying what happened last (a
stall, a failed read, or why the reopen failed: no answer in time, a refused connection...).
From the last new picture to the end takes at most about (max_reopen + 1) x stall_timeout plus
the backoff waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from edge_runtime.limits import STALL_TIMEOUT_S
from edge_runtime.sources.base import FrameSource, SourceError, usable
from edge_runtime.sources.probe import why_not_opened

DEFAULT_MAX_REOPEN = 5
DEFAULT_STALL_TIMEOUT_S = 5.0
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
POLL_S = 0.1  # how often waits check for close() and stalls; also bounds Ctrl-C latency
CLOSE_WAIT_S = 0.5  # how long close() waits for the reader to release its capture
OPEN_GRACE_S = 1.0  # beyond OpenCV's own open time-out, before a hung open is abandoned

CaptureFactory = Callable[[object], object]


def capture_with_timeouts(timeout_s: float) -> CaptureFactory:
    """A factory of cv2.VideoCapture with explicit open and read time-outs.

    The time-outs go in the open parameters (OpenCV 4.6+), which FFmpeg (streams) honours;
    for a camera index they are left out, since a backend may refuse to open with a parameter
    it does not know, and the stall watchdog covers cameras.
    """
    milliseconds = max(1, int(timeout_s * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds]

    def open_capture(target: object):
        if isinstance(target, int):
            return cv2.VideoCapture(target)
        return cv2.VideoCapture(target, cv2.CAP_ANY, params)

    return open_capture


def open_within(factory: CaptureFactory, target: object, timeout_s: float, stop: threading.Event) -> tuple[object, bool]:
    """Opens a capture on a worker thread.

    Returns:
        (capture, timed_out): the capture, or None if it failed, took longer than `timeout_s`,
        or `stop` was set; timed_out is True when the open was still running at the deadline.

    The caller waits in short steps, so a signal (Ctrl-C) interrupts it at once. An abandoned
    open keeps running on its daemon thread; whatever capture it produces is released there.
    """
    lock = threading.Lock()
    state: dict = {"abandoned": False, "capture": None}
    done = threading.Event()

    def work() -> None:
        try:
            capture = factory(target)
        except Exception:  # noqa: BLE001 - a backend that throws is a source that did not open
            capture = None
        if capture is not None and not capture.isOpened():
            capture.release()
            capture = None
        with lock:
            if state["abandoned"]:
                if capture is not None:
                    capture.release()
            else:
                state["capture"] = capture
        done.set()

    threading.Thread(target=work, name=f"open-{target}", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    timed_out = False
    try:
        while not done.wait(POLL_S):
            if stop.is_set():
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
    finally:
        with lock:
            capture = state["capture"]
            state["abandoned"] = capture is None
    return capture, timed_out and capture is None


class _Reader:
    """Reads one capture on its own thread until it fails or is abandoned, then releases it.

    Only this thread ever touches the capture after it starts, so abandoning a read that
    blocks never releases a capture under a read in progress.
    """

    def __init__(self, capture, deliver: Callable[[np.ndarray], None], count_unreadable: Callable[[], None]) -> None:
        self.capture = capture
        self.abandoned = threading.Event()
        self.ended = threading.Event()
        self._deliver = deliver
        self._count_unreadable = count_unreadable
        self.thread = threading.Thread(target=self._run, name="frames", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.abandoned.is_set():
                ok, frame = self.capture.read()
                if self.abandoned.is_set() or not ok:
                    return
                if usable(frame):
                    self._deliver(frame)
                else:
                    self._count_unreadable()
        except Exception:  # noqa: BLE001 - a backend that throws mid-stream is a failed read
            return
        finally:
            self.capture.release()
            self.ended.set()


class LiveSource(FrameSource):
    """A webcam or stream, read on a background thread; iteration yields the newest frame.

    Args:
        target: camera index or stream URL.
        capture_factory: builds the capture (default: cv2.VideoCapture with time-outs; tests
            pass a fake).
        max_reopen: reopen attempts in a row without a new picture before the source ends.
        backoff_s: first wait before reopening; it doubles each attempt, up to 8 s.
        stall_timeout: seconds without a new picture (no frame, failed reads, the same picture
            again) before the source is reopened; also the open and read time-out.
        sleep: the waiting function (default: a wait that close() interrupts; tests pass a fake).

    Raises:
        SourceError: when the camera or stream cannot be opened at all.
    """

    is_live = True

    def __init__(
        self,
        target: int | str,
        capture_factory: CaptureFactory | None = None,
        max_reopen: int = DEFAULT_MAX_REOPEN,
        backoff_s: float = DEFAULT_BACKOFF_S,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        # OpenCV takes the time-out in 32-bit milliseconds: more wraps round to a time-out of
        # nothing, and an infinite one fails the conversion.
        if isinstance(stall_timeout, bool) or not 0 < stall_timeout <= STALL_TIMEOUT_S.high:
            raise ValueError(f"stall_timeout {stall_timeout!r}: expected seconds in (0, {STALL_TIMEOUT_S.high:g}]")
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.target = target
        self.describe = f"camera index {target}" if isinstance(target, int) else f"stream {target}"
        # Only a real OpenCV capture failed for a reason a connection can find out.
        self._probe = capture_factory is None and isinstance(target, str)
        self._factory = capture_factory or capture_with_timeouts(stall_timeout)
        self.max_reopen = max_reopen
        self.backoff_s = backoff_s
        self.stall_timeout = stall_timeout
        capture, problem = self._open()
        if capture is None:
            raise SourceError(
                f"cannot open {self.describe}: {problem}; check that it is connected, "
                "not used by another program, and that the index or URL is right"
            )
        self._trouble = ""  # what ended the last capture, for the give-up message
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        super().__init__(str(target), fps if fps > 0 else None)
        self._frame: np.ndarray | None = None
        self._last_picture: np.ndarray | None = None
        self._last_new_picture = self._attempt_started = time.monotonic()
        self._fresh = False
        self._done = False
        self._condition = threading.Condition()
        self._reader = _Reader(capture, self._deliver, self._count_unreadable)
        self._thread = threading.Thread(target=self._supervise, name=f"watch-{target}", daemon=True)
        self._thread.start()

    def _open(self) -> tuple[object, str]:
        """A new capture and "", or None and what happened: "no answer within 5 s" when the
        open was still running at the time-out, "connection refused by ..." (what a probe
        finds, see `stream_probe`) when it failed before."""
        started = time.monotonic()
        capture, timed_out = open_within(self._factory, self.target, self.stall_timeout + OPEN_GRACE_S, self._stop)
        seconds = time.monotonic() - started
        if capture is not None:
            return capture, ""
        # A failure that took the whole time-out is OpenCV's own time-out (set to the same).
        if timed_out or seconds >= self.stall_timeout:
            return None, f"no answer within {self.stall_timeout:g} s"
        reason = (why_not_opened(str(self.target)) if self._probe else "") or "the open failed"
        return None, f"{reason} after {seconds:.1f} s"

    def _count_unreadable(self) -> None:
        self.unreadable += 1

    def _deliver(self, frame: np.ndarray) -> None:
        with self._condition:
            previous = self._last_picture
            # The same picture again is delivered (the loop stays live) but is no progress.
            if previous is None or previous.shape != frame.shape or not np.array_equal(previous, frame):
                self._last_new_picture = time.monotonic()
            self._last_picture = frame
            if self._fresh:
                self.dropped += 1
            self._frame, self._fresh = frame, True
            self._condition.notify_all()

    def _stalled(self, since: float) -> bool:
        with self._condition:
            return time.monotonic() - max(since, self._last_new_picture) > self.stall_timeout

    def _supervise(self) -> None:
        # Attempts count from the last new picture, so a source that reopens fine but never
        # delivers one still ends after `max_reopen` attempts.
        attempts = 0
        try:
            while not self._stop.is_set():
                reader = self._reader
                while not reader.ended.wait(POLL_S):
                    if self._stop.is_set() or self._stalled(self._attempt_started):
                        break
                if reader.ended.is_set():
                    self._trouble = "stopped delivering: a read failed"
                else:
                    self._trouble = f"stalled: no new frame for {self.stall_timeout:g} s"
                reader.abandoned.set()
                if self._stop.is_set():
                    return
                if self._last_new_picture > self._attempt_started:
                    attempts = 0
                attempts = self._reopen(attempts)
                if attempts is None:
                    if not self._stop.is_set():
                        self.ended_reason = f"{self.describe} {self._trouble}; gave up after {self.max_reopen} reopen attempts"
                    return
        finally:
            self._reader.abandoned.set()
            with self._condition:
                self._done = True
                self._condition.notify_all()

    def _reopen(self, attempt: int) -> int | None:
        """Waits (doubling each attempt) and reopens the source.

        Returns the attempts used since the last new picture, or None when stopped or when
        `max_reopen` attempts have failed.
        """
        while attempt < self.max_reopen:
            if self._stop.is_set():
                return None
            # The exponent is capped: 2 ** attempt alone overflows a float past 1023 attempts.
            self._sleep(min(MAX_BACKOFF_S, self.backoff_s * 2 ** min(attempt, 64)))
            attempt += 1
            # The time spent opening counts towards the next stall.
            started = time.monotonic()
            capture, problem = self._open()
            if capture is None:
                self._trouble = f"could not be reopened: {problem}"
            else:
                self.reopens += 1
                self._attempt_started = started
                self._reader = _Reader(capture, self._deliver, self._count_unreadable)
                return attempt
        return None

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._condition:
                while not self._fresh and not self._done:
                    self._condition.wait(timeout=POLL_S)
                if not self._fresh:
                    return
                frame, self._fresh = self._frame, False
            self.frames_read += 1
            yield frame

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._reader.abandoned.set()
        # A reader whose read returns releases the device now, so it is free for the next
        # program; one stuck in a read is left to release it when the read returns.
        self._reader.ended.wait(CLOSE_WAIT_S)
