"""What the pipeline hands the web server: the newest frame and records, never a queue.

The pipeline thread publishes each frame here and never waits for a viewer: a viewer that is
slow, stalled or gone only misses frames. Viewers wait on an asyncio condition in the server's
event loop and always read the newest frame (one slot per source), so what a viewer costs the
pipeline is one JPEG encoding per frame while anyone watches, at most `max_fps` a second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

MAX_KEPT_STAGE_TIMES = 10_000  # per stage and source, between two /metrics scrapes
JPEG_QUALITY = 80  # the stream and the snapshot: a third of the bytes of 95, no visible loss at 640x480


@dataclass
class SourceState:
    """The newest of one source, and its counters (read by /healthz and /metrics)."""

    name: str
    frames: int = 0
    faces: int = 0
    dropped: int = 0
    last_frame_at: float | None = None  # time.monotonic() of the last frame
    fps: float = 0.0
    latency_ms: float = 0.0  # detect + preprocess + infer of a frame, smoothed
    latest: np.ndarray | None = None  # the newest annotated frame, for a snapshot
    jpeg: bytes | None = None
    jpeg_at: float = 0.0
    frame_number: int = 0  # counts published JPEGs, so a viewer can tell a new one
    event: dict | None = None
    event_number: int = 0
    stage_seconds: dict[str, list[float]] = field(default_factory=dict)


class Hub:
    """The newest annotated frame and records of each source, shared by the pipeline thread and
    the server's event loop.

    Args:
        max_fps: JPEGs encoded per second per source at most (the stream's rate).
    """

    def __init__(self, max_fps: float = 15.0) -> None:
        self.max_fps = float(max_fps)
        self.sources: dict[str, SourceState] = {}
        self.run_info: dict[str, str] = {}
        self.viewers = 0  # streams open now; no JPEG is encoded while it is 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # set once for every waiter, then replaced

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Binds the hub to the server's event loop (called from inside it)."""
        self._loop = loop
        self._changed = asyncio.Event()

    def source(self, name: str) -> SourceState:
        with self._lock:
            return self.sources.setdefault(name, SourceState(name))

    def publish(self, source: str, annotated: np.ndarray | None, event: dict | None, faces: int,
                timings: dict[str, float]) -> None:
        """Called by the pipeline thread for every frame; never blocks on a viewer."""
        now = time.monotonic()
        state = self.source(source)
        with self._lock:
            if state.last_frame_at is not None:
                instant = 1.0 / max(now - state.last_frame_at, 1e-6)
                state.fps = instant if state.fps == 0.0 else 0.9 * state.fps + 0.1 * instant
            state.frames += 1
            state.faces += faces
            state.last_frame_at = now
            for stage, seconds in timings.items():
                # Bounded: a server nobody scrapes keeps the last minute or so, not the whole run.
                kept = state.stage_seconds.setdefault(stage, [])
                if len(kept) < MAX_KEPT_STAGE_TIMES:
                    kept.append(seconds)
            latency = 1000.0 * sum(timings.values())
            state.latency_ms = latency if state.latency_ms == 0.0 else 0.9 * state.latency_ms + 0.1 * latency
            wants_jpeg = annotated is not None and self.viewers > 0 and now - state.jpeg_at >= 1.0 / self.max_fps
        if annotated is not None:
            state.latest = annotated  # a new array every frame: a reference, not a copy
        if wants_jpeg:
            ok, encoded = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                with self._lock:
                    state.jpeg, state.jpeg_at, state.frame_number = encoded.tobytes(), now, state.frame_number + 1
        if event is not None:
            with self._lock:
                state.event, state.event_number = event, state.event_number + 1
        self._wake()

    def snapshot_jpeg(self, source: str | None = None) -> bytes | None:
        """The newest annotated frame of a source (the first by default) as a JPEG, or None
        before the first frame."""
        with self._lock:
            states = list(self.sources.values()) if source is None else [self.sources.get(source)]
        latest = next((s.latest for s in states if s is not None and s.latest is not None), None)
        if latest is None:
            return None
        ok, encoded = cv2.imencode(".jpg", latest, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return encoded.tobytes() if ok else None

    def take_stage_seconds(self) -> dict[str, dict[str, list[float]]]:
        """Stage times collected since the last call, per source (for the metrics histograms)."""
        with self._lock:
            taken = {name: state.stage_seconds for name, state in self.sources.items()}
            for state in self.sources.values():
                state.stage_seconds = {}
        return taken

    async def wait_for_change(self, timeout: float) -> None:
        """Returns when a frame was published, or after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _wake(self) -> None:
        """Wakes the viewers waiting in the server's loop: one cheap call into it, and none at all
        while nobody watches (the pipeline pays nothing for a server without viewers)."""
        loop = self._loop
        if loop is None or self.viewers == 0:
            return
        try:
            loop.call_soon_threadsafe(self._release_waiters)
        except RuntimeError:
            pass  # the loop is shutting down: nobody is waiting any more

    def _release_waiters(self) -> None:
        # In the server's loop: everyone waiting on this event goes; later waiters wait on a new one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
