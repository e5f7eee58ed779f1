"""The frame loop behind `edge-run`: source -> EmotionDetector -> window and outputs -> summary.

Everything the loop opens is closed in one `finally`, so Ctrl-C, the end of the source, `q`
in the window and an error all leave finished output files.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.detectors import DetectorFallbackWarning, DetectorSettings
from edge_runtime.outputs.display import Window
from edge_runtime.outputs.paths import OutputError, check_folder_writable, refuse_shared_paths
from edge_runtime.outputs.photos import AnnotatedImages
from edge_runtime.outputs.rotation import Rotation
from edge_runtime.outputs.writers import Outputs
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.pipeline.stopping import Stopped, finalising, signal_name
from edge_runtime.pipeline.stream import stream_frames
from edge_runtime.settings import ModelSettings, PipelineSettings
from edge_runtime.sources.base import SourceError
from edge_runtime.sources.open_source import (
    DEFAULT_MAX_REOPEN,
    DEFAULT_STALL_TIMEOUT_S,
    FrameSource,
    open_source,
    source_file,
)

NO_FACE_HINT = (
    "for already-cropped faces use --whole-image; for small faces lower --min-size or raise --detect-scale; "
    "for turned or tilted faces use --detector yunet"
)
SKIPPED_NAMED = 5  # image files the summary names; a folder of thousands gets a count beyond


@dataclass(frozen=True)
class RunConfig:
    """Everything `edge-run` was asked to do (the CLI builds it from its options): one settings
    object per stage of the pipeline (model, detector, pipeline), and what surrounds the loop."""

    source: str = "0"
    model: ModelSettings = ModelSettings()
    detector: DetectorSettings = DetectorSettings()
    pipeline: PipelineSettings = PipelineSettings()
    whole_image: bool = False
    display: bool = True
    jsonl: Path | None = None
    csv: Path | None = None
    rotation: Rotation | None = None  # of jsonl and csv
    save_video: Path | None = None
    save_images: Path | None = None
    overlay: str = "bars"
    max_frames: int | None = None
    loop: bool = False
    realtime: bool = False
    more_sources: tuple[str, ...] = ()  # `--source` given more than once: read and classified together
    stall_timeout: float = DEFAULT_STALL_TIMEOUT_S
    max_reopen: int = DEFAULT_MAX_REOPEN
    serve: tuple[str, int] | None = None  # (host, port) of `--serve`
    serve_token: str | None = None
    serve_fps: float = 15.0
    serve_max_clients: int = 8


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        source: what was opened.
        model: the model file and backend.
        detector: the face detector used.
        detector_note: under `auto`, why another detector was not used ("" when none).
        frames: frames processed.
        faces: faces found, summed over frames.
        tracks: distinct track ids seen.
        seconds: wall time of the loop (model loading excluded).
        label_counts: faces per label, summed over frames.
        uncertain: faces below `min_confidence` (and those without a label).
        unlabelled: faces the model's output for was not finite (NaN or infinite): no label.
        unreadable: frames that could not be decoded and were skipped.
        skipped: "<file>: <why>" for each image file skipped (undecodable, cut short, too small).
        dropped: live frames replaced by newer ones before being processed.
        reopens: times a live source was reopened.
        stopped_by: why the loop ended.
        stage_seconds: total seconds spent in detect / preprocess / infer.
        signal: the signal that ended the run (SIGINT for Ctrl-C), or 0.
        failure: why the run failed although it ended cleanly (nothing could be decoded, a
            live source stalled for good), as one line; "" for a successful run.
        photos: the source was a photo or a folder of photos, whose frames have no rate:
            the summary gives their time but no FPS.
    """

    source: str = ""
    model: str = ""
    detector: str = ""
    detector_note: str = ""
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    label_counts: dict[str, int] = field(default_factory=dict)
    uncertain: int = 0
    unlabelled: int = 0
    unreadable: int = 0
    skipped: list[str] = field(default_factory=list)
    dropped: int = 0
    reopens: int = 0
    stopped_by: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    signal: int = 0
    failure: str = ""
    photos: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def _pace(self) -> str:
        # Photos are not a stream: frames per second of one photo (or of a folder read as
        # fast as the disk allows) would read as a camera rate that does not exist.
        if self.photos:
            return f"{self.seconds:.2f} s"
        return f"{self.fps:.1f} FPS over {self.seconds:.2f} s"

    def lines(self) -> list[str]:
        """The end-of-run summary, one fact per line."""
        per_frame = {k: 1000 * v / self.frames for k, v in self.stage_seconds.items()} if self.frames else {}
        stages = ", ".join(f"{k} {v:.1f} ms" for k, v in per_frame.items())
        counts = ", ".join(f"{label} {n}" for label, n in self.label_counts.items() if n) or "none"
        detector = self.detector + (f" ({self.detector_note})" if self.detector_note else "")
        lines = [
            f"source: {self.source} | model: {self.model} | detector: {detector}",
            f"frames: {self.frames} | faces: {self.faces} | tracks: {self.tracks} | {self._pace()}",
            f"per frame: {stages}" if stages else "per frame: -",
            f"labels: {counts}" + (f" | uncertain: {self.uncertain}" if self.uncertain else "")
            + (f" | no label (model output not finite): {self.unlabelled}" if self.unlabelled else ""),
        ]
        if self.unreadable or self.dropped or self.reopens:
            lines.append(f"unreadable frames: {self.unreadable} | dropped live frames: {self.dropped} | reopens: {self.reopens}")
        if self.skipped:
            more = f"; and {len(self.skipped) - SKIPPED_NAMED} more" if len(self.skipped) > SKIPPED_NAMED else ""
            lines.append("skipped images: " + "; ".join(self.skipped[:SKIPPED_NAMED]) + more)
        if self.frames and not self.faces:
            lines.append(f"no face found: {self.detector} found none in {self.frames} frame(s); {NO_FACE_HINT}")
        lines.append(f"stopped: {self.stopped_by}")
        return lines


def build_detector(config: RunConfig) -> EmotionDetector:
    """The EmotionDetector a RunConfig describes (loads the model and the face detector)."""
    return EmotionDetector.from_settings(config.model, config.detector, config.pipeline)


def run(config: RunConfig, detector: EmotionDetector | None = None, source: FrameSource | None = None) -> RunSummary:
    """Runs the loop until the source ends, `max_frames`, `q`/Esc, or Ctrl-C.

    Args:
        config: what to run.
        detector: an EmotionDetector to use instead of building one (it is not closed).
        source: a FrameSource to use instead of opening `config.source` (it is closed).

    Raises:
        DisplayError, BackendError, DetectorError, SourceError, OutputError: one-line messages.
        Stopped: a stop signal arrived before the first frame (see `edge_runtime.pipeline.stopping`).
    """
    if config.more_sources:
        return run_many(config, detector)
    # Fail before loading anything: a bad output path or a missing display costs no model load.
    refuse_shared_paths(
        source_file(config.source) if source is None else None,
        {"--jsonl": config.jsonl, "--csv": config.csv, "--save-video": config.save_video},
    )
    if config.save_images is not None:
        check_folder_writable(config.save_images, "--save-images")
    window = Window() if config.display else None
    server = _start_server(config) if config.serve else None
    own_detector = detector is None
    summary = RunSummary(stage_seconds={"detect": 0.0, "preprocess": 0.0, "infer": 0.0})
    outputs = None
    failed = True
    try:
        detector = _loaded(config, detector, summary)
        if source is None:
            source = open_source(
                config.source, loop=config.loop, stall_timeout=config.stall_timeout, max_reopen=config.max_reopen,
                photo_check=detector.photo_problem, realtime=config.realtime,
            )
        summary.source, summary.photos = source.name, source.is_photo
        images = AnnotatedImages(config.save_images, source) if config.save_images is not None else None
        outputs = Outputs(config.jsonl, config.csv, config.save_video, video_fps=source.fps, labels=detector.labels,
                          rotation=config.rotation)
        if server is not None:
            server.hub.run_info.update(detector=detector.detector_name, backend=detector.backend.name,
                                       model=Path(detector.model_path).name)
        summary.stopped_by = _loop(config, detector, source, window, outputs, summary, images, server.hub if server else None)
        failed = False
    finally:
        # A second signal during this block is recorded, not raised: the video is finalised.
        with finalising():
            try:
                if outputs is not None:
                    outputs.close()
            except OutputError:
                # An output that fails as it closes (the disk filled up) must not hide the
                # error that ended the run.
                if not failed:
                    raise
            finally:
                if source is not None:
                    source.close()
                    summary.unreadable, summary.dropped, summary.reopens = source.unreadable, source.dropped, source.reopens
                    summary.skipped = list(getattr(source, "skipped", []))
                if window is not None:
                    window.close()
                if server is not None:
                    server.stop()
                if own_detector and detector is not None:
                    detector.close()
    summary.failure = _failure(summary, source)
    return summary


def _failure(summary: RunSummary, source: FrameSource) -> str:
    if summary.signal:
        return ""
    ended_reason = getattr(source, "ended_reason", "")
    if ended_reason:
        return ended_reason
    if summary.frames == 0 and summary.stopped_by == "end of source":
        if len(summary.skipped) == 1:  # one image: what is wrong with it says it all
            return f"{summary.skipped[0]}; nothing was processed"
        return f"{summary.source}: no frame could be read ({summary.unreadable} unreadable); nothing was processed"
    return ""


def run_many(config: RunConfig, detector: EmotionDetector | None = None) -> RunSummary:
    """`run` for several sources (`config.source` and `config.more_sources`) in one process: each
    read on its own thread, the faces of all that are ready classified in one model call, every
    record naming its source (see `edge_runtime.pipeline.many_sources`).

    Raises:
        DisplayError, BackendError, DetectorError, SourceError, OutputError, ServeError: one line.
    """
    import threading

    from edge_runtime.pipeline.many_sources import SourceReader, loop_many

    names = (config.source, *config.more_sources)
    if len(set(names)) < len(names):
        raise SourceError(f"--source {', '.join(names)}: a source is given twice")
    if config.display or config.save_video is not None or config.save_images is not None:
        raise OutputError("a window, --save-video and --save-images take one source; with several, use --no-display "
                          "and --jsonl/--csv, or --serve to watch them all")
    for name in names:
        refuse_shared_paths(source_file(name), {"--jsonl": config.jsonl, "--csv": config.csv})
    server = _start_server(config) if config.serve else None
    own_detector = detector is None
    summary = RunSummary(stage_seconds={"detect": 0.0, "preprocess": 0.0, "infer": 0.0})
    outputs, sources, readers = None, [], []
    changed = threading.Condition()
    try:
        detector = _loaded(config, detector, summary)
        for name in names:
            sources.append(open_source(name, loop=config.loop, stall_timeout=config.stall_timeout, max_reopen=config.max_reopen,
                                       realtime=config.realtime))
            if sources[-1].is_photo:
                raise SourceError(f"{name}: photos cannot be one of several sources; give cameras, streams or videos")
        summary.source = ", ".join(source.name for source in sources)
        outputs = Outputs(config.jsonl, config.csv, None, video_fps=None, labels=detector.labels, rotation=config.rotation)
        if server is not None:
            server.hub.run_info.update(detector=detector.detector_name, backend=detector.backend.name,
                                       model=Path(detector.model_path).name)
        readers = [SourceReader(source, changed) for source in sources]
        try:
            summary.stopped_by = loop_many(config, detector, readers, changed, outputs, summary, server.hub if server else None)
        except KeyboardInterrupt as stop:
            summary.stopped_by = signal_name(stop)
            summary.signal = stop.signum if isinstance(stop, Stopped) else int(signal.SIGINT)
    finally:
        with finalising():
            try:
                if outputs is not None:
                    outputs.close()
            finally:
                for reader in readers:
                    reader.close()
                for source in sources[len(readers):]:
                    source.close()
                summary.unreadable = sum(source.unreadable for source in sources)
                summary.dropped = sum(reader.dropped for reader in readers)
                summary.reopens = sum(source.reopens for source in sources)
                if server is not None:
                    server.stop()
                if own_detector and detector is not None:
                    detector.close()
    ended = [f"{reader.name}: {reader.error or reader.source.ended_reason}" for reader in readers
             if reader.error or getattr(reader.source, "ended_reason", "")]
    summary.failure = "" if summary.signal else "; ".join(ended)
    return summary


def _loaded(config: RunConfig, detector: EmotionDetector | None, summary: RunSummary) -> EmotionDetector:
    """The run's pipeline (built from the config unless given), named in the summary."""
    if detector is None:
        # The summary names the fallback detector and why (detector_note): the same
        # reason as a warning on top would be said twice.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DetectorFallbackWarning)
            detector = build_detector(config)
    summary.model = f"{detector.model_path} ({detector.backend.name})"
    summary.detector, summary.detector_note = detector.detector_name, detector.detector_note
    return detector


def _start_server(config: RunConfig):
    from edge_runtime.serve import ServeError
    from edge_runtime.serve.hub import Hub

    try:
        from edge_runtime.serve.app import Server
    except ImportError:
        from edge_runtime.model_files.formats import install_hint

        raise ServeError(f"--serve needs aiohttp and prometheus-client: {install_hint('serve')}") from None

    host, port = config.serve
    server = Server(Hub(config.serve_fps), host, port, config.serve_token, config.serve_max_clients, config.stall_timeout)
    server.start()
    return server


def _loop(config, detector, source, window, outputs, summary, images=None, hub=None) -> str:
    if hub is not None:
        from edge_runtime.serve.hub import FrameView
    labels: Counter = Counter({label: 0 for label in detector.labels})
    # Track ids only grow within a video, so counting the ids above the highest seen counts
    # distinct tracks in constant memory (a set of every id would grow for as long as the run).
    highest_id = 0
    started = time.perf_counter()
    stopped_by = "end of source"
    # The server draws only the frames a viewer takes (see `edge_runtime.serve.hub`).
    annotate = window is not None or outputs.wants_annotated_frames or images is not None
    try:
        for result in stream_frames(detector, source, whole_image=config.whole_image, annotate=annotate, overlay=config.overlay):
            for stage, seconds in result.timings.items():
                summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
            faces = result.faces
            context = result.record_context(detector.detector_name)
            outputs.write(result.index, result.time, faces, result.annotated, context)
            if images is not None:
                images.write(result.annotated)
            if hub is not None:
                hub.publish(result.source, FrameView(result.frame, faces, result.index, result.time, context, result.fps,
                                                     config.overlay, result.annotated), result.timings, source.dropped)
            summary.frames += 1
            summary.faces += len(faces)
            labels.update(face.label for face in faces if face.label is not None)
            summary.unlabelled += sum(face.label is None for face in faces)
            summary.uncertain += sum(face.uncertain for face in faces)
            if source.is_photo:
                summary.tracks += len(faces)  # ids start again at 1 in every photo
            else:
                new_ids = {face.track_id for face in faces if face.track_id > highest_id}
                summary.tracks += len(new_ids)
                highest_id = max(new_ids, default=highest_id)
            if window is not None and not window.show(result.annotated):
                stopped_by = "window closed (q/Esc)"
                break
            if config.max_frames is not None and summary.frames >= config.max_frames:
                stopped_by = f"max frames ({config.max_frames})"
                break
        else:
            stopped_by = getattr(source, "ended_reason", "") or "end of source"
    except KeyboardInterrupt as stop:
        stopped_by = signal_name(stop)
        summary.signal = stop.signum if isinstance(stop, Stopped) else int(signal.SIGINT)
    finally:
        summary.seconds = time.perf_counter() - started
        summary.label_counts = dict(labels)
    return stopped_by
