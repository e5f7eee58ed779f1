"""`edge-run`: live or headless facial-emotion recognition on a webcam, stream, video or images.

    edge-run                                   # webcam 0, bundled model, a window
    edge-run --source demo --no-display        # the bundled clip, headless
    edge-run --source clip.mp4 --no-display --jsonl faces.jsonl --save-video out.mp4
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_runtime.api import DEFAULT_MIN_CONFIDENCE, DEFAULT_SMOOTH
from edge_runtime.backends import BackendError
from edge_runtime.cli_help import HelpCommand, VersionOption, examples
from edge_runtime.default_model import DefaultModelError
from edge_runtime.detector import (
    DEFAULT_DETECT_SCALE,
    DEFAULT_MIN_NEIGHBORS,
    DEFAULT_MIN_SIZE,
    DEFAULT_SCALE_FACTOR,
    DetectorError,
)
from edge_runtime.display import DisplayError
from edge_runtime.metadata import MetadataError
from edge_runtime.outputs import OutputError
from edge_runtime.runner import RunConfig, run
from edge_runtime.sources import SourceError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Facial-emotion recognition at the edge, live or headless.")

DOMAIN_ERRORS = (BackendError, DefaultModelError, DetectorError, DisplayError, MetadataError, OutputError, SourceError)


class BackendChoice(str, Enum):
    auto = "auto"
    onnx = "onnx"
    tflite = "tflite"
    keras = "keras"


EXAMPLES = examples(
    "edge-run --source demo --no-display --jsonl demo.jsonl   # the bundled clip, headless, one JSON record per face",
    "edge-run                                                 # webcam 0, bundled model, a window (q or Esc quits)",
    "edge-run --source clip.mp4 --no-display --csv faces.csv --save-video annotated.mp4",
    "edge-run --source rtsp://camera.local/stream --backend tflite --threads 2 --detect-every 2",
    "edge-run --source photos/ --no-display --jsonl photos.jsonl   # every image of a folder, in name order",
)


@app.command(cls=HelpCommand, epilog=EXAMPLES)
def main(
    model: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, help="Model file (.onnx, .tflite, .keras); default: the bundled model."),
    ] = None,
    backend: Annotated[
        BackendChoice, typer.Option(help="Inference runtime; auto: by the model's suffix (bundled: onnx, tflite, keras).")
    ] = BackendChoice.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Inference threads (default: the runtime's).")] = None,
    source: Annotated[
        str, typer.Option(help="Webcam index, video file, image, folder of images, rtsp/http URL, or 'demo'.")
    ] = "0",
    cascade: Annotated[
        Optional[Path], typer.Option(exists=True, dir_okay=False, help="Haar cascade XML (default: OpenCV's frontal face).")
    ] = None,
    scale_factor: Annotated[float, typer.Option(min=1.01, help="Haar pyramid step; larger is faster.")] = DEFAULT_SCALE_FACTOR,
    min_neighbors: Annotated[int, typer.Option(min=0, help="Haar hits a face needs; larger, fewer false faces.")] = DEFAULT_MIN_NEIGHBORS,
    min_size: Annotated[int, typer.Option(min=1, help="Smallest face side, in source pixels.")] = DEFAULT_MIN_SIZE,
    detect_scale: Annotated[
        float, typer.Option(min=0.05, max=1.0, help="Detect on a copy resized by this factor.")
    ] = DEFAULT_DETECT_SCALE,
    detect_every: Annotated[
        int, typer.Option(min=1, help="Detect every N frames; faces keep their last boxes in between.")
    ] = 1,
    smooth: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Per-face probability smoothing (weight of the past; 0: off).")
    ] = DEFAULT_SMOOTH,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Below this, a face is shown as uncertain.")
    ] = DEFAULT_MIN_CONFIDENCE,
    crop_margin: Annotated[
        Optional[float],
        typer.Option(min=-0.45, max=2.0, help="Margin around the detected box, fraction of its side (default: the model's)."),
    ] = None,
    flip_average: Annotated[
        bool,
        typer.Option("--flip-average/--no-flip-average", help="Average each face with its mirror image (more accurate, 2x inference)."),
    ] = True,
    verify_model: Annotated[
        bool,
        typer.Option(
            "--verify-model/--no-verify-model",
            help="Check the model file against the checksum in its metadata; turn off for a model edited on purpose.",
        ),
    ] = True,
    no_display: Annotated[bool, typer.Option("--no-display", help="No window (headless).")] = False,
    jsonl: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Write one JSON record per face per frame.")] = None,
    csv: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Write the same records as a CSV table.")] = None,
    save_video: Annotated[
        Optional[Path], typer.Option(dir_okay=False, help="Write the annotated video (.mp4, .avi, .mkv).")
    ] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after N frames.")] = None,
    version: VersionOption = None,
) -> None:
    """Detect faces and classify their expression; a summary is printed at the end."""
    config = RunConfig(
        source=source,
        model=model,
        backend=backend.value,
        threads=threads,
        cascade=cascade,
        scale_factor=scale_factor,
        min_neighbors=min_neighbors,
        min_size=min_size,
        detect_scale=detect_scale,
        detect_every=detect_every,
        smooth=smooth,
        min_confidence=min_confidence,
        crop_margin=crop_margin,
        flip_average=flip_average,
        verify_model=verify_model,
        display=not no_display,
        jsonl=jsonl,
        csv=csv,
        save_video=save_video,
        max_frames=max_frames,
    )
    _quiet_opencv()
    try:
        summary = run(config)
    except DOMAIN_ERRORS as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for line in summary.lines():
        typer.echo(line)
    for path in (jsonl, csv, save_video):
        if path is not None and path.exists():
            typer.echo(f"wrote {path}")


def _quiet_opencv() -> None:
    # OpenCV logs a WARN line per failed camera probe; the error message here says it better.
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
