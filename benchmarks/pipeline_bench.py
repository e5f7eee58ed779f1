"""`edge-bench pipeline`: the whole frame loop on a video, stage by stage.

Per frame: read and decode (the source's next frame), detect, preprocess and infer (from the
timings `EmotionDetector.stream` reports for every frame: the loop timed is the runtime's own,
the one `edge-run` runs), and draw. The
frame's total wall time also holds what no stage claims (tracking, bookkeeping). FPS is
frames over the summed frame times, after a few warm-up frames that are processed but not
counted (first-call allocations and graph tracing would otherwise weigh on short clips).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from benchmarks.rows import failed_row, ok_row
from benchmarks.stats import Clock, stage_summary, throughput

STAGES = ("read", "detect", "preprocess", "infer", "draw")
SEED_STYLE = "seed-style"


@dataclass(frozen=True)
class PipelineJob:
    """One pipeline configuration.

    Attributes:
        name: the row's name.
        source: `--source` spec ("demo", a video file...).
        model: model file ("" for the seed-style row's Keras file, which it also names here).
        backend: BACKENDS name.
        threads: inference and OpenCV threads.
        detect_scale: the detector runs on a copy resized by this factor.
        detect_every: the detector runs every N frames.
        detector: the DETECTORS row the runtime uses ("haar", "yunet"); the seed style is always Haar.
        detector_model: the detector's model file instead of the cached one ("": the cache's).
        max_frames: frames to time (after warm-up); 0 for the whole source.
        warmup_frames: frames processed first and not counted.
        style: "runtime" (EmotionDetector) or "seed" (the seed project's loop).
        precision: the model's precision, for the row.
    """

    name: str
    source: str
    model: str
    backend: str
    threads: int
    detect_scale: float = 0.5
    detect_every: int = 1
    detector: str = "haar"
    detector_model: str = ""
    max_frames: int = 0
    warmup_frames: int = 5
    style: str = "runtime"
    precision: str = ""

    def to_dict(self) -> dict:
        return {"kind": "pipeline", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> PipelineJob:
        return cls(**{k: v for k, v in data.items() if k != "kind"})

    def describe(self) -> dict:
        """The configuration fields every row carries."""
        return {
            "model": self.model,
            "backend": self.backend,
            "precision": self.precision,
            "threads": self.threads,
            "detect_scale": self.detect_scale if self.style == "runtime" else 1.0,
            "detect_every": self.detect_every if self.style == "runtime" else 1,
            "detector": self.detector if self.style == "runtime" else "haar",
            "detector_model": self.detector_model or None,
            "style": self.style,
        }


@dataclass
class FrameLoopResult:
    """Per-frame stage durations (seconds) of the counted frames."""

    stages: dict[str, list[float]]
    totals: list[float]
    faces: list[int]
    frame_shape: tuple[int, ...] | None = None

    @property
    def frames(self) -> int:
        return len(self.totals)

    def figures(self) -> dict:
        """The row's figures: fps, faces per frame, and mean/p50/p95 per stage in ms."""
        seconds = sum(self.totals)
        figures = {
            "fps": throughput(self.frames, seconds),
            "frames": self.frames,
            "faces_per_frame": sum(self.faces) / self.frames if self.frames else 0.0,
            "frame_size": f"{self.frame_shape[1]}x{self.frame_shape[0]}" if self.frame_shape else "",
        }
        for stage in (*STAGES, "total"):
            summary = stage_summary(self.totals if stage == "total" else self.stages[stage])
            figures.update({f"{stage}_{key}": value for key, value in summary.items()})
        return figures


def run_frame_loop(
    frames: Iterable,
    process: Callable,
    draw: Callable,
    clock: Clock = time.perf_counter,
    max_frames: int = 0,
    warmup_frames: int = 0,
) -> FrameLoopResult:
    """Times a frame loop.

    Args:
        frames: the source (any iterable of frames; reading the next one is the read stage).
        process: frames -> iterator of (faces, {"detect", "preprocess", "infer"} seconds), one
            per frame, pulling each frame when it needs it (the runtime's: `EmotionDetector.stream`).
        draw: (frame, faces, fps) -> anything.
        clock: seconds (a fake in tests).
        max_frames: stop after this many counted frames (0: the whole source).
        warmup_frames: frames processed first and not counted.
    """
    result = FrameLoopResult({stage: [] for stage in STAGES}, [], [])
    reads = TimedReads(frames, clock)
    index, fps = 0, None
    start = clock()
    for faces, timings in process(reads):
        processed = clock()
        draw(reads.frame, faces, fps)
        drawn = clock()
        index += 1
        # A frame's time runs from the end of the one before: its read, its processing, its drawing.
        total, start = drawn - start, drawn
        if index <= warmup_frames:
            continue
        fps = 1.0 / total if total > 0 else None
        result.frame_shape = result.frame_shape or tuple(reads.frame.shape)
        result.stages["read"].append(reads.seconds)
        for stage in ("detect", "preprocess", "infer"):
            result.stages[stage].append(float(timings.get(stage, 0.0)))
        result.stages["draw"].append(drawn - processed)
        result.totals.append(total)
        result.faces.append(len(faces))
        if max_frames and result.frames >= max_frames:
            break
    return result


class TimedReads:
    """The frames of a source, each read timed: `frame` is the last one read, `seconds` its read."""

    def __init__(self, frames: Iterable, clock: Clock) -> None:
        self.frames, self.clock = frames, clock
        self.frame, self.seconds = None, 0.0

    def __iter__(self):
        iterator = iter(self.frames)
        while True:
            started = self.clock()
            try:
                self.frame = next(iterator)
            except StopIteration:
                return
            self.seconds = self.clock() - started
            yield self.frame


def measure_pipeline(job: PipelineJob, open_source=None, build=None, clock: Clock = time.perf_counter) -> dict:
    """Runs one configuration on its source; returns its row (never raises for a failing run).

    Args:
        job: the configuration.
        open_source: spec -> iterable of frames with `close()` (default `edge_runtime.sources.open_source.open_source`).
        build: job -> (process, draw, close), `process` as `run_frame_loop` takes it (default: the
            runtime style's `EmotionDetector.stream` and draw_faces, or the seed style's loop).
        clock: seconds.
    """
    try:
        from benchmarks.model_bench import peak_rss_mb, set_thread_counts

        set_thread_counts(job.threads)
        if open_source is None:
            from edge_runtime.sources.open_source import open_source
        if build is None:
            build = build_seed_style if job.style == "seed" else build_runtime
        process, draw, close = build(job)
        try:
            source = open_source(job.source)
            try:
                result = run_frame_loop(source, process, draw, clock, job.max_frames, job.warmup_frames)
            finally:
                source.close()
        finally:
            close()
    except Exception as error:  # noqa: BLE001 - the row carries the failure
        from benchmarks.rows import error_text

        return failed_row(job.name, error_text(error), **job.describe())
    if result.frames == 0:
        return failed_row(job.name, f"{job.source}: no frames left after {job.warmup_frames} warm-up frames", **job.describe())
    return ok_row(job.name, **job.describe(), **result.figures(), peak_rss_mb=peak_rss_mb())


def build_runtime(job: PipelineJob):
    """The runtime's own loop, `EmotionDetector.stream` (detect, track, crop, one model call,
    smooth), and draw_faces."""
    from edge_runtime.detectors import DetectorSettings
    from edge_runtime.outputs.draw import draw_faces
    from edge_runtime.pipeline.emotion_detector import EmotionDetector

    # A benchmark never downloads: the detector file is the cache's or the one passed in.
    settings = DetectorSettings(name=job.detector, model=job.detector_model or None, detect_scale=job.detect_scale, download=False)
    detector = EmotionDetector(model=job.model, backend=job.backend, threads=job.threads, detector=settings,
                               detect_every=job.detect_every)

    def process(frames):
        for result in detector.stream(frames):
            yield result.faces, result.timings

    return process, draw_faces, detector.close


def build_seed_style(job: PipelineJob):
    """The seed project's loop on the same Keras model (see `benchmarks.seed_loop`)."""
    from benchmarks.seed_loop import SeedLoop

    loop = SeedLoop.load(job.model, threads=job.threads)

    def process(frames):
        for frame in frames:
            yield loop.process(frame)

    return process, loop.draw, loop.close
