"""The frame loop behind `edge-run`: source -> EmotionDetector -> window and outputs -> summary.

Everything the loop opens is closed in one `finally`, so Ctrl-C, the end of the source, `q`
in the window and an error all leave finished output files.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.api import DEFAULT_MIN_CONFIDENCE, DEFAULT_SMOOTH, EmotionDetector
from edge_runtime.detector import DEFAULT_DETECT_SCALE, DEFAULT_MIN_NEIGHBORS, DEFAULT_MIN_SIZE, DEFAULT_SCALE_FACTOR
from edge_runtime.display import Window
from edge_runtime.draw import draw_faces
from edge_runtime.outputs import Outputs, to_bgr
from edge_runtime.sources import FrameSource, open_source

FPS_SMOOTHING = 0.9  # weight of the past in the on-screen FPS, so the number is readable


@dataclass(frozen=True)
class RunConfig:
    """Everything `edge-run` was asked to do (the CLI builds it from its options)."""

    source: str = "0"
    model: Path | None = None
    backend: str = "auto"
    threads: int | None = None
    cascade: Path | None = None
    scale_factor: float = DEFAULT_SCALE_FACTOR
    min_neighbors: int = DEFAULT_MIN_NEIGHBORS
    min_size: int = DEFAULT_MIN_SIZE
    detect_scale: float = DEFAULT_DETECT_SCALE
    detect_every: int = 1
    smooth: float = DEFAULT_SMOOTH
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    crop_margin: float | None = None
    flip_average: bool = True
    verify_model: bool = True
    display: bool = True
    jsonl: Path | None = None
    csv: Path | None = None
    save_video: Path | None = None
    max_frames: int | None = None


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        source: what was opened.
        model: the model file and backend.
        frames: frames processed.
        faces: faces found, summed over frames.
        tracks: distinct track ids seen.
        seconds: wall time of the loop (model loading excluded).
        label_counts: faces per label, summed over frames.
        uncertain: faces below `min_confidence`.
        unreadable: frames that could not be decoded and were skipped.
        dropped: live frames replaced by newer ones before being processed.
        reopens: times a live source was reopened.
        stopped_by: why the loop ended.
        stage_seconds: total seconds spent in detect / preprocess / infer.
    """

    source: str = ""
    model: str = ""
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    label_counts: dict[str, int] = field(default_factory=dict)
    uncertain: int = 0
    unreadable: int = 0
    dropped: int = 0
    reopens: int = 0
    stopped_by: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The end-of-run summary, one fact per line."""
        per_frame = {k: 1000 * v / self.frames for k, v in self.stage_seconds.items()} if self.frames else {}
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in per_frame.items())
        counts = ", ".join(f"{label} {n}" for label, n in self.label_counts.items() if n) or "none"
        lines = [
            f"source: {self.source} | model: {self.model}",
            f"frames: {self.frames} | faces: {self.faces} | tracks: {self.tracks} | {self.fps:.1f} FPS over {self.seconds:.2f} s",
            f"per frame: {stages}" if stages else "per frame: -",
            f"labels: {counts}" + (f" | uncertain: {self.uncertain}" if self.uncertain else ""),
        ]
        if self.unreadable or self.dropped or self.reopens:
            lines.append(f"unreadable frames: {self.unreadable} | dropped live frames: {self.dropped} | reopens: {self.reopens}")
        lines.append(f"stopped: {self.stopped_by}")
        return lines


def build_detector(config: RunConfig) -> EmotionDetector:
    """The EmotionDetector a RunConfig describes (loads the model and the cascade)."""
    return EmotionDetector(
        model=config.model,
        backend=config.backend,
        threads=config.threads,
        detect_scale=config.detect_scale,
        detect_every=config.detect_every,
        smooth=config.smooth,
        min_confidence=config.min_confidence,
        crop_margin=config.crop_margin,
        scale_factor=config.scale_factor,
        min_neighbors=config.min_neighbors,
        min_size=config.min_size,
        cascade=config.cascade,
        flip_average=config.flip_average,
        verify_model=config.verify_model,
    )


def run(config: RunConfig, detector: EmotionDetector | None = None, source: FrameSource | None = None) -> RunSummary:
    """Runs the loop until the source ends, `max_frames`, `q`/Esc, or Ctrl-C.

    Args:
        config: what to run.
        detector: an EmotionDetector to use instead of building one (it is not closed).
        source: a FrameSource to use instead of opening `config.source` (it is closed).

    Raises:
        DisplayError, BackendError, DetectorError, SourceError, OutputError: one-line messages.
    """
    window = Window() if config.display else None  # fail before loading anything
    own_detector = detector is None
    summary = RunSummary(stage_seconds={"detect": 0.0, "preprocess": 0.0, "infer": 0.0})
    outputs = None
    try:
        if detector is None:
            detector = build_detector(config)
        summary.model = f"{detector.model_path} ({detector.backend.name})"
        if source is None:
            source = open_source(config.source)
        summary.source = source.name
        outputs = Outputs(config.jsonl, config.csv, config.save_video, video_fps=source.fps, labels=detector.labels)
        summary.stopped_by = _loop(config, detector, source, window, outputs, summary)
    finally:
        if outputs is not None:
            outputs.close()
        if source is not None:
            source.close()
            summary.unreadable, summary.dropped, summary.reopens = source.unreadable, source.dropped, source.reopens
        if window is not None:
            window.close()
        if own_detector and detector is not None:
            detector.close()
    return summary


def _loop(config, detector, source, window, outputs, summary) -> str:
    labels: Counter = Counter({label: 0 for label in detector.labels})
    track_ids: set[int] = set()
    media_fps = source.fps if not source.is_live else None
    shown_fps = None
    started = last = time.perf_counter()
    stopped_by = "end of source"
    try:
        for frame in source:
            now = time.perf_counter()
            faces = detector.detect(frame)
            for stage, seconds in detector.last_timings.items():
                summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
            # Files keep their own clock (frame / fps), so a JSONL is the same on every run.
            time_s = summary.frames / media_fps if media_fps else now - started
            annotated = None
            if window is not None or outputs.wants_annotated_frames:
                annotated = draw_faces(to_bgr(frame), faces, shown_fps)
            outputs.write(summary.frames, time_s, faces, annotated)
            summary.frames += 1
            summary.faces += len(faces)
            labels.update(face.label for face in faces)
            summary.uncertain += sum(face.uncertain for face in faces)
            track_ids.update(face.track_id for face in faces)
            end = time.perf_counter()
            instant = 1.0 / max(end - last, 1e-6)
            shown_fps = instant if shown_fps is None else FPS_SMOOTHING * shown_fps + (1 - FPS_SMOOTHING) * instant
            last = end
            if window is not None and not window.show(annotated):
                stopped_by = "window closed (q/Esc)"
                break
            if config.max_frames is not None and summary.frames >= config.max_frames:
                stopped_by = f"max frames ({config.max_frames})"
                break
        else:
            stopped_by = getattr(source, "ended_reason", "") or "end of source"
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    finally:
        summary.seconds = time.perf_counter() - started
        summary.label_counts = dict(labels)
        summary.tracks = len(track_ids)
    return stopped_by
