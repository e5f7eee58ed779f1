"""Frame sources: files frame by frame, live sources through a fake capture, and their faults."""

from __future__ import annotations

import json
import os
import threading
import time

import cv2
import numpy as np
import pytest

from edge_runtime.labels import LABELS
from edge_runtime.sources.open_source import (
    ImageSource,
    LiveSource,
    SourceError,
    VideoFileSource,
    demo_clip_path,
    demo_photo_path,
    open_source,
)
from tests.mjpeg_server import MJPEGServer


class FakeCapture:
    """Stands in for cv2.VideoCapture: plays a script of read() results.

    Each script item is a frame, None (read succeeds but the frame is unusable) or False
    (read fails: the device stopped delivering).
    """

    def __init__(self, script, opened=True, fps=30.0):
        self.script = list(script)
        self.opened = opened
        self.fps = fps
        self.released = False

    def isOpened(self):
        return self.opened

    def read(self):
        if not self.script:
            return False, None
        item = self.script.pop(0)
        if item is False:
            return False, None
        return True, item

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def frames(count, value=0):
    return [np.full((48, 64, 3), (value + i) % 256, np.uint8) for i in range(count)]


class Factory:
    """Returns prepared captures in order; after they run out, captures that cannot open."""

    def __init__(self, *captures):
        self.captures = list(captures)
        self.targets = []

    def __call__(self, target):
        self.targets.append(target)
        return self.captures.pop(0) if self.captures else FakeCapture([], opened=False)


def test_a_camera_that_cannot_be_opened_names_the_index():
    with pytest.raises(SourceError, match="cannot open camera index 3"):
        open_source("3", capture_factory=Factory(FakeCapture([], opened=False)))


def test_a_stream_that_cannot_be_opened_names_the_url():
    with pytest.raises(SourceError, match="cannot open stream rtsp://camera.local/live"):
        open_source("rtsp://camera.local/live", capture_factory=Factory())


def test_live_source_reopens_with_backoff_then_ends_cleanly():
    waits = []
    factory = Factory(FakeCapture(frames(3)), FakeCapture(frames(2, 100)))
    source = LiveSource(0, factory, max_reopen=4, backoff_s=0.5, sleep=waits.append)
    got = list(source)
    source.close()
    # The newest frame wins, so some frames may be dropped; never more than were delivered.
    assert 1 <= len(got) <= 5
    assert source.frames_read + source.dropped == 5
    assert source.reopens == 1
    # One wait before the successful reopen; after its frames, 4 failed attempts with doubling waits.
    assert waits == [0.5, 0.5, 1.0, 2.0, 4.0]
    assert "gave up after 4 reopen attempts" in source.ended_reason
    assert factory.targets == [0] * 6


def test_live_source_counts_and_skips_unreadable_frames():
    script = [frames(1)[0], None, np.zeros((0, 0, 3), np.uint8), frames(1, 50)[0]]
    source = LiveSource("http://cam/stream", Factory(FakeCapture(script)), max_reopen=0, sleep=lambda s: None)
    got = list(source)
    source.close()
    assert source.unreadable == 2
    assert 1 <= len(got) <= 2 and all(frame.size for frame in got)
    assert source.is_live and source.fps == 30.0


def test_live_source_yields_the_newest_frame():
    release = threading.Event()

    class SlowStart(FakeCapture):
        def read(self):
            if len(self.script) == 0:
                release.wait(timeout=5)
            return super().read()

    source = LiveSource(0, Factory(SlowStart(frames(5))), max_reopen=0, sleep=lambda s: None)
    iterator = iter(source)
    # All five frames are read before the loop asks; it gets the last one, the others are dropped.
    while source.dropped < 4:
        threading.Event().wait(0.01)
    newest = next(iterator)
    assert newest[0, 0, 0] == 4
    release.set()
    assert list(iterator) == []
    source.close()


def write_video(path, count, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(count):
        frame = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        cv2.putText(frame, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return path


def test_video_file_gives_every_frame_in_order(tmp_path):
    path = write_video(tmp_path / "clip.avi", 12)
    with open_source(str(path)) as source:
        got = list(source)
        assert not source.is_live and source.fps == pytest.approx(10.0)
    assert len(got) == 12
    means = [frame.mean() for frame in got]
    assert means == sorted(means)


def test_video_file_skips_and_counts_damaged_frames():
    capture = FakeCapture(frames(2) + [False, False] + frames(2, 9))
    capture.get = lambda prop: {cv2.CAP_PROP_FRAME_COUNT: 6.0, cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)
    source = VideoFileSource("clip.mp4", lambda target: capture)
    assert len(list(source)) == 4
    assert source.unreadable == 2


def test_demo_clip_opens_and_decodes():
    assert demo_clip_path().is_file()
    with open_source("demo") as source:
        first = next(iter(source))
    assert first.shape == (480, 640, 3)


def test_image_file_and_folder(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((30, 40, 3), i * 50, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as source:
        got = list(source)
    assert isinstance(source, ImageSource) and len(got) == 3 and source.unreadable == 1
    with open_source(str(tmp_path / "1.png")) as single:
        assert [frame.mean() for frame in single] == [50.0]


def test_a_truncated_image_is_skipped_and_named_with_the_others_that_cannot_be_read(tmp_path):
    # The demo photo cut to a third: OpenCV decodes it without an error, the rows it lacks grey.
    whole = demo_photo_path().read_bytes()
    (tmp_path / "a_whole.jpg").write_bytes(whole)
    (tmp_path / "b_cut.jpg").write_bytes(whole[: len(whole) // 3])
    assert cv2.imread(str(tmp_path / "b_cut.jpg")) is not None  # the case this test is about
    png = cv2.imencode(".png", cv2.imread(str(demo_photo_path())))[1].tobytes()
    (tmp_path / "c_cut.png").write_bytes(png[: len(png) // 3])
    (tmp_path / "d_broken.jpg").write_bytes(b"not a jpeg")
    with open_source(str(tmp_path)) as source:
        got = list(source)
    assert len(got) == 1 and source.unreadable == 3
    assert source.skipped == [
        f"{tmp_path / 'b_cut.jpg'}: truncated JPEG: no end-of-image marker (FF D9) at its end",
        f"{tmp_path / 'c_cut.png'}: truncated PNG: no IEND chunk at its end",
        f"{tmp_path / 'd_broken.jpg'}: not an image OpenCV can decode",
    ]


def test_a_device_or_fifo_as_source_is_called_what_it_is(tmp_path):
    with pytest.raises(SourceError, match=r"^/dev/zero: a character device, not a video, an image or a folder of images; for a camera"):
        open_source("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(SourceError, match=r": a FIFO \(named pipe\), not a video, an image or a folder of images$"):
        open_source(str(tmp_path / "pipe"))


def test_missing_source_and_unreadable_video(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "nothing.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="folder holds no images"):
        open_source(str(tmp_path / "empty"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot be opened as a video"):
        open_source(str(bad))


def test_demo_ground_truth_matches_the_clip():
    truth = json.loads(demo_clip_path().with_suffix(".json").read_text())
    with open_source("demo") as source:
        decoded = sum(1 for _ in source)
    assert decoded == len(truth["frames"]) and truth["size"] == [640, 480]
    labels = {face["label"] for record in truth["frames"] for face in record["faces"]}
    assert labels == set(LABELS)


def drain(source, limit_s=30.0, stop_after=None):
    """Iterates `source` on a thread, bounded: returns the frames, or fails if it never ends."""
    got = []

    def consume():
        for frame in source:
            got.append(frame)
            if stop_after is not None and len(got) >= stop_after:
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "the source never ended"
    return got


class SameFrameForever(FakeCapture):
    def read(self):
        return True, np.full((48, 64, 3), 7, np.uint8)


class BlocksInRead(FakeCapture):
    """Delivers its script, then blocks in read() until `unblock` is set."""

    def __init__(self, script):
        super().__init__(script)
        self.unblock = threading.Event()

    def read(self):
        if not self.script:
            self.unblock.wait(timeout=60)
            return False, None
        return super().read()


def test_a_stream_that_fails_to_reopen_n_times_then_recovers():
    failing = [FakeCapture([], opened=False) for _ in range(3)]
    factory = Factory(FakeCapture(frames(2)), *failing, FakeCapture(frames(4, 50)))
    source = LiveSource("rtsp://cam/live", factory, max_reopen=5, sleep=lambda s: None, stall_timeout=5)
    got = drain(source)
    source.close()
    # The first open, 3 failures and the recovery; after its frames, 5 more failed attempts.
    assert source.reopens == 1 and len(factory.targets) == 1 + 3 + 1 + 5
    assert source.frames_read + source.dropped == 6 and got[-1][0, 0, 0] == 53
    assert "gave up after 5 reopen attempts" in source.ended_reason


def test_a_stream_that_repeats_one_picture_forever_is_reopened_then_given_up():
    captures = [SameFrameForever([]) for _ in range(3)]
    source = LiveSource("http://cam/frozen", Factory(*captures), max_reopen=2, sleep=lambda s: None, stall_timeout=0.3)
    drain(source)
    source.close()
    assert source.reopens == 2
    assert source.ended_reason == "stream http://cam/frozen stalled: no new frame for 0.3 s; gave up after 2 reopen attempts"
    assert all(capture.released for capture in captures)


def test_a_read_that_blocks_is_abandoned_and_the_stream_reopened():
    stuck = BlocksInRead(frames(2))
    source = LiveSource(0, Factory(stuck, FakeCapture(frames(3, 100))), max_reopen=1, sleep=lambda s: None, stall_timeout=0.3)
    got = drain(source)
    source.close()
    assert source.reopens == 1 and got[-1][0, 0, 0] == 102
    assert not stuck.released, "a capture was released while a read was still in progress"
    stuck.unblock.set()
    for _ in range(100):  # its own reader thread releases it once the read returns
        if stuck.released:
            break
        threading.Event().wait(0.05)
    assert stuck.released


def test_an_open_that_hangs_is_abandoned_after_the_stall_timeout():
    release = threading.Event()
    late = FakeCapture(frames(1))

    def hanging_factory(target):
        release.wait(timeout=60)
        return late

    with pytest.raises(SourceError, match=r"^cannot open stream http://cam/hung: no answer within 0.2 s; check that it is connected"):
        LiveSource("http://cam/hung", hanging_factory, stall_timeout=0.2)
    release.set()
    for _ in range(100):
        if late.released:
            break
        threading.Event().wait(0.05)
    assert late.released, "the capture an abandoned open produced was never released"


def test_a_real_mjpeg_server_stopped_and_restarted_is_followed_within_15_s():
    server = MJPEGServer(level=60)
    source = LiveSource(server.url, max_reopen=30, backoff_s=0.2, stall_timeout=2.0)
    try:
        frames_seen = iter(source)
        first = next(frames_seen)
        assert abs(int(np.median(first)) - 60) < 10
        server.stop()
        restarted = MJPEGServer(level=200, port=server.port)
        try:
            deadline = time.monotonic() + 15.0
            recovered = False
            while time.monotonic() < deadline:
                frame = next(frames_seen, None)
                assert frame is not None, source.ended_reason
                if abs(int(np.median(frame)) - 200) < 10:
                    recovered = True
                    break
            assert recovered, "no frame from the restarted server within 15 s"
            assert source.reopens >= 1
        finally:
            restarted.stop()
    finally:
        source.close()
        server.stop()


def test_a_looped_video_starts_again_and_a_video_without_frames_does_not_loop_forever(tmp_path):
    path = write_video(tmp_path / "clip.avi", 5)
    with open_source(str(path), loop=True) as source:
        got = drain(source, stop_after=12)
    assert len(got) == 12 and source.loops == 2
    assert [int(frame.mean()) for frame in got[5:7]] == [int(frame.mean()) for frame in got[0:2]]
    nothing = FakeCapture([])
    nothing.get = lambda prop: 0.0
    source = VideoFileSource("empty.mp4", lambda target: nothing, loop=True)
    assert drain(source) == [] and source.loops == 0


def test_a_stream_whose_server_went_away_says_the_reopen_was_refused():
    server = MJPEGServer()
    source = LiveSource(server.url, max_reopen=2, backoff_s=0.05, stall_timeout=5.0)
    try:
        frames_seen = iter(source)
        next(frames_seen)
        server.stop()
        drain(source)
    finally:
        source.close()
        server.stop()
    assert source.ended_reason.startswith(
        f"stream {server.url} could not be reopened: connection refused by 127.0.0.1:{server.port} after 0."
    )
    assert source.ended_reason.endswith(" s; gave up after 2 reopen attempts")


def test_a_stall_timeout_opencv_cannot_take_is_refused():
    for seconds in (float("inf"), 1e308, 3e6, 0.0, float("nan")):
        with pytest.raises(ValueError, match=r"^stall_timeout .*: expected seconds in \(0, 3600\]"):
            LiveSource("http://cam/live", Factory(FakeCapture(frames(1))), stall_timeout=seconds)


def test_thousands_of_reopen_attempts_keep_the_longest_wait():
    waits = []
    source = LiveSource(0, Factory(FakeCapture(frames(1))), max_reopen=1100, sleep=waits.append)
    drain(source)
    source.close()
    assert len(waits) == 1100 and max(waits) == 8.0
    assert source.ended_reason == "camera index 0 could not be reopened: the open failed after 0.0 s; gave up after 1100 reopen attempts"
