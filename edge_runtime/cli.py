"""`edge-run`: live or headless facial-emotion recognition on a webcam, stream, video or images.

    edge-run                                   # webcam 0, bundled model, a window
    edge-run --source demo --no-display        # the bundled clip, headless
    edge-run --source clip.mp4 --no-display --jsonl faces.jsonl --save-video out.mp4
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_runtime.backends import BackendError
from edge_runtime.choices import BackendChoice, DetectorChoice, choice_enum
from edge_runtime.cli_help import HelpCommand, VersionOption, examples
from edge_runtime.detectors import DetectorError, DetectorSettings, fetch_all
from edge_runtime.detectors.table import defaults_text
from edge_runtime.limits import (
    CHUNK_MINUTES,
    CROP_MARGIN,
    CUT_THRESHOLD,
    DETECT_EVERY,
    DETECT_SCALE,
    HAAR_MIN_NEIGHBORS,
    HAAR_SCALE_FACTOR,
    JOB_WORKERS,
    MAX_FRAMES,
    MAX_REOPEN,
    MIN_CONFIDENCE,
    MIN_FACE_SIZE,
    MIN_LIKENESS,
    ROTATE_KEEP,
    SCORE_THRESHOLD,
    SERVE_FPS,
    SERVE_MAX_CLIENTS,
    SMOOTH,
    STALL_TIMEOUT_S,
    max_threads,
)
from edge_runtime.model_files.bundled import DefaultModelError
from edge_runtime.model_files.formats import BACKEND_NAMES
from edge_runtime.model_files.metadata import MetadataError
from edge_runtime.outputs.display import DisplayError
from edge_runtime.outputs.draw import OVERLAYS
from edge_runtime.outputs.paths import writes_to_stdout
from edge_runtime.outputs.rotation import DEFAULT_KEEP, Rotation, parse_duration, parse_size, rotation_for
from edge_runtime.outputs.writers import OutputError
from edge_runtime.pipeline.runner import RunConfig, RunSummary, run
from edge_runtime.pipeline.stopping import SIGNAL_NAMES, Stopped, stop_signals
from edge_runtime.serve import ServeError, is_loopback, parse_address
from edge_runtime.settings import ModelSettings, PipelineSettings
from edge_runtime.sources.open_source import DEFAULT_MAX_REOPEN, DEFAULT_STALL_TIMEOUT_S, SourceError
from edge_runtime.video_job.job import DEFAULT_CHUNK_MINUTES, JobSettings, run_job
from edge_runtime.video_job.progress import JobProgress

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Facial-emotion recognition at the edge, live or headless.")

DOMAIN_ERRORS = (BackendError, DefaultModelError, DetectorError, DisplayError, MetadataError, OutputError, SourceError, ServeError)

EXIT_STATUS_HELP = (
    "Exit status: 0 when the source ended, --max-frames was reached or the window was closed; "
    "1 for an error, a source of which no frame could be read, or a live source that stalled for good; "
    "2 for a usage error; 130, 143 or 129 when stopped by Ctrl-C, SIGTERM or SIGHUP "
    "(outputs are finished and the summary printed first)."
)


# Choices come from the tables, so a new backend, detector or overlay is a new row there.
OverlayChoice = choice_enum("OverlayChoice", OVERLAYS)
DEFAULT_DETECTOR, DEFAULT_OVERLAY = DetectorChoice("auto"), OverlayChoice("bars")


def _fetch_models(value: bool) -> None:
    """`--fetch-models`: download and verify every detector file now, then exit."""
    if not value:
        return
    try:
        for path in fetch_all():
            typer.echo(f"ok {path}")
    except DetectorError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(0)


def _parsed_by(parse):
    """A typer parser from a library one: its ValueError becomes typer's usage error (status 2)
    naming the option, as a bound's `min`/`max` does."""

    def parser(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None

    return parser


EXAMPLES = examples(
    "edge-run --source demo --no-display --jsonl demo.jsonl   # the bundled clip, headless, one JSON record per face",
    "edge-run                                                 # webcam 0, bundled model, a window (q or Esc quits)",
    "edge-run --source clip.mp4 --no-display --csv faces.csv --save-video annotated.mp4",
    "edge-run --source rtsp://camera.local/stream --backend tflite --threads 2 --detect-every 2",
    "edge-run --source photos/ --no-display --jsonl photos.jsonl --save-images annotated/   # every photo, each alone",
    "edge-run --source 0 --source rtsp://door.local/stream --serve 8080   # two cameras in one process, in a browser",
    "edge-run --source demo --detector haar --no-display   # the seed's Haar cascade instead of YuNet",
    "edge-run --fetch-models   # fetch and verify the YuNet file now, for a device that will run offline",
)


@app.command(cls=HelpCommand, epilog=f"{EXAMPLES}\n\n{EXIT_STATUS_HELP}")
def main(
    model: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, help="Model file (.onnx, .tflite, .keras); default: the bundled model."),
    ] = None,
    backend: Annotated[
        BackendChoice, typer.Option(help=f"Inference runtime; auto: by the model's suffix (bundled: {', '.join(BACKEND_NAMES)}).")
    ] = BackendChoice.auto,
    threads: Annotated[
        Optional[int], typer.Option(min=1, max=max_threads(), help="Inference threads (default: the runtime's).")
    ] = None,
    source: Annotated[
        Optional[list[str]],
        typer.Option(help="Webcam index, video file, image, folder of images, rtsp/http URL, or 'demo' (default: 0); "
                     "give it more than once to read several cameras, streams or videos in one process."),
    ] = None,
    detector: Annotated[
        DetectorChoice,
        typer.Option(help="Face detector; auto: YuNet when its file is cached or can be fetched, else Haar (the seed's)."),
    ] = DEFAULT_DETECTOR,
    detector_model: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, help="YuNet ONNX file to use instead of the cached download."),
    ] = None,
    fetch_models: Annotated[
        bool,
        typer.Option("--fetch-models", is_eager=True, callback=_fetch_models,
                     help="Download and verify the detector files into the cache, then exit (for offline devices)."),
    ] = False,
    score_threshold: Annotated[
        Optional[float],
        typer.Option(min=SCORE_THRESHOLD.low, max=SCORE_THRESHOLD.high,
                     help=f"Least YuNet face score (default: {defaults_text('score_threshold')})."),
    ] = None,
    cascade: Annotated[
        Optional[Path], typer.Option(exists=True, dir_okay=False, help="Haar cascade XML (default: OpenCV's frontal face).")
    ] = None,
    scale_factor: Annotated[
        Optional[float],
        typer.Option(min=HAAR_SCALE_FACTOR.low, max=HAAR_SCALE_FACTOR.high,
                     help=f"Haar pyramid step; larger is faster (default: {defaults_text('scale_factor')})."),
    ] = None,
    min_neighbors: Annotated[
        Optional[int],
        typer.Option(min=HAAR_MIN_NEIGHBORS.low, max=HAAR_MIN_NEIGHBORS.high,
                     help=f"Haar hits a face needs; larger, fewer false faces (default: {defaults_text('min_neighbors')})."),
    ] = None,
    min_size: Annotated[
        Optional[int],
        typer.Option(
            min=MIN_FACE_SIZE.low, max=MIN_FACE_SIZE.high,
            help=f"Smallest face side, in source pixels (default: {defaults_text('min_size')}).",
        ),
    ] = None,
    detect_scale: Annotated[
        Optional[float],
        typer.Option(min=DETECT_SCALE.low, max=DETECT_SCALE.high,
                     help=f"Detect on a copy resized by this factor (default: {defaults_text('detect_scale')})."),
    ] = None,
    whole_image: Annotated[
        bool,
        typer.Option("--whole-image", help="Classify every image as one face, without detection (already-cropped faces)."),
    ] = False,
    detect_every: Annotated[
        int,
        typer.Option(min=DETECT_EVERY.low, max=DETECT_EVERY.high, help="Detect every N frames; faces keep their last boxes in between."),
    ] = PipelineSettings.detect_every,
    smooth: Annotated[
        float, typer.Option(min=SMOOTH.low, max=SMOOTH.high, help="Per-face probability smoothing (weight of the past; 0: off).")
    ] = PipelineSettings.smooth,
    min_confidence: Annotated[
        float, typer.Option(min=MIN_CONFIDENCE.low, max=MIN_CONFIDENCE.high, help="Below this, a face is shown as uncertain.")
    ] = PipelineSettings.min_confidence,
    cut_threshold: Annotated[
        float,
        typer.Option(min=CUT_THRESHOLD.low, max=CUT_THRESHOLD.high,
                     help="A frame whose brightness pattern changes this much from the one before (mean "
                     "change, 0-255, exposure aside) is a shot cut and ends every face track; 0: off."),
    ] = PipelineSettings.cut_threshold,
    min_likeness: Annotated[
        float,
        typer.Option(min=MIN_LIKENESS.low, max=MIN_LIKENESS.high,
                     help="A face whose crop looks less like its track's last crop than this "
                     "(correlation) starts a new track, so one person's label never carries onto the next; 0: off."),
    ] = PipelineSettings.min_likeness,
    crop_margin: Annotated[
        Optional[float],
        typer.Option(
            min=CROP_MARGIN.low, max=CROP_MARGIN.high,
            help="Extra margin around the detector's crop, fraction of its side (default: the model's).",
        ),
    ] = None,
    flip_average: Annotated[
        bool,
        typer.Option("--flip-average/--no-flip-average", help="Average each face with its mirror image (more accurate, 2x inference)."),
    ] = PipelineSettings.flip_average,
    verify_model: Annotated[
        bool,
        typer.Option(
            "--verify-model/--no-verify-model",
            help="Check the model file against the checksum in its metadata; turn off for a model edited on purpose.",
        ),
    ] = ModelSettings.verify,
    no_display: Annotated[bool, typer.Option("--no-display", help="No window (headless).")] = False,
    jsonl: Annotated[
        Optional[Path],
        typer.Option(dir_okay=False, help="Write one JSON record per face per frame, flushed each frame; '-': standard output."),
    ] = None,
    csv: Annotated[
        Optional[Path], typer.Option(dir_okay=False, help="Write the same records as a CSV table; '-': standard output.")
    ] = None,
    rotate_size: Annotated[
        Optional[int],
        typer.Option(parser=_parsed_by(parse_size), metavar="SIZE",
                     help="Rotate the --jsonl and --csv files before one grows past SIZE: bytes, or with k, M, G, T (100M)."),
    ] = None,
    rotate_every: Annotated[
        Optional[float],
        typer.Option(parser=_parsed_by(parse_duration), metavar="DURATION",
                     help="Rotate them on the clock every DURATION (1h: on the hour, UTC): seconds, or with s, m, h, d."),
    ] = None,
    rotate_keep: Annotated[
        Optional[int],
        typer.Option(min=ROTATE_KEEP.low, max=ROTATE_KEEP.high,
                     help=f"Rotated files kept per output; the oldest are deleted (default: {DEFAULT_KEEP})."),
    ] = None,
    save_video: Annotated[
        Optional[Path], typer.Option(dir_okay=False, help="Write the annotated video (.mp4, .avi, .mkv).")
    ] = None,
    save_images: Annotated[
        Optional[Path], typer.Option(file_okay=False, help="Write the annotated copy of each input image into this folder.")
    ] = None,
    overlay: Annotated[
        OverlayChoice, typer.Option(help="What is drawn on each face: bars (label and probability bars), labels, none.")
    ] = DEFAULT_OVERLAY,
    max_frames: Annotated[Optional[int], typer.Option(min=MAX_FRAMES.low, max=MAX_FRAMES.high, help="Stop after N frames.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Play a video file (or the demo) again from the start at its end.")] = False,
    realtime: Annotated[
        bool,
        typer.Option("--realtime", help="Play a video file at its own frame rate, dropping (and counting) frames when behind, "
                     "as a camera would; without it a file plays as fast as it decodes."),
    ] = False,
    stall_timeout: Annotated[
        float,
        typer.Option(
            min=STALL_TIMEOUT_S.low,
            max=STALL_TIMEOUT_S.high,
            help="Seconds a camera or stream may go without a new frame (none, or the same picture) before it is "
            "reopened; also its open and read time-out.",
        ),
    ] = DEFAULT_STALL_TIMEOUT_S,
    max_reopen: Annotated[
        int,
        typer.Option(
            min=MAX_REOPEN.low,
            max=MAX_REOPEN.high,
            help="Reopen attempts in a row without a new frame before a stalled source ends the run (status 1); "
            "that is within about (max-reopen + 1) x stall-timeout plus the waits between attempts (0.5 s, doubling, at most 8 s).",
        ),
    ] = DEFAULT_MAX_REOPEN,
    serve: Annotated[
        Optional[str],
        typer.Option(metavar="[HOST:]PORT", help="Serve the run over HTTP: the page, /stream.mjpg, /events, /snapshot.jpg, "
                     "/healthz, /metrics (pip install -e \".[serve]\"); host 127.0.0.1 unless given; implies --no-display."),
    ] = None,
    serve_token: Annotated[
        Optional[str],
        typer.Option(envvar="EDGE_EMOTION_TOKEN", show_envvar=True,
                     help="The token a viewer must give (?token= once, then a cookie; or Authorization: Bearer); "
                     "required off loopback."),
    ] = None,
    serve_no_auth: Annotated[
        bool, typer.Option("--serve-no-auth", help="Serve off loopback without a token (anyone who reaches the port sees the camera).")
    ] = False,
    serve_fps: Annotated[
        float, typer.Option(min=SERVE_FPS.low, max=SERVE_FPS.high, help="Frames a second sent to each viewer of /stream.mjpg.")
    ] = 15.0,
    serve_max_clients: Annotated[
        int, typer.Option(min=SERVE_MAX_CLIENTS.low, max=SERVE_MAX_CLIENTS.high, help="Streams open at once; the next gets 503.")
    ] = 8,
    out: Annotated[
        Optional[Path],
        typer.Option(file_okay=False, help="Process every video under --source (a folder, a video, or a list file of videos) as "
                     "a job into this folder: records, summary and timeline per video, summary.csv, report.json; resumable."),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(min=JOB_WORKERS.low, max=JOB_WORKERS.high,
                     help="Job worker processes (default: the cores; with --ray: the cluster's CPUs)."),
    ] = None,
    chunk_minutes: Annotated[
        float,
        typer.Option(min=CHUNK_MINUTES.low, max=CHUNK_MINUTES.high,
                     help="A job cuts a longer video into chunks of this many minutes, run in parallel."),
    ] = DEFAULT_CHUNK_MINUTES,
    ray: Annotated[
        Optional[str],
        typer.Option(help="Run the job on Ray: a cluster address (host:port or auto), or local for a Ray instance of its own "
                     "(pip install -e \".[cluster]\")."),
    ] = None,
    version: VersionOption = None,
) -> None:
    """Detect faces and classify their expression; a summary is printed at the end."""
    try:
        detector_settings = DetectorSettings(
            name=detector.value, model=detector_model, cascade=cascade, detect_scale=detect_scale, min_size=min_size,
            score_threshold=score_threshold, scale_factor=scale_factor, min_neighbors=min_neighbors,
        )
    except DetectorError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    config = RunConfig(
        source=(source or ["0"])[0],
        more_sources=tuple((source or [])[1:]),
        model=ModelSettings(path=model, backend=backend.value, threads=threads, verify=verify_model),
        detector=detector_settings,
        pipeline=PipelineSettings(detect_every=detect_every, smooth=smooth, min_confidence=min_confidence, crop_margin=crop_margin,
                                  flip_average=flip_average, cut_threshold=cut_threshold, min_likeness=min_likeness),
        whole_image=whole_image,
        display=not no_display,
        jsonl=jsonl,
        csv=csv,
        rotation=_rotation(rotate_size, rotate_every, rotate_keep, jsonl, csv),
        save_video=save_video,
        save_images=save_images,
        overlay=overlay.value,
        max_frames=max_frames,
        loop=loop,
        realtime=realtime,
        stall_timeout=stall_timeout,
        max_reopen=max_reopen,
    )
    if serve is not None:
        config = dataclasses.replace(config, display=False, **_serve_settings(serve, serve_token, serve_no_auth),
                                     serve_fps=serve_fps, serve_max_clients=serve_max_clients)
    _quiet_opencv()
    if out is not None and config.more_sources:
        _usage_error("--out takes one --source (a folder, a video or a list file of videos)")
    if out is not None:
        _run_video_job(config, JobSettings(out, workers, chunk_minutes, ray), (jsonl, csv, save_video, save_images), no_display)
    elif workers is not None or ray is not None:
        _usage_error("--workers and --ray run a video job: give --out DIR too")
    with stop_signals() as stops:
        try:
            summary = run(config)
        except DOMAIN_ERRORS as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        except Stopped as stop:
            typer.echo(f"stopped by {SIGNAL_NAMES.get(stop.signum, stop.signum)} before the first frame", err=True)
            raise typer.Exit(stops.exit_status) from None
    _report(summary, (jsonl, csv, save_video))
    if summary.failure:
        typer.echo(f"error: {summary.failure}", err=True)
        raise typer.Exit(1)
    raise typer.Exit(stops.exit_status)


def _run_video_job(config: RunConfig, settings: JobSettings, file_outputs: tuple, no_display: bool) -> None:
    """`--out`: the video job; exits with its status."""
    if any(path is not None for path in file_outputs):
        _usage_error("--out writes each video's records under it; leave out --jsonl, --csv, --save-video and --save-images")
    with stop_signals() as stops:
        try:
            report = run_job(config, settings, log=lambda line: typer.echo(line, err=True), progress=JobProgress())
        except (*DOMAIN_ERRORS, RuntimeError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"wrote {settings.out / 'summary.csv'} and {settings.out / 'report.json'}")
    if report.signal:
        raise typer.Exit(stops.exit_status or 128 + report.signal)
    if report.failed:
        typer.echo(f"error: {len(report.failed)} of {len(report.failed) + len(report.done)} video(s) failed; "
                   f"reasons in {settings.out / 'report.json'}; run the same command again to retry them", err=True)
        raise typer.Exit(1)
    raise typer.Exit(0)


def _serve_settings(address: str, token: str | None, no_auth: bool) -> dict:
    """`--serve` and its token as RunConfig fields; a usage error for a bad address, or for a
    host off loopback with neither a token nor --serve-no-auth."""
    try:
        host, port = parse_address(address)
    except ValueError as error:
        _usage_error(f"Invalid value for '--serve': {error}")
    if not is_loopback(host) and not token:
        if not no_auth:
            _usage_error(f"--serve {address} listens beyond this machine: give --serve-token (or EDGE_EMOTION_TOKEN), "
                         "or --serve-no-auth to let anyone who reaches the port watch")
        typer.echo(f"warning: --serve-no-auth: anyone who reaches {host}:{port} can watch the camera", err=True)
    return {"serve": (host, port), "serve_token": token or None}


def _rotation(size: int | None, every: float | None, keep: int | None, jsonl: Path | None, csv: Path | None) -> Rotation | None:
    """The --rotate-* options as one setting; a usage error for a combination that rotates nothing."""
    try:
        return rotation_for(size, every, keep, {"--jsonl": jsonl, "--csv": csv})
    except ValueError as error:
        _usage_error(str(error))


def _usage_error(message: str) -> None:
    typer.echo(f"Usage: edge-run [OPTIONS]\nTry 'edge-run --help' for help.\n\nError: {message}", err=True)
    raise typer.Exit(2)


def _report(summary: RunSummary, outputs: tuple[Path | None, ...]) -> None:
    # Records written to standard output keep it to themselves: the summary goes to stderr.
    to_stderr = any(writes_to_stdout(path) for path in outputs)
    try:
        for line in summary.lines():
            typer.echo(line, err=to_stderr)
        for path in outputs:
            if path is not None and not writes_to_stdout(path) and path.exists():
                typer.echo(f"wrote {path}", err=to_stderr)
    except OSError:
        pass  # the terminal is gone (SIGHUP): the outputs are what matters


def _quiet_opencv() -> None:
    # OpenCV logs a WARN line per failed camera probe, FFmpeg one per refused connection
    # (-8: its "quiet" level); the error message here says it better.
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
