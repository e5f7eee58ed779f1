"""The one loop over a source's frames: each frame in, its faces (and its drawing) out.

`EmotionDetector.stream` and `edge-run` (`runner.run`, which writes what this yields) share it,
so what a Python caller gets is what the command line writes: the same frame numbers, clock,
source names and faces.

    with EmotionDetector() as detector:
        for result in detector.stream("clip.mp4"):
            print(result.index, result.time, [face.label for face in result.faces])
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.outputs.draw import draw_faces
from edge_runtime.pipeline.emotion_detector import STREAM_KEY
from edge_runtime.preprocess import to_bgr
from edge_runtime.sources.base import FrameSource

FPS_SMOOTHING = 0.9  # weight of the past in the drawn FPS, so the number is readable


@dataclass(frozen=True)
class FrameResult:
    """One frame of a source and what was found in it.

    Attributes:
        index: the frame's number among those processed, from 0.
        time: seconds: frame / fps for a file (the same on every run), time since the first
            frame for a camera or stream, None for a photo (photos have no clock).
        source: the source's name; for a folder of photos, the photo's file.
        faces: the faces found, left to right.
        frame: the frame as read.
        annotated: a BGR copy with the faces drawn (and the FPS, for video), when asked for.
        timings: seconds spent on this frame in detect / preprocess / infer.
        whole: True when the frame was classified whole, as one face, without detection
            (`whole_image`, or a photo that is already a face crop).
        fps: frames per second of the loop so far (smoothed), what the drawing shows; None
            for the first frame and for photos.
    """

    index: int
    time: float | None
    source: str
    faces: list = field(repr=False)
    frame: np.ndarray = field(repr=False)
    annotated: np.ndarray | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    whole: bool = False
    fps: float | None = None

    def record_context(self, detector_name: str) -> dict[str, object]:
        """The run's context in this frame's records (see `outputs.face_record`): its source,
        and the detector that found its faces (None for a frame classified whole: none did)."""
        return {"source": self.source, "detector": None if self.whole else detector_name}


def stream_frames(detector, source: FrameSource, *, whole_image: bool = False, annotate: bool = False,
                  overlay: str = "bars") -> Iterator[FrameResult]:
    """Runs `detector` (an `EmotionDetector`) on every frame of an open `source`.

    A photo source classifies each photo alone (`EmotionDetector.detect`: no tracks or
    smoothing from the one before); other frames continue the source's tracks. `whole_image`
    classifies every frame as one face. The source is not closed here.
    """
    media_fps = source.fps if not source.is_live else None
    shown_fps = None
    started = previous = time.perf_counter()
    index = 0
    for frame in source:
        now = time.perf_counter()
        if index:
            instant = 1.0 / max(now - previous, 1e-6)
            shown_fps = instant if shown_fps is None else FPS_SMOOTHING * shown_fps + (1 - FPS_SMOOTHING) * instant
        previous = now
        whole = whole_image
        if source.is_photo:
            # An already-cropped face is classified whole (decided once, here, for `detect` and the records).
            whole = whole_image or detector.is_face_crop(frame)
            faces = detector.detect(frame, whole=whole)
            # Photos have no clock, and a name each.
            time_s, name = None, str(source.current)
        else:
            (faces,) = detector._track([(STREAM_KEY, frame)], whole=whole_image)
            # Files keep their own clock (frame / fps), so their records are the same on every run;
            # frames dropped to keep `--realtime` pace advance it too.
            time_s, name = ((index + source.dropped) / media_fps if media_fps else now - started), source.name
        fps = None if source.is_photo else shown_fps
        annotated = draw_faces(to_bgr(frame), faces, fps, overlay=overlay) if annotate else None
        yield FrameResult(index, time_s, name, faces, frame, annotated, dict(detector.last_timings), whole, fps)
        index += 1
