"""The job: every video of a source, in chunks on workers, to records, summaries and a report.

Under `--out`, per video (a folder named as the video's path below the source):
`records.jsonl` (the one record schema, `edge_runtime.outputs.writers.face_record`), `summary.json`
and, with matplotlib installed, `timeline.png`. Across the job: `summary.csv` (one row per video
and per track; only what the videos and the model determine), `report.json` (what ran, failed
or was skipped, and how fast) and `manifest.json` (what is done, for a rerun). Every file is
written atomically; a video's files appear when the video is finished.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.model_files.metadata import file_sha256
from edge_runtime.outputs.atomic import remove_own_temporaries, remove_stranded, write_json_atomic, write_text_atomic
from edge_runtime.pipeline.stopping import Stopped, finalising, signal_name, uninterrupted
from edge_runtime.settings import ModelSettings
from edge_runtime.sources.base import SourceError
from edge_runtime.video_job.chunks import Chunk, ChunkResult, plan, probe
from edge_runtime.video_job.discover import Video, discover
from edge_runtime.video_job.manifest import Manifest
from edge_runtime.video_job.stitch import join_chunks
from edge_runtime.video_job.summary import VideoSummary, summary_csv

DEFAULT_CHUNK_MINUTES = 10.0
RECORDS_NAME, SUMMARY_NAME, TIMELINE_NAME = "records.jsonl", "summary.json", "timeline.png"
REPORT_NAME, SUMMARY_CSV_NAME = "report.json", "summary.csv"
# What changes the records: a video done under other settings is done again.
RECORD_SETTINGS = {
    "model": ("backend",),
    "detector": ("name", "score_threshold", "min_size", "detect_scale", "scale_factor", "min_neighbors"),
    "pipeline": ("detect_every", "smooth", "min_confidence", "cut_threshold", "min_likeness", "crop_margin", "flip_average"),
}


@dataclass(frozen=True)
class JobSettings:
    """How the job runs (the pipeline's own settings are the RunConfig's).

    Attributes:
        out: the results folder.
        workers: worker processes (or Ray actors); None: the machine's cores (the cluster's CPUs).
        chunk_minutes: a longer video is cut into chunks of at most this many minutes, run in parallel.
        ray: None for local workers; a Ray address, `auto`, or `local` (a Ray instance for the job).
    """

    out: Path
    workers: int | None = None
    chunk_minutes: float = DEFAULT_CHUNK_MINUTES
    ray: str | None = None


@dataclass
class JobReport:
    """What the job did (written as report.json)."""

    source: str
    out: str
    mode: str
    workers: int = 0
    model: str = ""
    detector: str = ""
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    photos_left: int = 0
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    stopped_by: str = ""
    signal: int = 0
    timelines: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["fps"] = round(self.fps, 2)
        data["seconds"] = round(self.seconds, 3)
        return data

    def lines(self) -> list[str]:
        lines = [
            f"videos: {len(self.done)} done, {len(self.failed)} failed, {len(self.skipped)} skipped | "
            f"{self.frames} frames, {self.faces} faces | {self.fps:.1f} FPS over {self.seconds:.1f} s "
            f"on {self.workers} {self.mode} worker(s)",
        ]
        lines += [f"failed: {reason if reason.startswith(name) else f'{name}: {reason}'}" for name, reason in self.failed.items()]
        if self.photos_left:
            lines.append(f"photos: {self.photos_left} image file(s) left out; run edge-run --source on the folder without --out for photos")
        if self.timelines:
            lines.append(f"timelines: {self.timelines}")
        lines.append(f"stopped: {self.stopped_by}")
        return lines


@dataclass
class _VideoState:
    video: Video
    frames_expected: int
    fps: float
    chunks: int
    results: dict[int, ChunkResult] = field(default_factory=dict)
    error: str = ""
    in_flight: int = 0


def run_job(config, settings: JobSettings, log=lambda line: None, progress=None, executor_factory=None) -> JobReport:
    """Runs the job `config.source` (a folder of videos, a video, or a list file) describes.

    Args:
        config: the pipeline's settings (`edge_runtime.pipeline.runner.RunConfig`).
        settings: the job's own.
        log: called with one line per event worth a line.
        progress: an object with `start(videos, frames)`, `advance(videos, frames)` and `stop()`
            (the CLI's progress bar), or None.
        executor_factory: builds the executor (tests); default: local processes or Ray.

    A stop signal (Ctrl-C, SIGTERM, SIGHUP) ends the job: the workers are stopped, the
    videos in flight are dropped (their part files removed), finished ones are kept, and the
    report says which signal (`signal`, `stopped_by`).

    Raises:
        SourceError: the source holds no video, or the manifest is unreadable.
    """
    from edge_runtime.pipeline.runner import build_detector

    # FFmpeg prints lines of its own for a damaged file (read at the process's first capture, and
    # inherited by the workers); the job names each bad video itself, once, in its report.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    discovery = discover(config.source)
    out = settings.out
    _prepare(out)
    # Load the pipeline once here: a bad model or detector is one line before any worker starts,
    # and `auto` is decided once for every worker.
    with build_detector(config) as probe_detector:
        model = ModelSettings(path=probe_detector.model_path, backend=probe_detector.backend.name,
                              threads=config.model.threads or 1, verify=config.model.verify)
        detector = dataclasses.replace(config.detector, name=probe_detector.detector_name)
        config = dataclasses.replace(config, model=model, detector=detector, display=False)
    fingerprint = {f"{stage}.{name}": _plain(getattr(getattr(config, stage), name))
                   for stage, names in RECORD_SETTINGS.items() for name in names}
    fingerprint["chunk_minutes"] = settings.chunk_minutes
    manifest = Manifest(out, file_sha256(config.model.path), fingerprint)
    report = JobReport(source=str(config.source), out=str(out), mode="ray" if settings.ray else "local",
                       model=str(config.model.path), detector=config.detector.name, photos_left=len(discovery.photos))
    states, queue = _plan(discovery.videos, manifest, settings, report)
    started = time.perf_counter()
    executor = None
    try:
        if queue:
            factory = executor_factory or _default_executor
            executor = factory(config, settings, out)
            report.startup_seconds = round(time.perf_counter() - started, 3)  # the pool, or Ray and its actors, asked to start
            report.workers = executor.workers
            if progress is not None:
                progress.start(len(states), sum(state.frames_expected for state in states.values()))
            _drive(executor, queue, states, manifest, out, config, report, log, progress)
        report.stopped_by = "end of videos"
    except KeyboardInterrupt as stop:
        report.stopped_by = signal_name(stop)
        report.signal = stop.signum if isinstance(stop, Stopped) else int(signal.SIGINT)
    finally:
        with finalising():
            if executor is not None:
                executor.close(kill=True)
            if progress is not None:
                progress.stop()
            _remove_parts(out, states)
            report.seconds = time.perf_counter() - started
            _write_job_files(out, discovery.videos, manifest, report)
    return report


def _default_executor(config, settings: JobSettings, out: Path):
    from edge_runtime.video_job.executors import LocalExecutor, RayExecutor

    if settings.ray:
        return RayExecutor(config, settings.workers, out, settings.ray)
    return LocalExecutor(config, settings.workers or os.cpu_count() or 1, out)


def _prepare(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SourceError(f"{out}: the results folder cannot be created ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise SourceError(f"{out}: the results folder is not writable")
    # Part files and temporaries a killed job left behind (their writer's process is gone).
    for folder, _, _ in os.walk(out):
        remove_stranded(folder)


def _plan(videos: list[Video], manifest: Manifest, settings: JobSettings, report: JobReport):
    states: dict[str, _VideoState] = {}
    queue: list[Chunk] = []
    for video in videos:
        if manifest.is_done(video):
            report.skipped[video.name] = "done before, unchanged"
            continue
        try:
            frames, fps = probe(video)
        except SourceError as error:
            report.failed[video.name] = str(error)
            manifest.record(video, "failed", str(error))
            continue
        chunks = plan(video, frames, fps, settings.chunk_minutes)
        states[video.name] = _VideoState(video, frames, fps, len(chunks))
        queue.extend(chunks)
    return states, queue


def _drive(executor, queue: list[Chunk], states, manifest, out: Path, config, report: JobReport, log, progress) -> None:
    position = 0
    while position < len(queue) or executor.in_flight():
        while position < len(queue) and executor.free_slots() > 0:
            chunk = queue[position]
            position += 1
            if states[chunk.video.name].error:
                continue  # another chunk of this video failed already
            states[chunk.video.name].in_flight += 1
            executor.submit(chunk)
        for chunk, outcome in executor.collect(timeout=0.2):
            state = states[chunk.video.name]
            state.in_flight -= 1
            if isinstance(outcome, BaseException):
                if not state.error:
                    state.error = str(outcome).splitlines()[0] if str(outcome) else type(outcome).__name__
            else:
                state.results[chunk.index] = outcome
            if progress is not None and not executor.reports_frames and not isinstance(outcome, BaseException):
                progress.advance(0, outcome.frames)
            if state.in_flight == 0 and (state.error or len(state.results) == state.chunks):
                _finish_video(state, manifest, out, config, report, log, progress)
        if progress is not None:
            frames = executor.frames_done()
            if frames:
                progress.advance(0, frames)


def _finish_video(state: _VideoState, manifest: Manifest, out: Path, config, report: JobReport, log, progress) -> None:
    """Joins a finished video's chunks into its files, or records why it failed."""
    name = state.video.name
    with uninterrupted():
        if state.error:
            for result in state.results.values():
                result.part.unlink(missing_ok=True)
            report.failed[name] = state.error
            manifest.record(state.video, "failed", state.error)
            log(f"failed: {name}: {state.error}")
        else:
            results = [state.results[index] for index in sorted(state.results)]
            folder = out / name
            summary = VideoSummary(name)
            join_chunks(results, folder / RECORDS_NAME, config.pipeline.min_likeness, summary.add)
            frames = sum(result.frames for result in results)
            unreadable = sum(result.unreadable for result in results)
            write_json_atomic(folder / SUMMARY_NAME, summary.to_dict(frames, state.fps, unreadable, state.chunks))
            report.timelines = _timeline(folder / RECORDS_NAME, folder / TIMELINE_NAME, name) or report.timelines
            manifest.record(state.video, "done")
            report.done.append(name)
            report.frames += frames
            report.faces += summary.faces.frames
        if progress is not None:
            progress.advance(1, 0)


def _timeline(records: Path, target: Path, name: str) -> str:
    """Draws the video's timeline when matplotlib is installed; returns a note when it is not."""
    try:
        from edge_runtime.video_job.timeline import draw_timeline
    except ImportError as error:
        return str(error)
    draw_timeline(records, target, name)
    return ""


def _write_job_files(out: Path, videos: list[Video], manifest: Manifest, report: JobReport) -> None:
    """summary.csv over every video done (now or before) and report.json."""
    import json

    rows = []
    for video in videos:
        summary_file = out / video.name / SUMMARY_NAME
        if manifest.videos.get(video.name, {}).get("status") == "done" and summary_file.is_file():
            rows.extend(json.loads(summary_file.read_text(encoding="utf-8"))["rows"])
    write_text_atomic(out / SUMMARY_CSV_NAME, summary_csv(rows))
    write_json_atomic(out / REPORT_NAME, report.to_dict())


def _remove_parts(out: Path, states: dict[str, _VideoState]) -> None:
    """Removes the part files of videos that did not finish (an interrupted job): this process's
    own, and those of workers that are gone (their names carry the writer's process id)."""
    for state in states.values():
        folder = out / state.video.name
        remove_own_temporaries(folder)
        remove_stranded(folder)


def _plain(value):
    return str(value) if isinstance(value, Path) else value

