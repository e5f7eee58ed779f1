"""The settings of the pipeline's stages, one frozen object per stage.

    ModelSettings       the model file and the runtime that runs it
    DetectorSettings    how faces are found (`edge_runtime.detectors`, defaults in the DETECTORS rows)
    PipelineSettings    what happens between the detector and the faces returned

`edge-run` builds one of each from its options and `RunConfig` holds them; `EmotionDetector`
takes the same values. Bounds come from `edge_runtime.limits` (those of the `edge-run` options).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edge_runtime.limits import CROP_MARGIN, CUT_THRESHOLD, DETECT_EVERY, MIN_CONFIDENCE, MIN_LIKENESS, SMOOTH
from edge_runtime.pipeline.shot_cuts import DEFAULT_CUT_THRESHOLD
from edge_runtime.pipeline.tracker import DEFAULT_MIN_LIKENESS


@dataclass(frozen=True)
class ModelSettings:
    """Which model runs, and how.

    Attributes:
        path: model file (.onnx, .tflite, .keras); None for the bundled model.
        backend: "onnx", "tflite", "keras" or "auto" (by the file's suffix; without `path`,
            the first installed runtime among onnx, tflite, keras).
        threads: inference threads (None: the runtime's default).
        verify: check the file against the checksum in its metadata (see
            `edge_runtime.model_files.integrity`); False for a model edited on purpose.
    """

    path: str | os.PathLike | None = None
    backend: str = "auto"
    threads: int | None = None
    verify: bool = True


@dataclass(frozen=True)
class PipelineSettings:
    """How detections become labelled faces, frame after frame.

    Attributes:
        detect_every: run the detector every N frames; in between, the faces found last keep
            their boxes (a face moves little in a few frames at webcam rates) and are
            classified again, so labels stay live at a fraction of the detection cost.
        smooth: weight of the past in the per-track moving average of probabilities, [0, 1).
        min_confidence: faces whose top probability is below this are marked uncertain.
        crop_margin: extra fraction of the crop's side added on every side (negative
            shrinks); None takes the model's metadata `input.crop_margin` (0 for the bundled
            model, whose framing the detector's crop mapping already matches).
        flip_average: average each face's probabilities with its mirror image's (see
            `Backend.predict`): more accurate (docs/edge-run.md, "Speed and accuracy"), for one more
            model run per face in the same batch.
        cut_threshold: a frame whose brightness pattern changes this much from the one
            before (mean change, 0-255, exposure aside; see `edge_runtime.pipeline.shot_cuts`) is a shot
            cut and ends every track; 0: off.
        min_likeness: a track whose new crop looks less like its previous one than this (see
            `edge_runtime.pipeline.tracker.likeness`) ends, and the face starts a new track; 0: off.

    Raises:
        ValueError: a number outside its bound, naming the field.
    """

    detect_every: int = 1
    smooth: float = 0.5
    min_confidence: float = 0.4
    crop_margin: float | None = None
    flip_average: bool = True
    cut_threshold: float = DEFAULT_CUT_THRESHOLD
    min_likeness: float = DEFAULT_MIN_LIKENESS

    def __post_init__(self) -> None:
        bounds = {"detect_every": DETECT_EVERY, "smooth": SMOOTH, "min_confidence": MIN_CONFIDENCE,
                  "crop_margin": CROP_MARGIN, "cut_threshold": CUT_THRESHOLD, "min_likeness": MIN_LIKENESS}
        for name, bound in bounds.items():
            value = getattr(self, name)
            problem = bound.problem(name, value) if value is not None else ""
            if problem:
                raise ValueError(problem)
