"""The embedding API: images and videos in, labelled faces out.

    from edge_runtime import EmotionDetector

    with EmotionDetector() as model:                 # the bundled model, first installed runtime
        for face in model.detect(image):             # one photo: a BGR, gray or BGRA numpy image
            print(face.box, face.label, face.confidence)
        for result in model.stream("clip.mp4"):     # a video, camera, URL, or any iterable of frames
            print(result.index, [(face.track_id, face.label) for face in result.faces])

`detect` takes one image that stands alone: nothing carries over from earlier calls, and an
already-cropped face (a 48x48 FER-2013 file) is classified whole. `stream` is the one loop over
frames: face detection (YuNet or the Haar cascade, on a downscaled copy, every `detect_every`
frames), IoU tracking, one crop per face mapped onto the model's framing by the detector's
measured crop mapping, one model call for all faces, and per-track smoothing of the
probabilities. A track ends at a shot cut and when its face stops looking like itself, so one
person's smoothed past never carries onto the next.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.backends import Backend, load_backend
from edge_runtime.detectors import ChosenDetector, CropMapping, Detection, DetectorSettings, as_detection, load_detector
from edge_runtime.detectors.base import photo_scale
from edge_runtime.model_files.bundled import resolve_model
from edge_runtime.pipeline.shot_cuts import CutDetector
from edge_runtime.pipeline.tracker import IoUTracker, Track, signature
from edge_runtime.preprocess import face_to_gray48, gray48_to_input
from edge_runtime.settings import ModelSettings, PipelineSettings
from edge_runtime.sources.base import FrameIterable, FrameSource

# A photo at most this many times the model's input side is taken as an already-cropped face.
WHOLE_FACE_MAX_FACTOR = 2


# The key of the one source `stream` runs on, among the sources an EmotionDetector keeps tracks
# for (`EmotionDetector._track`); no source name can equal it.
STREAM_KEY = object()


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    Attributes:
        box: (x, y, w, h) of the detection in source pixels (before the crop mapping).
        track_id: id that stays with the face from frame to frame of a `stream` (from 1;
            from `detect`, the face's number in its image).
        label: the most probable label after smoothing; None when the model's output for
            this face was not finite (NaN or infinite), which says nothing about the face.
        confidence: its smoothed probability (NaN when `label` is None).
        probabilities: label -> smoothed probability, in the model's label order (the model's
            raw output when `label` is None).
        uncertain: True when `confidence` is below the detector's `min_confidence`, or
            `label` is None.
        score: the face detector's confidence, or None where there is none (Haar gives no
            score; a face classified whole had no detection).
        landmarks: the detector's five face points in source pixels, or None.
    """

    box: tuple[int, int, int, int]
    track_id: int
    label: str | None
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    score: float | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None


class SourceState:
    """What carries over from frame to frame of one source: its tracks, the frame before (for
    shot cuts), the boxes reused between detections, the frame count."""

    def __init__(self, smooth: float, min_likeness: float, cut_threshold: float, detect_offset: int = 0) -> None:
        self.tracker = IoUTracker(smooth=smooth, min_likeness=min_likeness)
        self.detect_offset = detect_offset  # shifts its detection rounds against other sources
        self.cuts = CutDetector(cut_threshold)
        self.frame_index = 0
        self.frame_shape: tuple[int, int] | None = None
        self.detections: dict[int, Detection] = {}  # track id -> its last detection, for frames not detected on


@dataclass
class FoundFaces:
    """What the search half of a step found, for its classifying half: per frame its source's
    state, the (track id, detection) pairs, the tracks they had then, and the grayscale crops;
    and the seconds spent detecting and cropping."""

    per_frame: list[tuple[SourceState, list, list, list[np.ndarray]]]
    detect_seconds: float
    crop_seconds: float


def check_frame(frame: object) -> np.ndarray:
    """Returns `frame` if it is an image the pipeline takes (HxW, HxWx1, HxWx3 or HxWx4).

    Raises:
        ValueError: for anything else, naming what was received.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame is a {type(frame).__name__}; expected a numpy image")
    if frame.size == 0 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"frame has shape {frame.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    return frame


class EmotionDetector:
    """Finds faces in images and videos and classifies their expression.

    Args:
        model, backend, threads: the model file (None: the bundled model), its runtime and
            inference threads, as `ModelSettings.path`, `.backend` and `.threads` describe them.
        detector: "auto" (YuNet where its file is cached or can be fetched, else Haar),
            "yunet", "haar", a `DetectorSettings`, or any object with
            `.detect(frame) -> list of Detection or (x, y, w, h)`.
        settings: the pipeline's settings (`PipelineSettings`: detect_every, smooth,
            min_confidence, crop_margin, flip_average, cut_threshold, min_likeness).
        verify_model: `ModelSettings.verify`.
        **pipeline: `PipelineSettings` fields that override `settings` (`smooth=0.0`).

    Attributes:
        face_detector: the face detector object (its `.detect(frame)` finds boxes only).
        detector_name: the detector actually used ("yunet", "haar", or the custom class name).
        detector_note: under `auto`, why the first choice was not used ("" when it was).
        settings: the `PipelineSettings` in use.

    Raises:
        BackendError: the model cannot be loaded (the message names the file and the fix).
        DetectorError: the detector, its file or a detector setting is invalid.
        ValueError: a pipeline setting is out of range, naming it.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        backend: str = "auto",
        threads: int | None = None,
        detector: str | DetectorSettings | object = "auto",
        settings: PipelineSettings | None = None,
        *,
        verify_model: bool = True,
        **pipeline,
    ) -> None:
        self.settings = dataclasses.replace(settings or PipelineSettings(), **pipeline)
        self._states: dict[object, SourceState] = {}  # source key -> what carries over between its frames
        self.chosen = _choose_detector(detector)
        self.face_detector = self.chosen.detector
        self.backend: Backend = load_model(model, backend, threads, verify_model)
        self.labels = tuple(self.backend.labels)
        self.spec = self.backend.metadata.input
        self.crop_margin = float(self.spec.crop_margin if self.settings.crop_margin is None else self.settings.crop_margin)
        self.last_timings: dict[str, float] = {"detect": 0.0, "preprocess": 0.0, "infer": 0.0}

    @classmethod
    def from_settings(cls, model: ModelSettings, detector: DetectorSettings, pipeline: PipelineSettings) -> EmotionDetector:
        """The detector the three stage settings describe (as `edge-run` builds it)."""
        return cls(model.path, model.backend, model.threads, detector, pipeline, verify_model=model.verify)

    @property
    def tracker(self) -> IoUTracker | None:
        """The tracks of the source `stream` runs on (None before it starts)."""
        state = self._states.get(STREAM_KEY)
        return state.tracker if state is not None else None

    @property
    def model_path(self) -> Path:
        return self.backend.model_path

    @property
    def detector_name(self) -> str:
        return self.chosen.name

    @property
    def detector_note(self) -> str:
        return self.chosen.note

    @property
    def crop(self) -> CropMapping:
        """How detector boxes become model crops (the detector's measured mapping)."""
        return self.chosen.crop

    def detect(self, image: np.ndarray, whole: bool | None = None) -> list[Face]:
        """Faces in one image, left to right; the image stands alone: nothing carries over from
        earlier calls (track ids count from 1, no smoothing). For frames of a video, use `stream`.

        Args:
            image: BGR, BGRA or grayscale uint8 image of any size.
            whole: classify the whole image as one face (True), search it for faces (False), or
                decide by its size (None): an already-cropped face (see `is_face_crop`) is
                classified whole.

        Raises:
            ValueError: for something that is not an image, or one too small to hold a face
                (see `photo_problem`).
        """
        image = check_frame(image)
        problem = self.photo_problem(image)
        if problem:
            raise ValueError(f"image: {problem}")
        whole = self.is_face_crop(image) if whole is None else whole
        return self._step([(self._new_state(), image)], photo=True, whole=whole)[0]

    def stream(self, source, *, whole_image: bool = False, annotate: bool = False, overlay: str = "bars",
               loop: bool = False) -> Iterator:
        """Runs the pipeline on every frame of a source, one `edge_runtime.pipeline.stream.FrameResult`
        (frame number, time, source name, faces, optionally the drawn frame) per frame; faces
        keep their track ids and smoothed labels from frame to frame.

        Args:
            source: what `edge-run --source` takes (a video file, an image, a folder of images,
                a webcam index, a stream URL, "demo"), opened here and closed when the loop
                ends or is left; an open `FrameSource`, which the caller closes; or any
                iterable of numpy frames (a capture loop of your own), timed as a live source.
            whole_image: classify every frame as one face, without detection.
            annotate: also return each frame with the faces drawn (`overlay`: bars, labels, none).
            loop: play a video file again from the start at its end.

        Raises:
            SourceError: the source cannot be opened (one line naming it).
            ValueError: `source` is one image (use `detect`), or a frame is not an image.
        """
        from edge_runtime.pipeline.stream import stream_frames
        from edge_runtime.sources.open_source import open_source

        if isinstance(source, np.ndarray):
            raise ValueError(f"source is one numpy image of shape {source.shape}; use detect(image), or pass a list of frames")
        opened = isinstance(source, (str, int, os.PathLike))
        if opened:
            frames = open_source(os.fspath(source) if isinstance(source, os.PathLike) else source, loop=loop)
        else:
            frames = source if isinstance(source, FrameSource) else FrameIterable(source)
        self.reset()
        try:
            yield from stream_frames(self, frames, whole_image=whole_image, annotate=annotate, overlay=overlay)
        finally:
            if opened:
                frames.close()

    def is_face_crop(self, image: np.ndarray) -> bool:
        """True for an image from the model input's size to barely larger: an already-cropped
        face (a FER-2013 file is 48x48), which a detector cannot find a face in."""
        return self.spec.size <= min(image.shape[:2]) and max(image.shape[:2]) <= WHOLE_FACE_MAX_FACTOR * self.spec.size

    def photo_problem(self, image: np.ndarray) -> str:
        """Why a photo cannot hold a face, as one phrase; "" when it can.

        A photo smaller than the model's input on both sides (a 1x1 PNG, a thumbnail) would
        only be stretched into a face that is not there.
        """
        height, width = image.shape[:2]
        if max(height, width) < self.spec.size:
            return f"{width}x{height} px is too small to hold a face (the model reads {self.spec.size}x{self.spec.size})"
        return ""

    def crop_box(self, box) -> tuple[int, int, int, int]:
        """The (x, y, w, h) region the model reads for a detector box, before any eye levelling."""
        return self.crop.box(box, self.crop_margin)

    def reset(self) -> None:
        """Forgets every source's tracks and frame count, so the next faces are numbered from 1
        (`stream` starts with it)."""
        self._states.clear()

    def close(self) -> None:
        """Releases the model's runtime."""
        self.backend.close()

    def __enter__(self) -> EmotionDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the per-frame step behind `detect`, `stream` and several sources at once ------------

    def _new_state(self, detect_offset: int = 0) -> SourceState:
        settings = self.settings
        return SourceState(settings.smooth, settings.min_likeness, settings.cut_threshold, detect_offset)

    def _track(self, frames: list[tuple[object, np.ndarray]], whole: bool = False) -> list[list[Face]]:
        """Faces in the next frame of each of several sources, all classified in one model call;
        each source (any hashable key, such as its name) keeps its own tracks from call to call.

        Returns:
            The faces of each frame, in the order given.
        """
        return self._classify_found(self._track_search(frames, whole))

    def _track_search(self, frames: list[tuple[object, np.ndarray]], whole: bool = False) -> FoundFaces:
        """The first half of `_track`: detection (or the boxes kept), tracks and crops.

        `_classify_found` finishes it, and may run on another thread while this searches the
        next frames: each face keeps the track it had when found, so the smoothed result is the
        one `_track` gives. Calls of `_classify_found` must keep the order of these.
        """
        items = []
        for key, frame in frames:
            if key not in self._states:
                # Sources detect on different steps (with detect_every 3: the first on steps 0, 3, ...,
                # the second on 1, 4, ...), so no step carries every source's detection at once.
                self._states[key] = self._new_state(detect_offset=len(self._states) % self.settings.detect_every)
            items.append((self._states[key], check_frame(frame)))
        return self._search(items, photo=False, whole=whole)

    def _step(self, frames: list[tuple[SourceState, np.ndarray]], photo: bool, whole: bool) -> list[list[Face]]:
        """Detection (or whole-image faces), tracking and crops of each (source state, frame),
        then one model call for the faces of all; records the stage times."""
        return self._classify_found(self._search(frames, photo, whole))

    def _search(self, frames: list[tuple[SourceState, np.ndarray]], photo: bool, whole: bool) -> FoundFaces:
        started = time.perf_counter()
        per_frame, detect_seconds = [], 0.0
        for state, frame in frames:
            tracked, grays, seconds = self._whole(state, frame) if whole else self._find(state, frame, photo)
            per_frame.append((state, tracked, [state.tracker.tracks.get(tid) for tid, _ in tracked], grays))
            detect_seconds += seconds
        return FoundFaces(per_frame, detect_seconds, time.perf_counter() - started - detect_seconds)

    def _classify_found(self, found: FoundFaces) -> list[list[Face]]:
        """The faces `_search` found, classified in one model call and smoothed per track."""
        grays = [gray for _, _, _, source_grays in found.per_frame for gray in source_grays]
        probabilities = self._predict(grays, found.detect_seconds, found.crop_seconds)
        faces, offset = [], 0
        for state, tracked, tracks, source_grays in found.per_frame:
            faces.append([self._face(tid, detection, probs, state.tracker, track)
                          for (tid, detection), track, probs in zip(tracked, tracks, probabilities[offset : offset + len(source_grays)])])
            offset += len(source_grays)
        return faces

    def _whole(self, state: SourceState, frame: np.ndarray) -> tuple[list, list[np.ndarray], float]:
        """The whole frame as one face, track 1 (an already-cropped face needs no detector)."""
        height, width = frame.shape[:2]
        state.frame_index += 1
        return [(1, Detection((0, 0, int(width), int(height)), score=None))], [face_to_gray48(frame, self.spec.size)], 0.0

    def _find(self, state: SourceState, frame: np.ndarray, photo: bool) -> tuple[list, list[np.ndarray], float]:
        """Detection (or the boxes of the last one), tracking and crops of one frame of a source:
        (tracked (track id, detection) pairs, their grayscale crops, seconds spent detecting)."""
        started = time.perf_counter()
        shape = frame.shape[:2]
        cut = not photo and state.cuts.is_cut(frame)
        # A photo, or a frame of another size (a folder of mixed images), invalidates the boxes to reuse.
        if photo or shape != state.frame_shape:
            state.tracker.reset(restart_ids=photo)
            state.frame_shape = shape
            due = True
        elif cut:
            # A new shot: nobody in it continues a track of the last one, wherever they stand.
            state.tracker.reset()
            due = True
        else:
            due = (state.frame_index + state.detect_offset) % self.settings.detect_every == 0
        if due:
            if photo and self.chosen.photo_side:
                found = self.face_detector.detect(frame, photo_scale(shape, self.chosen.photo_side))
            else:
                found = self.face_detector.detect(frame)
            detections = [as_detection(box) for box in found]
            track_ids = state.tracker.assign([d.box for d in detections])
            state.detections = dict(zip(track_ids, detections))
            tracked = list(zip(track_ids, detections))
        else:
            tracked = [(tid, state.detections[tid]) for tid, _ in sorted(state.tracker.visible(), key=lambda item: item[1][:2])]
        detect_seconds = time.perf_counter() - started
        crops = [self.crop.crop(frame, detection, self.crop_margin) for _, detection in tracked]
        # A box that the frame's edges leave empty has nothing to classify.
        tracked, crops = [item for item, crop in zip(tracked, crops) if crop.size], [crop for crop in crops if crop.size]
        grays = [face_to_gray48(crop, self.spec.size) for crop in crops]
        if not photo:
            tracked = [self._confirm(state, track_id, detection, gray) for (track_id, detection), gray in zip(tracked, grays)]
        state.frame_index += 1
        return tracked, grays, detect_seconds

    @staticmethod
    def _confirm(state: SourceState, track_id: int, detection: Detection, gray: np.ndarray) -> tuple[int, Detection]:
        """The track the face continues: its own, or a new one when another face took its place."""
        confirmed = state.tracker.confirm(track_id, signature(gray))
        if confirmed != track_id:
            state.detections[confirmed] = state.detections.pop(track_id, detection)
        return confirmed, detection

    def _predict(self, grays: list[np.ndarray], detect_seconds: float, crop_seconds: float) -> np.ndarray:
        """Probabilities of grayscale crops (`face_to_gray48`, the first half of the one
        preprocessing function) in one model call; records the stage times (`crop_seconds`
        count as preprocessing)."""
        started = time.perf_counter()
        size = self.spec.size
        batch = gray48_to_input(np.stack(grays) if grays else np.zeros((0, size, size), np.uint8), self.spec)
        after_preprocess = time.perf_counter()
        probabilities = self.backend.predict(batch, self.settings.flip_average)
        after_infer = time.perf_counter()
        self.last_timings = {
            "detect": detect_seconds,
            "preprocess": crop_seconds + after_preprocess - started,
            "infer": after_infer - after_preprocess,
        }
        return probabilities

    def _face(self, track_id: int, detection, probabilities: np.ndarray, tracker: IoUTracker, track: Track | None) -> Face:
        if np.all(np.isfinite(probabilities)):
            probabilities = tracker.smooth_track(track, probabilities)
            best = int(np.argmax(probabilities))
            label, confidence = self.labels[best], float(probabilities[best])
        else:
            # A float model that overflows on one crop, or a broken export: no label rather
            # than argmax's pick among NaNs, and the track's average is left as it was, since
            # one NaN folded into it would stay there for the rest of the track.
            label, confidence = None, float("nan")
        return Face(
            box=tuple(int(v) for v in detection.box),
            track_id=track_id,
            label=label,
            confidence=confidence,
            probabilities={name: float(p) for name, p in zip(self.labels, probabilities)},
            uncertain=label is None or confidence < self.settings.min_confidence,
            score=None if detection.score is None else float(detection.score),
            landmarks=detection.landmarks,
        )


def _choose_detector(detector) -> ChosenDetector:
    """The detector `EmotionDetector(detector=...)` names."""
    if isinstance(detector, str):
        return load_detector(DetectorSettings(name=detector))
    if isinstance(detector, DetectorSettings):
        return load_detector(detector)
    if not hasattr(detector, "detect"):
        raise ValueError(f"detector {detector!r}: expected 'auto', a detector name, DetectorSettings or an object with .detect(frame)")
    # A custom detector's boxes are taken as they are: the box is the crop.
    return ChosenDetector(detector, None, CropMapping(), "", custom_name=type(detector).__name__)


def load_model(
    model: str | os.PathLike | None, backend: str = "auto", threads: int | None = None, verify_model: bool = True
) -> Backend:
    """Loads `model`, or the bundled model when it is None.

    Raises:
        BackendError: one line naming the file and the fix.
    """
    path, backend = resolve_model(model, backend)
    return load_backend(path, backend, threads, verify_model)

