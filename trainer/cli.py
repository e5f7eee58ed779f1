"""`edge-train`: fit the emotion CNN on FER-2013."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

# TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) buries the progress bar.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge_runtime.choices import choice_enum  # noqa: E402
from edge_runtime.cli_help import HelpCommand, VersionOption, examples  # noqa: E402
from edge_runtime.labels import LABELS  # noqa: E402
from fer_data.fer2013 import DataError  # noqa: E402
from trainer.augment import CROP_JITTERS  # noqa: E402
from trainer.config import PRESETS  # noqa: E402
from trainer.framework import framework_problem  # noqa: E402
from trainer.optimizers import OPTIMIZERS, SCHEDULES  # noqa: E402
from trainer.views import VIEWS  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train the facial-emotion CNN on FER-2013.")


# The names of `trainer.models.ARCHITECTURES`, written here because that table imports Keras,
# which `edge-train --help` should not wait for (a test checks that the two agree).
Arch = choice_enum("Arch", ("edge", "edge-wide", "seed", "vgg", "resnet18"))
Preset = choice_enum("Preset", PRESETS)
Optimizer = choice_enum("Optimizer", OPTIMIZERS)
Schedule = choice_enum("Schedule", SCHEDULES)
CropJitter = choice_enum("CropJitter", CROP_JITTERS)
Views = choice_enum("Views", VIEWS)
ClassWeight = choice_enum("ClassWeight", ("none", "balanced"))


EXAMPLES = examples(
    "edge-train --data ../shared/fer2013 --out runs/edge               # the default network and recipe",
    "edge-train --data fer2013.csv --out runs/seed --preset seed       # the seed's network and recipe",
    "edge-train --data ../shared/fer2013 --out runs/t1 --preset teacher  # a teacher for distillation",
    "edge-train --resume runs/edge                                     # continue a stopped run",
)


@app.command(cls=HelpCommand, epilog=EXAMPLES)
def main(
    data: Annotated[Optional[Path], typer.Option(help="fer2013.csv, or a folder with train/<class>/ and test/<class>/.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder for checkpoints, model.keras and reports.")] = None,
    preset: Annotated[Optional[Preset], typer.Option(help="A published recipe (MODEL_CARD.md): edge-v2 is the bundled model's.")] = None,
    arch: Annotated[
        Optional[Arch],
        typer.Option(
            help="Network: 'edge' (default), 'edge-wide', 'seed' (the seed's network and recipe), "
            "or a large teacher: 'vgg' (40M parameters), 'resnet18' (11M)."
        ),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=0, help="Epochs (default: the architecture's recipe).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Faces per step.")] = None,
    optimizer: Annotated[Optional[Optimizer], typer.Option(help="'sgd' uses Nesterov momentum (--momentum).")] = None,
    schedule: Annotated[
        Optional[Schedule],
        typer.Option(help="Learning rate: 'cosine' with warm-up, 'plateau' (lowered when val_accuracy stalls), 'inverse-time'."),
    ] = None,
    learning_rate: Annotated[Optional[float], typer.Option(min=0.0, help="Peak learning rate.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(min=0.0, help="Decoupled weight decay (AdamW, SGD).")] = None,
    momentum: Annotated[Optional[float], typer.Option(min=0.0, max=0.999, help="SGD's Nesterov momentum.")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(min=0.0, max=0.5)] = None,
    augment: Annotated[
        Optional[bool], typer.Option("--augment/--no-augment", help="Flip, shift, rotate, zoom, brightness, contrast.")
    ] = None,
    erasing: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Random-erasing probability per face (0: off).")] = None,
    crop_jitter: Annotated[
        Optional[CropJitter], typer.Option(help="Crop shifts and scales: 'fer' (FER-2013's framing) or 'detector' (the face detectors').")
    ] = None,
    mixup: Annotated[Optional[float], typer.Option(min=0.0, help="Mixup with blend weights from Beta(ALPHA, ALPHA) (0: off).")] = None,
    cutmix: Annotated[Optional[float], typer.Option(min=0.0, help="Cutmix with kept areas from Beta(ALPHA, ALPHA) (0: off).")] = None,
    tta: Annotated[
        Optional[Views],
        typer.Option(help="Views averaged for the teachers' targets and the test-time figures: none, flip, crops (ten-crop)."),
    ] = None,
    teacher: Annotated[
        Optional[list[Path]],
        typer.Option(exists=True, dir_okay=False, help="A trained .keras model to distil from (repeat for an ensemble)."),
    ] = None,
    teacher_targets: Annotated[
        Optional[list[Path]],
        typer.Option(exists=True, dir_okay=False, help="A teacher run's targets.npz to distil from instead (repeat for an ensemble)."),
    ] = None,
    write_targets: Annotated[
        Optional[bool], typer.Option("--write-targets/--no-write-targets", help="Save view-averaged probabilities for students.")
    ] = None,
    distill_weight: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Share of the loss for matching the teachers.")] = None,
    distill_temperature: Annotated[Optional[float], typer.Option(min=0.1, help="Distillation temperature.")] = None,
    class_weight: Annotated[Optional[ClassWeight], typer.Option(help="'balanced' weights the loss by inverse class frequency.")] = None,
    patience: Annotated[Optional[int], typer.Option(min=0, help="Early stopping patience in epochs (0: off).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed repeats a run on the same machine.")] = 42,
    weights: Annotated[
        Optional[Path], typer.Option(exists=True, dir_okay=False, help="Start from saved weights (the seed's model.h5).")
    ] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder from its last completed epoch.")] = None,
    max_minutes: Annotated[
        Optional[float], typer.Option(min=0.0, help="Stop after the epoch that ends past this many minutes, and finish the run.")
    ] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Cache for decoded data (default ~/.cache/edge-emotion).")] = None,
    devices: Annotated[
        Optional[int], typer.Option(min=0, help="Train data-parallel over this many devices of this process (0: all; README).")
    ] = None,
    coordinator: Annotated[
        Optional[str], typer.Option(help="HOST:PORT of process 0, for several processes (or KERAS_DISTRIBUTION_JOB_ADDRESSES).")
    ] = None,
    num_processes: Annotated[
        Optional[int], typer.Option(min=1, help="Processes training together (or KERAS_DISTRIBUTION_NUM_PROCESSES).")
    ] = None,
    process_id: Annotated[
        Optional[int], typer.Option(min=0, help="This process, 0 to N-1; 0 writes the run (or KERAS_DISTRIBUTION_PROCESS_ID).")
    ] = None,
    scale_batch: Annotated[
        bool, typer.Option("--scale-batch", help="Multiply the batch size and learning rate by the device count (linear scaling).")
    ] = False,
    version: VersionOption = None,
) -> None:
    """Train, checkpointing every epoch; the best epoch is kept as RUN_DIR/model.keras."""
    problem = framework_problem()
    if problem:  # before the data: decoding FER-2013 takes a while and would be wasted
        typer.echo(f"edge-train: error: {problem}", err=True)
        raise typer.Exit(1)
    from trainer.config import ConfigError, make_config
    from trainer.distributed import DistributionError, settings_from
    from trainer.train import TrainingError, resumed_config, train

    new_out = None  # a --out folder this command creates, removed again if the run fails to start
    try:
        distribution = settings_from(devices, coordinator, num_processes, process_id)
        if resume is not None:
            config = resumed_config(resume)
        else:
            if data is None or out is None:
                raise typer.BadParameter("--data and --out are required (or --resume RUN_DIR)")
            config = make_config(
                str(data),
                str(out),
                arch.value if arch else None,
                preset.value if preset else None,
                epochs=epochs,
                batch_size=batch_size,
                optimizer=optimizer.value if optimizer else None,
                schedule=schedule.value if schedule else None,
                learning_rate=learning_rate,
                weight_decay=weight_decay,
                momentum=momentum,
                label_smoothing=label_smoothing,
                augment=augment,
                crop_jitter=crop_jitter.value if crop_jitter else None,
                erasing=erasing,
                mixup=mixup,
                cutmix=cutmix,
                tta=tta.value if tta else None,
                teachers=tuple(str(path) for path in teacher) if teacher else None,
                teacher_targets=tuple(str(path) for path in teacher_targets) if teacher_targets else None,
                write_targets=write_targets,
                distill_weight=distill_weight,
                distill_temperature=distill_temperature,
                class_weight=class_weight.value if class_weight else None,
                patience=patience,
                seed=seed,
                weights=str(weights) if weights else None,
                cache_dir=str(cache_dir) if cache_dir else None,
            )
            if config.epochs == 0 and not config.weights:
                raise typer.BadParameter("--epochs 0 needs --weights (to package existing weights)", param_hint="--epochs")
            if scale_batch:
                config = _scaled_for_devices(config, distribution)
        new_out = None if resume is not None or Path(config.out).exists() else Path(config.out)
        metrics = train(config, resume=resume is not None, max_minutes=max_minutes, distribution=distribution)
    except (ConfigError, DistributionError) as error:
        typer.echo(f"edge-train: error: {error}", err=True)
        raise typer.Exit(2) from None
    except (DataError, TrainingError) as error:
        _remove_unstarted_run(new_out)
        typer.echo(f"edge-train: error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo(f"edge-train: interrupted; continue with: edge-train --resume {config.out}", err=True)
        raise typer.Exit(130) from None
    if distribution is not None and not distribution.writes_files:
        print(f"edge-train: process {distribution.process_id} of {distribution.num_processes} done; process 0 wrote {config.out}")
        return
    _print_summary(metrics, Path(config.out))


def _scaled_for_devices(config, distribution):
    """The linear scaling rule: each device keeps the recipe's batch, so the global batch and
    the learning rate grow with the device count (named explicitly: the run's config.json
    must say what it trained with before any device is counted)."""
    from dataclasses import replace

    if distribution is None or distribution.devices == 0:
        raise typer.BadParameter("--scale-batch needs --devices N (N > 0): the count it scales by", param_hint="--scale-batch")
    count = distribution.devices * distribution.num_processes
    return replace(config, batch_size=config.batch_size * count, learning_rate=config.learning_rate * count)


def _remove_unstarted_run(out: Path | None) -> None:
    """Removes the --out folder a failed start created, when it holds nothing but config.json:
    left behind, it would look like a run. A folder with anything else in it is kept."""
    if out is None or not out.is_dir():
        return
    if {path.name for path in out.rglob("*") if not path.is_dir()} <= {"config.json"}:
        shutil.rmtree(out, ignore_errors=True)


def _print_summary(metrics: dict, out: Path) -> None:
    minutes = metrics["training_seconds"] / 60
    print(
        f"\nval_accuracy {metrics['val_accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}  training {minutes:.1f} min"
    )
    if "val_tta" in metrics:
        print(f"val_accuracy averaged over views ({metrics['tta']}) {metrics['val_tta']['accuracy']:.4f}")
    per_class = metrics["val"]["per_class"]
    print("  " + "  ".join(f"{label} {per_class[label]['recall']:.2f}" for label in LABELS) + "  (recall)")
    print(f"artifacts in {out}: model.keras, metrics.json, history.csv, curves.png, confusion_matrix.png")
    sys.stdout.flush()
