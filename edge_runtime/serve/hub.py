"""What the pipeline hands the web server: the newest frame and records, never a queue.

The pipeline thread publishes each frame here as references (the frame as read, its faces)
and never waits for a viewer: a viewer that is slow, stalled or gone only misses frames. All
the serving work happens in the server's event loop, and only when someone takes it: a frame is
drawn and JPEG-encoded when a stream viewer or a snapshot asks for it, at most `max_fps` times a
second per source, once for every viewer; a frame's /events record is serialized once, for
every events viewer. So a server nobody watches costs the pipeline a few counters per frame.

Viewers wake at most `VIEWER_WAKE_HZ` times a second and take everything new at once (the
stream its newest frame, /events every frame with faces since their last visit, up to
`EVENTS_KEPT`): a wake-up per frame would cost the pipeline thread the GIL a hundred times a
second for the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

MAX_KEPT_STAGE_TIMES = 10_000  # per stage and source, between two /metrics scrapes
JPEG_QUALITY = 80  # the stream and the snapshot: a third of the bytes of 95, no visible loss at 640x480
VIEWER_WAKE_HZ = 30.0  # how often at most a viewer's handler runs: a camera's frame rate
EVENTS_KEPT = 8  # frames with faces kept per source for /events; a viewer further behind skips to these


@dataclass(frozen=True)
class FrameView:
    """One processed frame as the pipeline publishes it: references, nothing drawn or encoded.

    Attributes:
        frame: the frame as read (the pipeline never changes it afterwards).
        faces: what the detector found in it.
        index: the frame's number in its source; time_s: its time (see `face_record`).
        context: the keys every record of the run carries (source, detector).
        fps: the FPS to draw in the corner, or None.
        overlay: how faces are drawn (see `edge_runtime.outputs.draw.draw_faces`).
        annotated: the frame already drawn, when the run drew it anyway (a window, a video).
    """

    frame: np.ndarray = field(repr=False)
    faces: list = field(repr=False)
    index: int
    time_s: float | None
    context: dict
    fps: float | None = None
    overlay: str = "bars"
    annotated: np.ndarray | None = field(default=None, repr=False)

    def drawn(self) -> np.ndarray:
        """The frame with its faces drawn (a copy: the frame as read stays as it is)."""
        if self.annotated is not None:
            return self.annotated
        from edge_runtime.outputs.draw import draw_faces
        from edge_runtime.preprocess import to_bgr

        return draw_faces(to_bgr(self.frame), self.faces, self.fps, overlay=self.overlay)

    def event(self) -> bytes:
        """The frame's records in the JSONL schema as one Server-Sent Event."""
        from edge_runtime.outputs.writers import face_record

        records = [face_record(self.index, self.time_s, face, self.context) for face in self.faces]
        return f"data: {json.dumps(records, allow_nan=False)}\n\n".encode()


@dataclass
class SourceState:
    """The newest of one source, and its counters (read by /healthz and /metrics).

    The pipeline thread sets the counters and the views; the server's event loop alone makes
    and reads the encoded forms (`jpeg`, `event_bytes`), so they need no lock.
    """

    name: str
    frames: int = 0
    faces: int = 0
    dropped: int = 0
    last_frame_at: float | None = None  # time.monotonic() of the last frame
    fps: float = 0.0
    latency_ms: float = 0.0  # detect + preprocess + infer of a frame, smoothed
    view: FrameView | None = None  # the newest frame
    view_number: int = 0  # counts published frames, so a reader can tell a new one
    events: deque = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))  # (event number, view), newest last
    event_number: int = 0  # counts frames with faces
    jpeg: bytes | None = None
    jpeg_number: int = 0  # the view_number the JPEG shows
    jpeg_at: float = float("-inf")  # when it was encoded
    event_bytes: dict[int, bytes] = field(default_factory=dict)  # event number -> its Server-Sent Event
    stage_seconds: dict[str, list[float]] = field(default_factory=dict)


class Hub:
    """The newest frame and records of each source, shared by the pipeline thread and the
    server's event loop.

    Args:
        max_fps: frames encoded per second per source at most (the stream's rate).
    """

    def __init__(self, max_fps: float = 15.0) -> None:
        self.max_fps = float(max_fps)
        self.sources: dict[str, SourceState] = {}
        self.run_info: dict[str, str] = {}
        self.viewers = 0  # streams open now (counted by the app against --serve-max-clients)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # set once for every waiter, then replaced
        self._wake_pending = False  # a wake-up is on its way to the loop: frames before it need no other
        self.version = 0  # counts published frames of every source, so a waiter can tell it missed one
        self._waiting = 0  # handlers waiting in `wait_for_change` now: only they need waking

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Binds the hub to the server's event loop (called from inside it)."""
        self._loop = loop
        self._changed = asyncio.Event()

    def source(self, name: str) -> SourceState:
        with self._lock:
            return self.sources.setdefault(name, SourceState(name))

    def publish(self, source: str, view: FrameView, timings: dict[str, float], dropped: int = 0) -> None:
        """Called by the pipeline thread for every frame; never blocks on a viewer, and draws,
        encodes and serializes nothing (see the module's doc). `dropped`: the source's frames
        dropped so far for newer ones."""
        now = time.monotonic()
        state = self.source(source)
        with self._lock:
            if state.last_frame_at is not None:
                instant = 1.0 / max(now - state.last_frame_at, 1e-6)
                state.fps = instant if state.fps == 0.0 else 0.9 * state.fps + 0.1 * instant
            state.frames += 1
            state.dropped = dropped
            state.faces += len(view.faces)
            state.last_frame_at = now
            for stage, seconds in timings.items():
                # Bounded: a server nobody scrapes keeps the last minute or so, not the whole run.
                kept = state.stage_seconds.setdefault(stage, [])
                if len(kept) < MAX_KEPT_STAGE_TIMES:
                    kept.append(seconds)
            latency = 1000.0 * sum(timings.values())
            state.latency_ms = latency if state.latency_ms == 0.0 else 0.9 * state.latency_ms + 0.1 * latency
            state.view, state.view_number = view, state.view_number + 1
            if view.faces:
                state.event_number += 1
                state.events.append((state.event_number, view))
            self.version += 1
        self._wake()

    def stream_jpeg(self, state: SourceState) -> tuple[bytes | None, int, float]:
        """For the stream, in the server's loop: (the JPEG of the source's newest frame or None,
        the frame's number, seconds until a newer frame may be encoded (0: none is waiting)).

        The one limit of the stream's rate: a frame is encoded at most `max_fps` times a second
        per source, whatever the number of viewers, who all send the same bytes.
        """
        with self._lock:
            view, number = state.view, state.view_number
        if view is None or number == state.jpeg_number:
            return state.jpeg, state.jpeg_number, 0.0
        wait = state.jpeg_at + 1.0 / self.max_fps - time.monotonic()
        if wait > 0:
            return state.jpeg, state.jpeg_number, wait
        self._encode(state, view, number)
        return state.jpeg, state.jpeg_number, 0.0

    def snapshot_jpeg(self, source: str | None = None) -> bytes | None:
        """The newest frame of a source (the first by default) as a JPEG, or None before the
        first frame (in the server's loop; encoded now unless the stream just did)."""
        with self._lock:
            states = list(self.sources.values()) if source is None else [self.sources.get(source)]
            state = next((s for s in states if s is not None and s.view is not None), None)
            view, number = (state.view, state.view_number) if state is not None else (None, 0)
        if view is None:
            return None
        if number != state.jpeg_number:
            self._encode(state, view, number)
        return state.jpeg

    def events_after(self, state: SourceState, seen: int) -> tuple[bytes, int]:
        """For /events, in the server's loop: the Server-Sent Events of the source's frames with
        faces numbered after `seen` (the last `EVENTS_KEPT` at most), each serialized once for
        every viewer, and the newest number."""
        with self._lock:
            new = [(number, view) for number, view in state.events if number > seen]
            kept = {number for number, _ in state.events}
        for number in [number for number in state.event_bytes if number not in kept]:
            del state.event_bytes[number]
        for number, view in new:
            if number not in state.event_bytes:
                state.event_bytes[number] = view.event()
        return b"".join(state.event_bytes[number] for number, _ in new), (new[-1][0] if new else seen)

    @staticmethod
    def _encode(state: SourceState, view: FrameView, number: int) -> None:
        ok, encoded = cv2.imencode(".jpg", view.drawn(), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            state.jpeg, state.jpeg_number, state.jpeg_at = encoded.tobytes(), number, time.monotonic()

    def take_stage_seconds(self) -> dict[str, dict[str, list[float]]]:
        """Stage times collected since the last call, per source (for the metrics histograms)."""
        with self._lock:
            taken = {name: state.stage_seconds for name, state in self.sources.items()}
            for state in self.sources.values():
                state.stage_seconds = {}
        return taken

    async def wait_for_change(self, seen_version: int, timeout: float) -> None:
        """Returns after at least 1 / VIEWER_WAKE_HZ seconds, once a frame was published after
        `seen_version` (the `version` the caller last read), or after `timeout` seconds."""
        await asyncio.sleep(1.0 / VIEWER_WAKE_HZ)
        self._waiting += 1
        try:
            # A frame published while this handler was not yet counted as waiting woke nobody.
            if self.version == seen_version:
                await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiting -= 1

    def _wake(self) -> None:
        """Wakes the viewers waiting in the server's loop: one cheap call into it, and none at all
        while nobody watches (the pipeline pays nothing for a server without viewers)."""
        loop = self._loop
        if loop is None or self._waiting == 0 or self._wake_pending:
            return
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._release_waiters)
        except RuntimeError:
            pass  # the loop is shutting down: nobody is waiting any more

    def _release_waiters(self) -> None:
        # In the server's loop: everyone waiting on this event goes; later waiters wait on a new one.
        self._wake_pending = False
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
