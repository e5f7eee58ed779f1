"""`edge-bench`: latency and throughput per model file, the whole pipeline's FPS, accuracy,
and the detector-in-the-loop scene."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

# TensorFlow's start-up chatter (CUDA probing, CPU flags) would bury the tables; the benchmark
# subprocesses inherit this too.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.plot import PlotError, check_plotting, write_plot  # noqa: E402
from benchmarks.report import render_text, write_json, write_markdown  # noqa: E402
from benchmarks.rows import FAILED  # noqa: E402
from benchmarks.stats import LoopSettings  # noqa: E402
from edge_runtime.backends import BackendError  # noqa: E402
from edge_runtime.choices import BackendChoice, choice_enum  # noqa: E402
from edge_runtime.cli_help import HelpCommand, HelpGroup, VersionOption, examples  # noqa: E402
from edge_runtime.detectors import DETECTOR_NAMES, DetectorError  # noqa: E402
from edge_runtime.limits import max_threads, threads_problem  # noqa: E402
from edge_runtime.model_files.metadata import MetadataError  # noqa: E402
from edge_runtime.outputs.paths import OutputError, refuse_shared_paths  # noqa: E402
from edge_runtime.sources.open_source import SourceError  # noqa: E402
from fer_data.fer2013 import SPLITS, DataError  # noqa: E402
from fer_data.scenes import SceneSettings  # noqa: E402

app = typer.Typer(
    cls=HelpGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Benchmark edge-emotion models: latency per format and threads, pipeline FPS, accuracy, and the scene test.",
    epilog="Exit status: 0 when at least one row was measured; 1 for an error, or when every row failed; 2 for a usage error.",
)


@app.callback()
def main(version: VersionOption = None) -> None:
    pass  # only --version: every benchmark is a command of its own


# Choices come from the tables: a new backend or detector is a new row there. A benchmark
# measures each detector it is given, so its --detector has no "auto".
DetectorChoice = choice_enum("DetectorChoice", DETECTOR_NAMES)
DetectorsOption = Annotated[
    Optional[list[DetectorChoice]],
    typer.Option("--detector", help="Face detector; repeat for several (default: every detector, a row each)."),
]
DetectorModelOption = Annotated[
    Optional[Path],
    typer.Option("--detector-model", exists=True, dir_okay=False,
                 help="YuNet's ONNX file, instead of the copy in the cache (a benchmark never downloads it)."),
]


# The data set's splits, the held-out ones first (as --help lists them).
SplitChoice = choice_enum("SplitChoice", reversed(SPLITS))


DataOption = Annotated[
    Optional[Path], typer.Option("--data", exists=True, help="FER-2013 folder (train/, test/) or fer2013.csv.", show_default=False)
]
JsonOption = Annotated[Optional[Path], typer.Option("--json", help="Write the full report (environment, settings, rows) as JSON.")]
MarkdownOption = Annotated[Optional[Path], typer.Option("--markdown", help="Write the table as Markdown (for the README).")]
PlotOption = Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG chart (needs matplotlib).")]
ModelsArgument = Annotated[
    Optional[list[Path]], typer.Argument(exists=True, dir_okay=False, help="Model files (default: every variant).", show_default=False)
]
VariantsOption = Annotated[
    Optional[Path],
    typer.Option("--variants-of", exists=True, dir_okay=False, help="Keras model whose variants are built (default: the bundled one)."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"edge-bench: error: {message}", err=True)
    return typer.Exit(1)


def _int_list(text: str, option: str, minimum: int = 1, maximum_problem=None) -> tuple[int, ...]:
    """Comma-separated integers >= `minimum`; `maximum_problem(largest)` says what is wrong
    with the largest value, or nothing."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < minimum:
        raise typer.BadParameter(f"{text!r}: expected comma-separated integers >= {minimum}, e.g. 1,2,4", param_hint=option)
    problem = maximum_problem(max(values)) if maximum_problem else None
    if problem:
        raise typer.BadParameter(problem, param_hint=option)
    return values


def _detectors(chosen) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d.value for d in chosen)) if chosen else DETECTOR_NAMES


def _float_list(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or not all(0.0 < v <= 1.0 for v in values):
        raise typer.BadParameter(f"{text!r}: expected comma-separated fractions in (0, 1], e.g. 1.0,0.5", param_hint=option)
    return values


def _range(text: str, option: str) -> tuple[int, int]:
    low, _, high = text.partition("..")
    try:
        pair = (int(low), int(high or low))
    except ValueError:
        pair = (0, 0)
    if not 1 <= pair[0] <= pair[1]:
        raise typer.BadParameter(f"{text!r}: expected N or LOW..HIGH with 1 <= LOW <= HIGH, e.g. 1..3", param_hint=option)
    return pair


def _runner(in_process: bool, timeout: float):
    from benchmarks import worker

    return worker.in_process if in_process else worker.SubprocessRunner(timeout=timeout)


def _log(line: str) -> None:
    typer.echo(line, err=True)


def _finish(report: dict, json_path: Path | None, markdown: Path | None, plot: Path | None) -> None:
    """Prints the table and writes the requested files."""
    typer.echo(render_text(report))
    command_line = "edge-bench " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    report["command_line"] = command_line
    try:
        if json_path:
            write_json(json_path, report)
            _log(f"wrote {json_path}")
        if markdown:
            write_markdown(markdown, report, command_line)
            _log(f"wrote {markdown}")
        if plot:
            write_plot(plot, report)
            _log(f"wrote {plot}")
    except (OSError, PlotError) as error:
        raise _fail(str(error)) from None
    rows = report.get("rows") or []
    if rows and all(row.get("status") == FAILED for row in rows):
        raise _fail(f"every row failed ({len(rows)} of {len(rows)}); the table above says why")


def _run(call, outputs: dict[str, Path | None]):
    """Runs a benchmark, turning domain errors into one line on stderr and exit code 1.

    Args:
        call: the benchmark.
        outputs: output option -> path; each is checked before the benchmark runs (writable,
            and no two naming one file), so that a folder given for --json or a missing
            matplotlib for --plot costs no measuring time.
    """
    try:
        refuse_shared_paths(None, outputs)
        if outputs.get("--plot"):
            check_plotting()
        return call()
    except (DataError, BackendError, DetectorError, MetadataError, OutputError, SourceError, PlotError, OSError) as error:
        raise _fail(str(error)) from None


def _outputs(json_path: Path | None, markdown: Path | None, plot: Path | None, **more: Path | None) -> dict[str, Path | None]:
    return {"--json": json_path, "--markdown": markdown, "--plot": plot, **{f"--{k.replace('_', '-')}": v for k, v in more.items()}}


@app.command(cls=HelpCommand, epilog=examples(
    "edge-bench models --threads 1,2 --json bench/models.json --markdown bench/models.md   # every variant of the bundled model",
    "edge-bench models edge_runtime/models/emotion_int8.onnx edge_runtime/models/emotion_int8.tflite --threads 2",
    "edge-bench models --data ../shared/fer2013 --threads 1,2 --json bench/models.json     # with accuracy on PublicTest",
))
def models(
    model: ModelsArgument = None,
    threads: Annotated[Optional[str], typer.Option(help="Thread counts, comma-separated (default: 1,2,4 up to the cores).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="The larger batch for throughput (faces per call).")] = 32,
    min_runs: Annotated[int, typer.Option(min=1, help="At least this many timed batch-1 runs.")] = 200,
    min_time: Annotated[float, typer.Option(min=0.0, help="And at least this many seconds of them.")] = 3.0,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs first.")] = 20,
    data: DataOption = None,
    variants_of: VariantsOption = None,
    floor: Annotated[bool, typer.Option("--floor/--no-floor", help="Measure the CPU peak and print the compute floor.")] = True,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds before one configuration is stopped (failed).")] = 900.0,
    in_process: Annotated[bool, typer.Option("--in-process", hidden=True, help="Measure in this process (debugging).")] = False,
    json_path: JsonOption = None,
    markdown: MarkdownOption = None,
    plot: PlotOption = None,
) -> None:
    """Latency, throughput, memory (and accuracy with --data) of every model file x thread count.

    Each configuration runs in a fresh process: size, load time, first run, batch-1 latency
    (p50/p90/p99/min/std after warm-up), faces/s at batch 1 and --batch, peak memory.
    """
    from benchmarks.model_suite import ModelsConfig, default_threads, run_models

    config = ModelsConfig(
        models=tuple(model or ()),
        variants_of=variants_of,
        threads=_int_list(threads, "--threads", maximum_problem=threads_problem) if threads else default_threads(),
        batch=batch,
        loop=LoopSettings(warmup=warmup, min_runs=min_runs, min_time=min_time),
        data=data,
        floor=floor,
    )
    report = _run(lambda: run_models(config, _runner(in_process, timeout), log=_log), _outputs(json_path, markdown, plot))
    _finish(report, json_path, markdown, plot)


@app.command(cls=HelpCommand, epilog=examples(
    "edge-bench pipeline --threads 2 --json bench/pipeline.json   # the demo clip, every variant, beside the seed-style loop",
    "edge-bench pipeline edge_runtime/models/emotion_int8.onnx --source clip.mp4 --max-frames 0",
))
def pipeline(
    model: ModelsArgument = None,
    source: Annotated[str, typer.Option(help="'demo' (the bundled clip) or a video file.")] = "demo",
    threads: Annotated[
        Optional[int], typer.Option(min=1, max=max_threads(), help="Inference and OpenCV threads (default: up to 2).")
    ] = None,
    detect_scale: Annotated[str, typer.Option(help="Detection scales of the sweep, comma-separated.")] = "1.0,0.5",
    detect_every: Annotated[str, typer.Option(help="Detect every N frames, values of the sweep, comma-separated.")] = "1,3",
    detector: DetectorsOption = None,
    detector_model: DetectorModelOption = None,
    max_frames: Annotated[int, typer.Option(min=0, help="Frames timed per configuration (0: the whole source).")] = 300,
    warmup_frames: Annotated[int, typer.Option(min=0, help="Frames run first and not counted.")] = 5,
    data: DataOption = None,
    variants_of: VariantsOption = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds before one configuration is stopped (failed).")] = 900.0,
    in_process: Annotated[bool, typer.Option("--in-process", hidden=True, help="Run in this process (debugging).")] = False,
    json_path: JsonOption = None,
    markdown: MarkdownOption = None,
    plot: PlotOption = None,
) -> None:
    """End-to-end FPS and time per stage on a video, beside the seed project's own loop.

    Stages: read+decode, detect, preprocess, infer, draw (p50 and p95 each). Every model at the
    runtime's default detection, the fastest one over the --detect-scale x --detect-every sweep.
    """
    from benchmarks.pipeline_suite import PipelineConfig, default_pipeline_threads, run_pipeline

    config = PipelineConfig(
        source=source,
        models=tuple(model or ()),
        variants_of=variants_of,
        data=data,
        threads=threads or default_pipeline_threads(),
        detect_scales=_float_list(detect_scale, "--detect-scale"),
        detect_every=_int_list(detect_every, "--detect-every"),
        detectors=_detectors(detector),
        detector_model=detector_model,
        max_frames=max_frames,
        warmup_frames=warmup_frames,
    )
    report = _run(lambda: run_pipeline(config, _runner(in_process, timeout), log=_log), _outputs(json_path, markdown, plot))
    _finish(report, json_path, markdown, plot)


@app.command(cls=HelpCommand, epilog=examples(
    "edge-bench accuracy --data ../shared/fer2013 --split val                        # the bundled model on PublicTest",
    "edge-bench accuracy --model edge_runtime/models/emotion_int8.tflite --data ../shared/fer2013 --plot bench/reliability.png",
))
def accuracy(
    data: Annotated[Path, typer.Option("--data", exists=True, help="FER-2013 folder (train/, test/) or fer2013.csv.", show_default=False)],
    model: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Model file (default: the bundled model).")] = None,
    backend: Annotated[BackendChoice, typer.Option(help="Backend (auto: by the file's suffix).")] = BackendChoice.auto,
    split: Annotated[SplitChoice, typer.Option(help="val: PublicTest; test: PrivateTest (folders: all of test/).")] = SplitChoice.test,
    threads: Annotated[Optional[int], typer.Option(min=1, max=max_threads(), help="Inference threads.")] = None,
    flip_average: Annotated[
        bool, typer.Option("--flip-average/--no-flip-average", help="Average each face with its mirror image, as edge-run does.")
    ] = True,
    json_path: JsonOption = None,
    markdown: MarkdownOption = None,
    plot: PlotOption = None,
) -> None:
    """Top-1, macro-F1, per-class precision/recall and the confusion matrix of one model file."""
    from benchmarks.accuracy_bench import AccuracyConfig, run_accuracy

    config = AccuracyConfig(data=data, model=model, backend=backend.value, split=split.value, threads=threads,
                             flip_average=flip_average)
    report = _run(lambda: run_accuracy(config), _outputs(json_path, markdown, plot))
    _finish(report, json_path, markdown, plot)


@app.command(cls=HelpCommand, epilog=examples(
    "edge-bench scene --data ../shared/fer2013 --split val --frames 200",
    "edge-bench scene --data ../shared/fer2013 --model edge_runtime/models/emotion_int8.onnx --save-video scene.mp4",
))
def scene(
    data: Annotated[Path, typer.Option("--data", exists=True, help="FER-2013 folder or CSV supplying the faces.", show_default=False)],
    model: Annotated[Optional[list[Path]], typer.Option(exists=True, dir_okay=False, help="Model file; repeat for several.")] = None,
    backend: Annotated[BackendChoice, typer.Option(help="Backend (auto: by the file's suffix).")] = BackendChoice.auto,
    split: Annotated[SplitChoice, typer.Option(help="Split the faces come from (val: PublicTest, never trained on).")] = SplitChoice.val,
    faces_per_frame: Annotated[str, typer.Option(help="Faces per frame: N or LOW..HIGH.")] = "1..3",
    frames: Annotated[int, typer.Option(min=1, help="Frames in the scene.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed of the scene.")] = 0,
    iou: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="IoU at which a detection matches a true face (nested boxes match too).")
    ] = 0.4,
    detect_scale: Annotated[float, typer.Option(min=0.05, max=1.0, help="The runtime's detection scale.")] = 0.5,
    detector: DetectorsOption = None,
    detector_model: DetectorModelOption = None,
    tilt: Annotated[float, typer.Option(min=0.0, max=45.0, help="Turn each face by a random angle up to this many degrees.")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(min=1, max=max_threads(), help="Inference threads.")] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="Write the annotated scene (.mp4 or .avi).")] = None,
    json_path: JsonOption = None,
    markdown: MarkdownOption = None,
    plot: PlotOption = None,
) -> None:
    """Detection recall and accuracy of the full runtime on 640x480 frames of FER-2013 faces.

    Faces of --split are pasted at known boxes; reported: recall, label accuracy on detected faces,
    end-to-end accuracy, the model's accuracy on the same faces' own crops, and FPS.
    """
    from benchmarks.scene_suite import SceneConfig, run_scene

    settings = SceneSettings(frames=frames, faces_per_frame=_range(faces_per_frame, "--faces-per-frame"), seed=seed, iou_threshold=iou,
                             max_tilt=tilt)
    config = SceneConfig(data=data, split=split.value, models=tuple(model or ()), backend=backend.value, threads=threads,
                         detect_scale=detect_scale, detectors=_detectors(detector), detector_model=detector_model, scene=settings,
                         save_video=save_video)
    report = _run(lambda: run_scene(config, log=_log), _outputs(json_path, markdown, plot, save_video=save_video))
    _finish(report, json_path, markdown, plot)


@app.command(cls=HelpCommand, epilog=examples(
    "edge-bench streams --data ../shared/fer2013 --json bench/streams.json --markdown bench/streams.md",
))
def streams(
    data: Annotated[Path, typer.Option("--data", exists=True, help="FER-2013 folder or CSV supplying the faces.", show_default=False)],
    model: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Model file (default: the bundled one).")] = None,
    backend: Annotated[BackendChoice, typer.Option(help="Backend (auto: by the file's suffix).")] = BackendChoice.auto,
    max_sources: Annotated[int, typer.Option(min=1, max=64, help="Most sources to try.")] = 10,
    seconds: Annotated[float, typer.Option(min=2.0, max=600.0, help="Length of each source, in seconds at 30 FPS.")] = 20.0,
    detect_every: Annotated[int, typer.Option(min=1, max=1000, help="Detect every N frames of a source.")] = 3,
    detector_model: DetectorModelOption = None,
    threads: Annotated[Optional[int], typer.Option(min=1, max=max_threads(), help="Inference threads.")] = None,
    same_cuts: Annotated[bool, typer.Option("--same-cuts", help="Change every source's scene on the same frame (each change "
                                            "starts a detection in every source at once), not at moments spread over the second.")] = False,
    json_path: JsonOption = None,
    markdown: MarkdownOption = None,
) -> None:
    """How many 640x480 sources at 30 FPS, played in real time, one process keeps up with (YuNet).

    Reports the curve from 1 source up, the largest count with under 1% of frames dropped
    (max_realtime_sources in --json), and the gain of classifying the faces of all sources in
    one model call against a call per source.
    """
    from benchmarks.streams import StreamsConfig, run_streams

    config = StreamsConfig(data=data, max_sources=max_sources, seconds=seconds, detect_every=detect_every,
                           detector_model=detector_model, model=model, backend=backend.value, threads=threads,
                           staggered_cuts=not same_cuts)
    report = _run(lambda: run_streams(config, log=_log), _outputs(json_path, markdown, None))
    _log(f"kept in real time: {report['max_realtime_sources']} source(s); batching across sources: "
         f"{100 * report['batching_gain']:+.1f}% FPS")
    _finish(report, json_path, markdown, None)
