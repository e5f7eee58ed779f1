"""The embedding API: frames in, labelled faces out.

    from edge_runtime.api import EmotionDetector

    with EmotionDetector() as detector:          # the bundled model, first installed runtime
        for face in detector.detect(frame):      # a BGR, gray or BGRA numpy image
            print(face.track_id, face.box, face.label, face.confidence)

Per frame: face detection (YuNet or the Haar cascade, on a downscaled copy, every
`detect_every` frames), IoU tracking, one crop per face mapped onto the model's framing by the
detector's measured crop mapping, one model call for all faces, and per-track smoothing of the
probabilities. A track ends at a shot cut and when its face stops looking like itself, so one
person's smoothed past never carries onto the next. `photo=True` treats every frame as an unrelated photo: no tracking or smoothing
across frames.
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
from edge_runtime.default_model import resolve_model
from edge_runtime.detectors import (
    ChosenDetector,
    CropMapping,
    Detection,
    DetectorSettings,
    as_detection,
    get_detector_info,
    load_detector,
)
from edge_runtime.detectors.base import photo_scale
from edge_runtime.limits import CROP_MARGIN, DETECT_EVERY, MIN_CONFIDENCE, SMOOTH
from edge_runtime.preprocess import face_to_gray48, gray48_to_input
from edge_runtime.shot_cuts import DEFAULT_CUT_THRESHOLD, CutDetector
from edge_runtime.tracker import DEFAULT_MIN_LIKENESS, IoUTracker, Track, signature

DEFAULT_SMOOTH = 0.5
DEFAULT_MIN_CONFIDENCE = 0.4
# A photo at most this many times the model's input side is taken as an already-cropped face.
WHOLE_FACE_MAX_FACTOR = 2


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    Attributes:
        box: (x, y, w, h) of the detection in source pixels (before the crop mapping).
        track_id: id that stays with the face from frame to frame (from 1; in photo mode,
            the face's number in its photo).
        label: the most probable label after smoothing; None when the model's output for
            this face was not finite (NaN or infinite), which says nothing about the face.
        confidence: its smoothed probability (NaN when `label` is None).
        probabilities: label -> smoothed probability, in the model's label order (the model's
            raw output when `label` is None).
        uncertain: True when `confidence` is below the detector's `min_confidence`, or
            `label` is None.
        score: the face detector's confidence (1.0 for Haar and for whole-image faces).
        landmarks: the detector's five face points in source pixels, or None.
    """

    box: tuple[int, int, int, int]
    track_id: int
    label: str | None
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    score: float = 1.0
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

    def reset(self, restart_ids: bool = False) -> None:
        self.tracker.reset(restart_ids)
        self.cuts.reset()
        self.frame_index = 0
        self.frame_shape = None


@dataclass
class FoundFaces:
    """What `EmotionDetector.find_many` found, for `classify_found`: per frame its source's state,
    the (track id, detection) pairs, the tracks they had then, and the grayscale crops; and the
    seconds spent detecting and cropping."""

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
    """Finds faces in frames and classifies their expression.

    Args:
        model: model file (.onnx, .tflite, .keras); None for the bundled model.
        backend: "onnx", "tflite", "keras" or "auto" (by the file's suffix; without `model`,
            the first installed runtime among onnx, tflite, keras).
        threads: inference threads (None: the runtime's default).
        detector: "auto" (YuNet where its file is cached or can be fetched, else Haar),
            "yunet", "haar", a `DetectorSettings`, or any object with
            `.detect(frame) -> list of Detection or (x, y, w, h)`.
        detect_every: run the detector every N frames; in between, the faces found last keep
            their boxes (a face moves little in a few frames at webcam rates) and are
            classified again, so labels stay live at a fraction of the detection cost.
        smooth: weight of the past in the per-track moving average of probabilities, [0, 1).
        min_confidence: faces whose top probability is below this are marked uncertain.
        crop_margin: extra fraction of the crop's side added on every side (negative
            shrinks); None takes the model's metadata `input.crop_margin` (0 for the bundled
            model, whose framing the detector's crop mapping already matches).
        flip_average: average each face's probabilities with its mirror image's (see
            `Backend.predict`); on by default: +0.5 points on PublicTest for the bundled
            model, for one more model run per face in the same batch.
        photo: every frame is an unrelated photo: no tracks or smoothing carry over.
        cut_threshold: a frame whose brightness pattern changes this much from the one
            before (mean change, 0-255, exposure aside; see `edge_runtime.shot_cuts`) is a shot
            cut and ends every track; 0: off.
        min_likeness: a track whose new crop looks less like its previous one than this (see
            `edge_runtime.tracker.likeness`) ends, and the face starts a new track; 0: off.
        verify_model: check the model file against the checksum in its metadata (see
            `edge_runtime.integrity`); False for a model edited on purpose.
        detect_scale, min_size, scale_factor, min_neighbors, cascade: shortcuts for the
            same `DetectorSettings` fields (None: the detector's default).

    Attributes:
        detector_name: the detector actually used ("yunet", "haar", or the custom class name).
        detector_note: under `auto`, why the first choice was not used ("" when it was).

    Raises:
        BackendError: the model cannot be loaded (the message names the file and the fix).
        DetectorError: the detector, its file or a detector setting is invalid.
        ValueError: another setting is out of range.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        backend: str = "auto",
        threads: int | None = None,
        detector: str | DetectorSettings | object = "auto",
        detect_every: int = 1,
        smooth: float = DEFAULT_SMOOTH,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        crop_margin: float | None = None,
        flip_average: bool = True,
        photo: bool = False,
        detect_scale: float | None = None,
        min_size: int | None = None,
        scale_factor: float | None = None,
        min_neighbors: int | None = None,
        cascade: str | os.PathLike | None = None,
        verify_model: bool = True,
        cut_threshold: float = DEFAULT_CUT_THRESHOLD,
        min_likeness: float = DEFAULT_MIN_LIKENESS,
    ) -> None:
        # The bounds of the `edge-run` options.
        bounded = {"detect_every": (detect_every, DETECT_EVERY), "smooth": (smooth, SMOOTH),
                   "min_confidence": (min_confidence, MIN_CONFIDENCE), "crop_margin": (crop_margin, CROP_MARGIN)}
        for name, (value, bound) in bounded.items():
            problem = bound.problem(name, value) if value is not None else ""
            if problem:
                raise ValueError(problem)
        self._state_settings = (0.0 if photo else smooth, min_likeness, cut_threshold)
        self.state = SourceState(*self._state_settings)  # the source `detect` is called on
        self._states: dict[object, SourceState] = {}  # more sources, for `detect_many`
        shortcuts = dict(detect_scale=detect_scale, min_size=min_size, scale_factor=scale_factor, min_neighbors=min_neighbors,
                         cascade=cascade)
        self.chosen = _choose_detector(detector, {k: v for k, v in shortcuts.items() if v is not None})
        self.detector = self.chosen.detector
        self.backend: Backend = load_model(model, backend, threads, verify_model)
        self.labels = tuple(self.backend.labels)
        self.spec = self.backend.metadata.input
        self.crop_margin = float(self.spec.crop_margin if crop_margin is None else crop_margin)
        self.detect_every = int(detect_every)
        self.min_confidence = float(min_confidence)
        self.flip_average = bool(flip_average)
        self.photo = bool(photo)
        self.last_timings: dict[str, float] = {"detect": 0.0, "preprocess": 0.0, "infer": 0.0}

    @property
    def tracker(self) -> IoUTracker:
        """The tracks of the source `detect` is called on."""
        return self.state.tracker

    @property
    def frame_index(self) -> int:
        return self.state.frame_index

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

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in one frame, left to right; call it on consecutive frames of one source.

        Args:
            frame: BGR, BGRA or grayscale uint8 image of any size.

        Raises:
            ValueError: for something that is not an image.
        """
        return self._detect(check_frame(frame), self.photo)

    def _detect(self, frame: np.ndarray, photo: bool) -> list[Face]:
        started = time.perf_counter()
        tracked, grays, detect_seconds = self._find(self.state, frame, photo)
        return self._classify(grays, tracked, detect_seconds, time.perf_counter() - started - detect_seconds, self.state)

    def detect_many(self, frames: list[tuple[object, np.ndarray]]) -> list[list[Face]]:
        """Faces in one frame of each of several sources, all classified in one model call.

        Args:
            frames: (source key, frame) pairs, at most one per source; each source keeps its
                own tracks from call to call (keys are any hashable, such as the source's name).

        Returns:
            The faces of each frame, in the order given.
        """
        return self.classify_found(self.find_many(frames))

    def find_many(self, frames: list[tuple[object, np.ndarray]]) -> FoundFaces:
        """The first half of `detect_many`: detection (or the boxes kept), tracks and crops.

        `classify_found` finishes it, and may run on another thread while this searches the
        next frames: each face keeps the track it had when found, so the smoothed result is the
        one `detect_many` gives. Calls of `classify_found` must keep the order of these.
        """
        started = time.perf_counter()
        per_frame, detect_seconds = [], 0.0
        for key, frame in frames:
            if key not in self._states:
                # Sources detect on different steps (with detect_every 3: the first on steps 0, 3, ...,
                # the second on 1, 4, ...), so no step carries every source's detection at once.
                self._states[key] = SourceState(*self._state_settings, detect_offset=len(self._states) % self.detect_every)
            state = self._states[key]
            tracked, grays, seconds = self._find(state, check_frame(frame), False)
            per_frame.append((state, tracked, [state.tracker.tracks.get(tid) for tid, _ in tracked], grays))
            detect_seconds += seconds
        return FoundFaces(per_frame, detect_seconds, time.perf_counter() - started - detect_seconds)

    def classify_found(self, found: FoundFaces) -> list[list[Face]]:
        """The faces `find_many` found, classified in one model call and smoothed per track."""
        grays = [gray for _, _, _, source_grays in found.per_frame for gray in source_grays]
        probabilities = self._predict(grays, found.detect_seconds, found.crop_seconds)
        faces, offset = [], 0
        for state, tracked, tracks, source_grays in found.per_frame:
            faces.append([self._face(tid, detection, probs, state.tracker, track)
                          for (tid, detection), track, probs in zip(tracked, tracks, probabilities[offset : offset + len(source_grays)])])
            offset += len(source_grays)
        return faces

    def forget(self, key: object) -> None:
        """Drops the tracks `detect_many` keeps for a source (it ended, or restarts)."""
        self._states.pop(key, None)

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
            due = (state.frame_index + state.detect_offset) % self.detect_every == 0
        if due:
            if photo and self.chosen.photo_side:
                found = self.detector.detect(frame, photo_scale(shape, self.chosen.photo_side))
            else:
                found = self.detector.detect(frame)
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

    def stream(self, source, *, whole_image: bool = False, annotate: bool = False, overlay: str = "bars",
               loop: bool = False) -> Iterator:
        """Runs the pipeline on every frame of a source, one `edge_runtime.stream.FrameResult`
        (frame number, time, source name, faces, optionally the drawn frame) per frame.

        Args:
            source: what `edge-run --source` takes (a video file, an image, a folder of images,
                a webcam index, a stream URL, "demo"), opened here and closed when the loop
                ends or is left; or an open `FrameSource`, which the caller closes.
            whole_image: classify every frame as one face, without detection.
            annotate: also return each frame with the faces drawn (`overlay`: bars, labels, none).
            loop: play a video file again from the start at its end.

        Raises:
            SourceError: the source cannot be opened (one line naming it).
        """
        from edge_runtime.sources import open_source
        from edge_runtime.stream import stream_frames

        opened = isinstance(source, (str, int, os.PathLike))
        frames = open_source(os.fspath(source) if isinstance(source, os.PathLike) else source, loop=loop) if opened else source
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

    def detect_photo(self, image: np.ndarray, whole: bool = False) -> list[Face]:
        """Faces in one photo, which stands alone: nothing carries over from earlier frames.

        An already-cropped face (see `is_face_crop`), or any image with `whole=True`, is
        classified as one face spanning the image.

        Raises:
            ValueError: for something that is not an image, or one too small to hold a face
                (see `photo_problem`).
        """
        image = check_frame(image)
        problem = self.photo_problem(image)
        if problem:
            raise ValueError(f"image: {problem}")
        if whole or self.is_face_crop(image):
            self.reset(restart_ids=True)
            return self.classify_whole(image)
        return self._detect(image, photo=True)  # which forgets the tracks itself

    def classify_whole(self, image: np.ndarray) -> list[Face]:
        """Classifies a whole image as one face (an already-cropped face, such as a FER-2013 file).

        Raises:
            ValueError: for something that is not an image.
        """
        image = check_frame(image)
        height, width = image.shape[:2]
        started = time.perf_counter()
        gray = face_to_gray48(image, self.spec.size)
        faces = self._classify([gray], [(1, Detection((0, 0, int(width), int(height))))], 0.0, time.perf_counter() - started,
                               self.state)
        self.state.frame_index += 1
        return faces

    def crop_box(self, box) -> tuple[int, int, int, int]:
        """The (x, y, w, h) region the model reads for a detector box, before any eye levelling."""
        return self.crop.box(box, self.crop_margin)

    def _classify(self, grays: list[np.ndarray], tracked: list, detect_seconds: float, crop_seconds: float,
                  state: SourceState) -> list[Face]:
        """The faces of one source's frame from their grayscale crops, in one model call."""
        probabilities = self._predict(grays, detect_seconds, crop_seconds)
        tracker = state.tracker
        return [self._face(tid, detection, probs, tracker, tracker.tracks.get(tid))
                for (tid, detection), probs in zip(tracked, probabilities)]

    def _predict(self, grays: list[np.ndarray], detect_seconds: float, crop_seconds: float) -> np.ndarray:
        """Probabilities of grayscale crops (`face_to_gray48`, the first half of the one
        preprocessing function) in one model call; records the stage times (`crop_seconds`
        count as preprocessing)."""
        started = time.perf_counter()
        size = self.spec.size
        batch = gray48_to_input(np.stack(grays) if grays else np.zeros((0, size, size), np.uint8), self.spec)
        after_preprocess = time.perf_counter()
        probabilities = self.backend.predict(batch, self.flip_average)
        after_infer = time.perf_counter()
        self.last_timings = {
            "detect": detect_seconds,
            "preprocess": crop_seconds + after_preprocess - started,
            "infer": after_infer - after_preprocess,
        }
        return probabilities

    def _face(self, track_id: int, detection, probabilities: np.ndarray, tracker: IoUTracker, track: Track | None) -> Face:
        if not np.all(np.isfinite(probabilities)):
            # A float model that overflows on one crop, or a broken export: no label rather
            # than argmax's pick among NaNs, and the track's average is left as it was, since
            # one NaN folded into it would stay there for the rest of the track.
            return Face(
                box=tuple(int(v) for v in detection.box),
                track_id=track_id,
                label=None,
                confidence=float("nan"),
                probabilities={label: float(p) for label, p in zip(self.labels, probabilities)},
                uncertain=True,
                score=float(detection.score),
                landmarks=detection.landmarks,
            )
        smoothed = tracker.smooth_track(track, probabilities)
        best = int(np.argmax(smoothed))
        confidence = float(smoothed[best])
        return Face(
            box=tuple(int(v) for v in detection.box),
            track_id=track_id,
            label=self.labels[best],
            confidence=confidence,
            probabilities={label: float(p) for label, p in zip(self.labels, smoothed)},
            uncertain=confidence < self.min_confidence,
            score=float(detection.score),
            landmarks=detection.landmarks,
        )

    def reset(self, restart_ids: bool = False) -> None:
        """Forgets tracks and the frame count (call it before frames of another source).

        Args:
            restart_ids: number the next faces from 1 again (see `IoUTracker.reset`).
        """
        self.state.reset(restart_ids)
        self._states.clear()

    def close(self) -> None:
        """Releases the model's runtime."""
        self.backend.close()

    def __enter__(self) -> EmotionDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _choose_detector(detector, overrides: dict) -> ChosenDetector:
    """The detector `EmotionDetector(detector=...)` names, with its settings overridden."""
    if isinstance(detector, str):
        return load_detector(DetectorSettings(name=detector, **overrides))
    if isinstance(detector, DetectorSettings):
        return load_detector(dataclasses.replace(detector, **overrides))
    if not hasattr(detector, "detect"):
        raise ValueError(f"detector {detector!r}: expected 'auto', a detector name, DetectorSettings or an object with .detect(frame)")
    # A custom detector's boxes are taken as they are (the Haar mapping: the box is the crop).
    return ChosenDetector(detector, get_detector_info("haar"), CropMapping(), "", custom_name=type(detector).__name__)


def load_model(
    model: str | os.PathLike | None, backend: str = "auto", threads: int | None = None, verify_model: bool = True
) -> Backend:
    """Loads `model`, or the bundled model when it is None.

    Raises:
        BackendError: one line naming the file and the fix.
    """
    path, backend = resolve_model(model, backend)
    return load_backend(path, backend, threads, verify_model)

