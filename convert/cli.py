"""`edge-convert`: export a trained .keras model to TFLite and ONNX, each export verified against Keras."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

# TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) would bury the result table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convert.api import DEFAULT_CALIBRATION_SIZE, DEFAULT_VERIFY_SIZE, ConvertConfig, results_table, run_conversion  # noqa: E402
from convert.errors import ConvertError  # noqa: E402
from convert.exporters import EXPORTABLE, FAMILIES, PRECISION_CHOICES, select_formats  # noqa: E402
from convert.verify import PARITY_THRESHOLDS, Thresholds  # noqa: E402
from edge_runtime.choices import choice_enum  # noqa: E402
from edge_runtime.cli_help import HelpCommand, VersionOption, examples  # noqa: E402
from edge_runtime.pipeline.stopping import SIGNAL_NAMES, Stopped, signal_name, stop_signals  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Export a trained .keras model to TFLite and ONNX, and verify every export against Keras.",
)

# The --format choices: the families, "all", and every exportable row of the FORMATS table.
FormatChoice = choice_enum("FormatChoice", (*FAMILIES, "all", *EXPORTABLE))
Precision = choice_enum("Precision", PRECISION_CHOICES)


EXAMPLES = examples(
    "edge-convert runs/edge/model.keras --format all --out exports --name emotion   # every variant, verified",
    "edge-convert runs/edge/model.keras --format tflite --quantize --out exports     # full int8 TFLite",
    "edge-convert runs/edge/model.keras --format onnx --quantize --out exports       # static int8 ONNX (QDQ)",
    "edge-convert models/emotion.keras --format tflite-int8 --calibration-data ../shared/fer2013 --out exports",
)


@app.command(cls=HelpCommand, epilog=EXAMPLES)
def main(
    model: Annotated[Path, typer.Argument(help="The .keras model (with its model.keras.json sidecar).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the exports, their metadata and reports.")],
    format: Annotated[
        list[FormatChoice],
        typer.Option(
            "--format",
            "-f",
            help="tflite, onnx, all (every variant), or a variant name; repeat for several.",
        ),
    ] = [FormatChoice.all],  # noqa: B006 - typer reads the default, nothing mutates it
    quantize: Annotated[bool, typer.Option("--quantize", "-q", help="Full int8: TFLite int8 I/O, ONNX static int8 QDQ.")] = False,
    precision: Annotated[Optional[Precision], typer.Option(help="Other TFLite variants: fp16 or dynamic-range int8 weights.")] = None,
    float_io: Annotated[bool, typer.Option("--float-io", help="Keep float32 input/output on the full-int8 TFLite model.")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="File name stem: STEM_int8.tflite (default: the model's stem).")] = None,
    calibration_data: Annotated[
        Optional[Path], typer.Option(help="FER-2013 folder or CSV for int8 calibration (default: the data the model was trained on).")
    ] = None,
    calibration_size: Annotated[int, typer.Option(min=1, help="Faces in the stratified calibration sample.")] = DEFAULT_CALIBRATION_SIZE,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Compare every export with Keras on validation faces.")] = True,
    verify_data: Annotated[
        Optional[Path], typer.Option(help="FER-2013 folder or CSV whose PublicTest faces are compared (default: the calibration data).")
    ] = None,
    verify_size: Annotated[int, typer.Option(min=0, help="Validation faces compared (stratified); 0 for all.")] = DEFAULT_VERIFY_SIZE,
    max_diff: Annotated[
        float, typer.Option(min=0.0, help="fp32 exports: largest allowed probability difference.")
    ] = PARITY_THRESHOLDS.max_diff,
    min_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="fp16, dynamic and int8 exports: smallest allowed top-1 agreement.")
    ] = PARITY_THRESHOLDS.min_agreement,
    version: VersionOption = None,
) -> None:
    """Write each requested export into OUT, with its metadata and a <file>.report.json of its parity with Keras.

    Exits 1 when an export fails its check: fp32 when it differs from Keras by more than --max-diff, others below --min-agreement.
    """
    try:
        names = select_formats([choice.value for choice in format], quantize, precision.value if precision else None)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--format/--quantize/--precision") from None
    config = ConvertConfig(
        model_path=model,
        formats=tuple(names),
        out_dir=out,
        stem=name,
        calibration_data=calibration_data,
        calibration_size=calibration_size,
        verify=verify,
        verify_data=verify_data,
        verify_size=verify_size,
        float_io=float_io,
        thresholds=Thresholds(max_diff=max_diff, min_agreement=min_agreement),
    )
    try:
        # SIGTERM and SIGHUP end the run as Ctrl-C does, so the temporary files are deleted.
        with stop_signals() as received:
            try:
                results = run_conversion(config, log=lambda line: typer.echo(f"edge-convert: {line}", err=True))
            except Exception:
                if received.signum is None:
                    raise
                # The interrupt hit TensorFlow or tf2onnx, which turned it into an error of their own.
                raise Stopped(received.signum) from None
    except ConvertError as error:
        typer.echo(f"edge-convert: error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt as stop:
        typer.echo(f"edge-convert: interrupted by {signal_name(stop)}; files already in place are complete, "
                   "the one being written was discarded", err=True)
        raise typer.Exit(128 + getattr(stop, "signum", signal.SIGINT)) from None
    typer.echo(results_table(results))
    sys.stdout.flush()
    failed = [result.format for result in results if not result.passed]
    if failed:
        typer.echo(f"edge-convert: error: {', '.join(failed)} failed verification (see the .report.json files in {out})", err=True)
        raise typer.Exit(1)
    if received.signum is not None:
        # The signal landed in library code that swallowed the interrupt; the run went on to the end.
        typer.echo(f"edge-convert: interrupted by {SIGNAL_NAMES[received.signum]} after every file was written", err=True)
        raise typer.Exit(received.exit_status)
