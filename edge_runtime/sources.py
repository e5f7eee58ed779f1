"""Where frames come from: a webcam, a stream URL, a video file, an image, a folder of images,
or the bundled demo clip.

Files are read frame by frame and none is skipped, so results are reproducible. Live sources
(webcam, rtsp/http) are read on their own thread and the loop always takes the newest frame:
a camera does not wait for a slow consumer, and a queue of stale frames would only add lag.
A live source that stops delivering is reopened with exponential backoff, a bounded number of
times. Frames that cannot be decoded are counted and skipped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "demo.mp4"

DEFAULT_MAX_REOPEN = 5
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
# A file whose decoder fails this many frames in a row is treated as ended.
MAX_BAD_FILE_FRAMES = 50

CaptureFactory = Callable[[object], object]


class SourceError(RuntimeError):
    """A source cannot be opened; the message names what was tried."""


def demo_clip_path() -> Path:
    """The demo clip bundled with the package (FER-2013 training faces in 640x480 frames)."""
    return DEMO_CLIP


def _default_capture(target: object):
    return cv2.VideoCapture(target)


def _usable(frame: object) -> bool:
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
    """

    is_live = False

    def __init__(self, name: str, fps: float | None = None) -> None:
        self.name = name
        self.fps = fps
        self.frames_read = 0
        self.unreadable = 0
        self.dropped = 0
        self.reopens = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileSource(FrameSource):
    """Every frame of a video file, in order."""

    def __init__(self, path: Path, capture_factory: CaptureFactory = _default_capture) -> None:
        self.capture = capture_factory(str(path))
        if not self.capture.isOpened():
            self.capture.release()
            raise SourceError(f"{path}: cannot be opened as a video (unknown format or codec)")
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        super().__init__(str(path), fps if fps > 0 else None)
        self.frame_count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def __iter__(self) -> Iterator[np.ndarray]:
        failures_in_a_row = 0
        position = 0
        while self.capture is not None:
            ok, frame = self.capture.read()
            if ok and _usable(frame):
                failures_in_a_row = 0
                position += 1
                self.frames_read += 1
                yield frame
                continue
            # A failed read is the end of the file, unless the container says frames remain:
            # then it is a damaged frame, counted and skipped.
            if position >= self.frame_count - 1 or failures_in_a_row >= MAX_BAD_FILE_FRAMES:
                return
            failures_in_a_row += 1
            position += 1
            self.unreadable += 1

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class ImageSource(FrameSource):
    """An image file, or every image in a folder in name order."""

    def __init__(self, paths: list[Path], name: str) -> None:
        super().__init__(name, None)
        self.paths = paths

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if not _usable(frame):
                self.unreadable += 1
                continue
            self.frames_read += 1
            yield frame


class LiveSource(FrameSource):
    """A webcam or stream, read on a background thread; iteration yields the newest frame.

    Args:
        target: camera index or stream URL.
        capture_factory: builds the capture (cv2.VideoCapture; tests pass a fake).
        max_reopen: reopen attempts in a row before the source ends.
        backoff_s: first wait before reopening; it doubles each attempt, up to 8 s.
        sleep: the waiting function (default: an interruptible wait; tests pass a fake).

    Raises:
        SourceError: when the camera or stream cannot be opened at all.
    """

    is_live = True

    def __init__(
        self,
        target: int | str,
        capture_factory: CaptureFactory = _default_capture,
        max_reopen: int = DEFAULT_MAX_REOPEN,
        backoff_s: float = DEFAULT_BACKOFF_S,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self._stop = threading.Event()
        # Waiting on the stop event lets close() interrupt a backoff at once.
        self._sleep = sleep or self._stop.wait
    if not text:  # Path("") is the current folder, which would be read as a folder of images
        raise SourceError("the source is empty; expected a webcam index, a video, an image, a folder, a stream URL or 'demo'")
        self.target = target
        self.describe = f"camera index {target}" if isinstance(target, int) else f"stream {target}"
        self._factory = capture_factory
        self.max_reopen = max_reopen
        self.backoff_s = backoff_s
        capture = self._open()
        if capture is None:
            raise SourceError(
                f"cannot open {self.describe}; check that it is connected, not used by another program, "
                "and that the index or URL is right"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        super().__init__(str(target), fps if fps > 0 else None)
        self.capture = capture
        self.ended_reason = ""
        self._frame: np.ndarray | None = None
        self._fresh = False
        self._done = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read_loop, name=f"frames-{target}", daemon=True)
        self._thread.start()

    def _open(self):
        capture = self._factory(self.target)
        if capture is not None and capture.isOpened():
            return capture
        if capture is not None:
            capture.release()
        return None

    def _read_loop(self) -> None:
        # Attempts count from the last delivered frame, so a source that reopens fine but
        # never delivers still ends after `max_reopen` attempts.
        attempts = 0
        bad_in_a_row = 0
        try:
            while not self._stop.is_set():
                ok, frame = self.capture.read()
                if ok and _usable(frame):
                    attempts, bad_in_a_row = 0, 0
                    with self._condition:
                        if self._fresh:
                            self.dropped += 1
                        self._frame, self._fresh = frame, True
                        self._condition.notify_all()
                    continue
                if ok:
                    self.unreadable += 1
                    bad_in_a_row += 1
                    if bad_in_a_row < MAX_BAD_FILE_FRAMES:
                        continue
                bad_in_a_row = 0
                attempts = self._reopen(attempts)
                if attempts is None:
                    if not self._stop.is_set():
                        self.ended_reason = (
                            f"{self.describe} stopped delivering frames; gave up after {self.max_reopen} reopen attempts"
                        )
                    return
        finally:
            with self._condition:
                self._done = True
                self._condition.notify_all()

    def _reopen(self, attempt: int) -> int | None:
        """Waits (doubling each attempt) and reopens the source.

        Returns the attempts used since the last delivered frame, or None when stopped or
        when `max_reopen` attempts have failed.
        """
        self.capture.release()
        while attempt < self.max_reopen:
            if self._stop.is_set():
                return None
            self._sleep(min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))
            attempt += 1
            capture = self._open()
            if capture is not None:
                self.capture = capture
                self.reopens += 1
                return attempt
        return None

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._condition:
                while not self._fresh and not self._done:
                    self._condition.wait(timeout=0.5)
                if not self._fresh:
                    return
                frame, self._fresh = self._frame, False
            self.frames_read += 1
            yield frame

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self.capture.release()


def open_source(
    spec: str | int,
    *,
    capture_factory: CaptureFactory = _default_capture,
    max_reopen: int = DEFAULT_MAX_REOPEN,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> FrameSource:
    """Opens what `--source` names.

    Args:
        spec: "demo", a webcam index ("0"), a stream URL (rtsp://, http://...), a video file,
            an image file or a folder of images.
        capture_factory: builds video captures (tests pass a fake).
        max_reopen: reopen attempts for a live source that stops delivering.
        backoff_s: first wait between reopen attempts (doubling).

    Raises:
        SourceError: naming the source when it does not exist or cannot be opened.
    """
    text = str(spec).strip()
    if text == "demo":
        if not DEMO_CLIP.is_file():
            raise SourceError(f"{DEMO_CLIP}: the demo clip is missing; reinstall edge-emotion")
        return VideoFileSource(DEMO_CLIP, capture_factory)
    if text.isdigit():
        return LiveSource(int(text), capture_factory, max_reopen, backoff_s)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource(text, capture_factory, max_reopen, backoff_s)
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise SourceError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageSource(images, str(path))
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageSource([path], str(path))
        return VideoFileSource(path, capture_factory)
    raise SourceError(
        f"{text}: no such file or folder; expected a webcam index, a video, an image, a folder, a stream URL or 'demo'"
    )
