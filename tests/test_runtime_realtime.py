"""`--realtime`: a video file played at its own frame rate, as a camera delivers frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.sources.open_source import VideoFileSource

FPS = 10.0


class FileCapture:
    """A video file of `count` numbered frames at FPS (what cv2.VideoCapture gives for a file)."""

    def __init__(self, count: int) -> None:
        self.count, self.position = count, 0

    def isOpened(self):
        return True

    def grab(self):
        self.position += 1
        return self.position <= self.count

    def read(self):
        if self.position >= self.count:
            return False, None
        frame = np.full((8, 8, 3), self.position % 256, np.uint8)
        self.position += 1
        return True, frame

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: FPS, cv2.CAP_PROP_FRAME_COUNT: float(self.count)}.get(prop, 0.0)

    def release(self):
        pass


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 100.0, 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def play(consumer_seconds: float, count: int = 50, realtime: bool = True):
    clock = Clock()
    source = VideoFileSource(Path("clip.mp4"), lambda path: FileCapture(count), realtime=realtime, clock=clock, sleep=clock.sleep)
    shown = []
    for frame in source:
        shown.append(int(frame[0, 0, 0]))
        clock.now += consumer_seconds  # the pipeline's work on the frame
    return source, shown, clock


def test_a_quick_consumer_is_held_to_the_file_s_frame_rate():
    source, shown, clock = play(consumer_seconds=0.01)
    assert shown == list(range(50)) and source.dropped == 0
    assert abs(clock.now - 100.0 - 50 / FPS) < 0.02  # five seconds of video took five seconds


def test_a_slow_consumer_gets_the_current_frame_and_the_rest_are_dropped_and_counted():
    source, shown, _ = play(consumer_seconds=0.25)  # 2.5 frame times per frame
    assert 15 <= len(shown) <= 22 and source.dropped == 50 - len(shown)
    assert shown == sorted(shown) and all(b - a in (2, 3) for a, b in zip(shown, shown[1:]))


def test_without_realtime_a_file_plays_as_fast_as_it_decodes():
    source, shown, clock = play(consumer_seconds=0.25, realtime=False)
    assert shown == list(range(50)) and source.dropped == 0 and clock.slept == 0.0


class NoFaces:
    """A fake pipeline: finds nothing, takes the consumer's time."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds, self.last_timings = clock, seconds, {}

    def _track(self, frames, whole=False):  # the per-frame step `stream_frames` runs
        self.clock.now += self.seconds
        return [[] for _ in frames]


def test_records_of_a_paced_file_keep_the_file_s_clock_across_dropped_frames():
    from edge_runtime.pipeline.stream import stream_frames

    clock = Clock()
    source = VideoFileSource(Path("clip.mp4"), lambda path: FileCapture(30), realtime=True, clock=clock, sleep=clock.sleep)
    results = list(stream_frames(NoFaces(clock, 0.25), source))
    assert source.dropped > 0
    # Each record's time is its frame's place in the file, not the count of frames processed.
    assert [round(r.time * FPS) for r in results] == [int(r.frame[0, 0, 0]) for r in results]
