"""Several sources in one process: each read on its own thread, their faces classified together.

A reader thread per source keeps that source's next frame in a slot: a camera, a stream or a
file played `--realtime` keeps only its newest frame (a slow step drops, and counts, what it
missed, as a camera would), a file played as fast as it decodes hands over every frame in order.
Each step of the loop takes the frames that are ready, finds each source's faces with its own
tracks, and classifies all of them in one model call (`EmotionDetector._track`, the step behind
`EmotionDetector.stream`, in its two halves: the search, then the classification on a worker
thread while the next step is searched). A source that stalls is reopened by its own reader
(`LiveSource`); one that ends or fails for good is reported while the others go on.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edge_runtime.sources.base import FrameSource

JOIN_TIMEOUT_S = 2.0


@dataclass
class Ready:
    """A frame taken from a reader: its source, its number in that source and when it was read."""

    reader: SourceReader
    frame: np.ndarray
    index: int
    position: int  # its place in the source: `index` plus the frames dropped before it
    read_at: float


class SourceReader:
    """Reads one FrameSource on its own thread into a one-frame slot.

    Args:
        source: an open source (closed by `close`).
        changed: the condition every reader of a run notifies, so the loop wakes for any of them.
    """

    def __init__(self, source: FrameSource, changed: threading.Condition) -> None:
        self.source = source
        self.name = source.name
        self.keep_newest = source.is_live or getattr(source, "realtime", False)
        self.replaced = 0  # frames replaced by newer ones before the loop took them
        self.done = False
        self.error = ""
        self._changed = changed
        self._slot: Ready | None = None
        self._index = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"read {self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source:
                with self._changed:
                    while self._slot is not None and not self.keep_newest and not self._stop.is_set():
                        self._changed.wait(0.1)  # every frame of a file, in order: wait for the loop
                    if self._stop.is_set():
                        return
                    if self._slot is not None:
                        self.replaced += 1
                    self._slot = Ready(self, frame, self._index, self._index + self.dropped, time.perf_counter())
                    self._index += 1
                    self._changed.notify_all()
        except Exception as error:  # noqa: BLE001 - a failing source ends alone; the loop reports it
            self.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        finally:
            with self._changed:
                self.done = True
                self._changed.notify_all()

    def take(self) -> Ready | None:
        """The frame in the slot, if any (call with the condition held)."""
        ready, self._slot = self._slot, None
        return ready

    @property
    def has_frame(self) -> bool:
        return self._slot is not None

    @property
    def dropped(self) -> int:
        return self.source.dropped + self.replaced

    def close(self) -> None:
        """Stops the thread, then closes the source (never under a thread still reading it)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self.source.is_live:
            # A live source is closed from any thread, which ends the reader's wait for a frame.
            self.source.close()
            self._thread.join(JOIN_TIMEOUT_S)
        else:
            # A file is closed only once its reader is out of OpenCV's read.
            self._thread.join(JOIN_TIMEOUT_S)
            self.source.close()


def next_frames(readers: list[SourceReader], changed: threading.Condition, wait_s: float = 0.5) -> list[Ready] | None:
    """The frames ready now (waiting for at least one); None once every source has ended."""
    with changed:
        while not any(reader.has_frame for reader in readers):
            if all(reader.done for reader in readers):
                return None
            changed.wait(wait_s)
        ready = [reader.take() for reader in readers if reader.has_frame]
        changed.notify_all()  # file readers waiting for their slot go on
        return ready


class StepWriter:
    """The second stage of `loop_many`: classifies a step's faces and writes what they give
    (records, the server's frames, the summary's counts), one step after another."""

    def __init__(self, config, detector, outputs, summary, hub, started: float) -> None:
        self.config, self.detector, self.outputs, self.summary, self.hub = config, detector, outputs, summary, hub
        self.started = started
        self.labels: Counter = Counter({label: 0 for label in detector.labels})
        # Track ids only grow within a source: counting the ids above the highest seen counts tracks.
        self.highest_ids: dict[str, int] = {}

    def write(self, ready: list[Ready], found) -> None:
        detector, summary = self.detector, self.summary
        found_faces = detector._classify_found(found)
        for stage, seconds in detector.last_timings.items():
            summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
        for item, faces in zip(ready, found_faces):
            self._write_frame(item, faces)

    def _write_frame(self, item: Ready, faces: list) -> None:
        summary, name = self.summary, item.reader.name
        source = item.reader.source
        fps = None if source.is_live else source.fps
        # Files keep their own clock (their place in the file / fps), live sources the run's.
        time_s = item.position / fps if fps else item.read_at - self.started
        # A frame classified whole was searched by no detector (see `FrameResult.record_context`).
        context = {"source": name, "detector": None if self.config.whole_image else self.detector.detector_name}
        self.outputs.write(item.index, time_s, faces, None, context)
        if self.hub is not None:
            from edge_runtime.serve.hub import FrameView

            # References only: the server draws and serializes what a viewer takes.
            self.hub.publish(name, FrameView(item.frame, faces, item.index, time_s, context, None, self.config.overlay),
                             self.detector.last_timings, item.reader.dropped)
        summary.frames += 1
        summary.faces += len(faces)
        self.labels.update(face.label for face in faces if face.label is not None)
        summary.unlabelled += sum(face.label is None for face in faces)
        summary.uncertain += sum(face.uncertain for face in faces)
        highest = self.highest_ids.get(name, 0)
        new_ids = {face.track_id for face in faces if face.track_id > highest}
        summary.tracks += len(new_ids)
        self.highest_ids[name] = max(new_ids, default=highest)


def loop_many(config, detector, readers: list[SourceReader], changed: threading.Condition, outputs, summary, hub=None) -> str:
    """The loop over several sources (see the module's doc); fills `summary`, returns why it ended.

    Two stages overlap: this thread takes the ready frames and searches them for faces
    (`EmotionDetector._track_search`) while a worker thread classifies the step before and writes
    it (`StepWriter`). The detector and the model both run in native code without the GIL, so
    on two cores they run side by side rather than in turn. One step at a time is in flight,
    so records keep their order, and an error in the worker ends the loop at the next step.
    """
    started = time.perf_counter()
    writer = StepWriter(config, detector, outputs, summary, hub, started)
    taken = 0
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify") as worker:
            in_flight = None
            stopped_by = "end of every source"
            while (ready := next_frames(readers, changed)) is not None:
                found = detector._track_search([(item.reader.name, item.frame) for item in ready], whole=config.whole_image)
                if in_flight is not None:
                    in_flight.result()  # the step before is written, or its error raised here
                in_flight = worker.submit(writer.write, ready, found)
                taken += len(ready)
                if config.max_frames is not None and taken >= config.max_frames:
                    stopped_by = f"max frames ({config.max_frames})"
                    break
            if in_flight is not None:
                in_flight.result()
        return stopped_by
    finally:
        summary.seconds = time.perf_counter() - started
        summary.label_counts = dict(writer.labels)
