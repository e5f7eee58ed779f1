"""What every frame source is: an iterable of frames with counters (see `edge_runtime.sources.open_source`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class SourceError(RuntimeError):
    """A source cannot be opened; the message names what was tried."""


def usable(frame: object) -> bool:
    """True for a decoded picture: a non-empty 2-D (gray) or 3-D (colour) array."""
    return isinstance(frame, np.ndarray) and frame.size > 0 and frame.ndim in (2, 3)


class FrameSource:
    """An iterable of frames (numpy arrays, BGR or gray) with counters.

    Attributes:
        name: what was opened (path, index or URL).
        is_live: True for cameras and streams (frames may be dropped to stay current).
        fps: frames per second when the source says so, else None.
        frames_read: frames delivered to the loop.
        unreadable: frames that could not be decoded and were skipped.
        dropped: live frames replaced by a newer one before the loop took them.
        reopens: times a live source was reopened after it stopped delivering.
        ended_reason: why a source gave up (a stalled stream), as one line; "" when it simply
            ended.
    """

    is_live = False
    is_photo = False

    def __init__(self, name: str, fps: float | None = None) -> None:
        self.name = name
        self.fps = fps
        self.frames_read = 0
        self.unreadable = 0
        self.dropped = 0
        self.reopens = 0
        self.ended_reason = ""

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameIterable(FrameSource):
    """A caller's own frames (any iterable of numpy images, such as a picamera2 capture loop)
    as a live source: no frame rate of its own, so its clock is the time since the first frame.
    The iterable stays the caller's to close."""

    is_live = True

    def __init__(self, frames, name: str = "frames") -> None:
        super().__init__(name)
        self.frames = frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            self.frames_read += 1
            yield frame
