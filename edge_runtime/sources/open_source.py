"""Where frames come from: a webcam, a stream URL, a video file, an image, a folder of images,
or the bundled demo clip.

Files are read frame by frame and none is skipped, so results are reproducible. Live sources
(webcam, rtsp/http) are read on their own thread and the loop always takes the newest frame:
a camera does not wait for a slow consumer, and a queue of stale frames would only add lag.
A live source that stalls is reopened with exponential backoff, within bounds
(`edge_runtime.sources.live`). Frames that cannot be decoded are counted and skipped. A video
file can be looped, for demonstrations and long-run checks.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.sources.base import FrameSource, SourceError, usable
from edge_runtime.sources.images import read_image
from edge_runtime.sources.live import (
    DEFAULT_BACKOFF_S,
    DEFAULT_MAX_REOPEN,
    DEFAULT_STALL_TIMEOUT_S,
    CaptureFactory,
    LiveSource,
)

__all__ = ["FrameSource", "ImageSource", "LiveSource", "SourceError", "VideoFileSource", "demo_clip_path", "open_source"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEMO_CLIP = Path(__file__).resolve().parents[1] / "assets" / "demo.mp4"
DEMO_PHOTO = DEMO_CLIP.with_name("demo_photo.jpg")

# A file whose decoder fails this many frames in a row is treated as ended.
MAX_BAD_FILE_FRAMES = 50


def demo_photo_path() -> Path:
    """The demo photo bundled with the package (six FER-2013 training faces, some turned)."""
    return DEMO_PHOTO


def demo_clip_path() -> Path:
    """The demo clip bundled with the package (FER-2013 training faces in 640x480 frames)."""
    return DEMO_CLIP


def _default_capture(target: object):
    return cv2.VideoCapture(target)


class VideoFileSource(FrameSource):
    """Every frame of a video file, in order; with `loop`, from the start again at its end.

    Attributes:
        loops: times the file was started again.
    """

    def __init__(self, path: Path, capture_factory: CaptureFactory = _default_capture, loop: bool = False,
                 realtime: bool = False, clock=time.monotonic, sleep=time.sleep) -> None:
        self._factory = capture_factory
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self.capture = self._open(path)
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        super().__init__(str(path), fps if fps > 0 else None)
        self.frame_count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.loop = loop
        self.loops = 0

    def _open(self, path: Path | str):
        capture = self._factory(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{path}: cannot be opened as a video (unknown format or codec)")
        return capture

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            before = self.frames_read
            yield from self._one_pass()
            # A file that gave no frame would loop forever doing nothing.
            if not self.loop or self.capture is None or self.frames_read == before:
                return
            self.capture.release()
            self.capture = self._open(self.name)
            self.loops += 1

    def _one_pass(self) -> Iterator[np.ndarray]:
        failures_in_a_row = 0
        position = 0
        paced = self.realtime and self.fps
        started = self._clock()
        while self.capture is not None:
            if paced:
                # Played at the file's own rate, as a camera would deliver it: wait for a frame's
                # time, and drop (counted) the frames whose time has passed while the consumer was busy.
                due = started + position / self.fps
                ahead = due - self._clock()
                if ahead > 0:
                    self._sleep(ahead)
                elif -ahead > 1.0 / self.fps and position < self.frame_count - 1:
                    if not self.capture.grab():
                        return
                    position += 1
                    self.dropped += 1
                    continue
            ok, frame = self.capture.read()
            if ok and usable(frame):
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
    """An image file, or every image in a folder in name order.

    Each image is an unrelated photo (`is_photo`): the runner classifies it alone, and
    `current` names the file of the frame last yielded. A file that cannot be decoded, is cut
    short (see `image_files`) or that `photo_check` refuses is skipped, counted in
    `unreadable` and named in `skipped`.

    Args:
        paths: the image files, in the order to read them.
        name: what was opened (the file or folder).
        photo_check: why a decoded image cannot be used ("" when it can), e.g. too small.

    Attributes:
        skipped: "<file>: <why>" for every file skipped.
    """

    is_photo = True

    def __init__(self, paths: list[Path], name: str, photo_check: Callable[[np.ndarray], str] | None = None) -> None:
        super().__init__(name, None)
        self.paths = paths
        self.current: Path | None = None
        self.skipped: list[str] = []
        self._photo_check = photo_check

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            frame, problem = read_image(path)
            if not problem and self._photo_check is not None:
                problem = self._photo_check(frame)
            if problem:
                self.unreadable += 1
                self.skipped.append(f"{path}: {problem}")
                continue
            self.frames_read += 1
            self.current = path
            yield frame


def source_file(spec: str | int) -> Path | None:
    """The file `--source` reads ("demo": the bundled clip), or None for a camera, a stream or
    a folder: what an output path must never be."""
    text = str(spec).strip()
    if text == "demo":
        return DEMO_CLIP
    path = Path(os.path.expanduser(text))
    return path if path.is_file() else None


def open_source(
    spec: str | int,
    *,
    capture_factory: CaptureFactory | None = None,
    max_reopen: int = DEFAULT_MAX_REOPEN,
    backoff_s: float = DEFAULT_BACKOFF_S,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    loop: bool = False,
    photo_check: Callable[[np.ndarray], str] | None = None,
    realtime: bool = False,
) -> FrameSource:
    """Opens what `--source` names.

    Args:
        spec: "demo", a webcam index ("0"), a stream URL (rtsp://, http://...), a video file,
            an image file or a folder of images.
        capture_factory: builds video captures (tests pass a fake; default: cv2.VideoCapture,
            with open and read time-outs for streams).
        max_reopen: reopen attempts in a row for a live source that stalls.
        backoff_s: first wait between reopen attempts (doubling).
        stall_timeout: seconds a live source may go without a new frame before it is reopened.
        loop: play a video file (or the demo) again from the start at its end.
        realtime: play a video file at its own frame rate, dropping (and counting) the frames
            the consumer is too slow for, so a file stands in for a camera.
        photo_check: for an image or a folder, why an image cannot be used ("" when it can);
            a refused image is skipped and named (see `ImageSource`).

    Raises:
        SourceError: naming the source when it does not exist or cannot be opened.
    """
    text = str(spec).strip()
    if not text:  # Path("") is the current folder, which would be read as a folder of images
        raise SourceError("the source is empty; expected a webcam index, a video, an image, a folder, a stream URL or 'demo'")
    if text == "demo":
        if not DEMO_CLIP.is_file():
            raise SourceError(f"{DEMO_CLIP}: the demo clip is missing; reinstall edge-emotion")
        return VideoFileSource(DEMO_CLIP, capture_factory or _default_capture, loop, realtime)
    if text.isdigit() or text.lower().startswith(STREAM_SCHEMES):
        target = int(text) if text.isdigit() else text
        return LiveSource(target, capture_factory, max_reopen, backoff_s, stall_timeout)
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise SourceError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageSource(images, str(path), photo_check)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageSource([path], str(path), photo_check)
        return VideoFileSource(path, capture_factory or _default_capture, loop, realtime)
    raise SourceError(_why_not_a_source(path, text))


def _why_not_a_source(path: Path, text: str) -> str:
    """The one-line error for a path that is neither a regular file nor a folder."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{text}: no such file or folder; expected a webcam index, a video, an image, a folder, a stream URL or 'demo'"
    except OSError as error:
        return f"{text}: cannot be examined ({error.strerror})"
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    # /dev/video0 is a character device too: OpenCV opens a camera by its index.
    hint = "; for a camera, pass its index (--source 0)" if stat.S_ISCHR(mode) else ""
    return f"{text}: {kind}, not a video, an image or a folder of images{hint}"
