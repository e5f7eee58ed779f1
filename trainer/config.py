"""Training configuration: one frozen dataclass, and one recipe of defaults per architecture."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

from edge_runtime.outputs.atomic import write_json_atomic
from trainer.run_files import RunFileError, check_fields, read_json_object


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as `config.json` in the run folder.

    The files outside the run (data, teachers, teacher_targets, weights, cache_dir) are
    absolute paths (`make_config`); a relative one, in a config.json of an older version, is
    relative to the working folder edge-train runs in.

    Attributes:
        data: fer2013.csv or a FER-2013 folder layout.
        out: the run folder (as given when the run started; a resumed run trains in the folder
            --resume names, wherever the run was copied or moved: `trainer.train.resumed_config`).
        arch: a name from `trainer.models.ARCHITECTURES`.
        epochs: epochs to run (0 with `weights`: evaluate and package existing weights).
        batch_size: faces per step.
        optimizer: a name from `trainer.optimizers.OPTIMIZERS`: "adamw", "adam" or "sgd"
            (Nesterov momentum).
        schedule: a name from `trainer.optimizers.SCHEDULES`: "cosine" (with warm-up),
            "plateau" (ReduceLROnPlateau on val_accuracy) or "inverse-time" (the seed's).
        learning_rate: peak (cosine) or starting learning rate.
        weight_decay: decoupled weight decay (adamw, sgd).
        momentum: SGD's Nesterov momentum.
        lr_decay: the seed's per-step decay, lr = lr0 / (1 + lr_decay * step) (inverse-time only).
        warmup_epochs: linear warm-up before the cosine decay (cosine only).
        plateau_factor: the learning rate is multiplied by this on a plateau (plateau only).
        plateau_patience: epochs without a better val_accuracy that make a plateau (plateau only).
        label_smoothing: cross-entropy label smoothing.
        augment: flips, shifts, rotations, zoom, brightness and contrast.
        crop_jitter: a name from `trainer.augment.CROP_JITTERS`: how far the shifts and zoom
            move the crop ("fer": around FER-2013's framing; "detector": the face detectors').
        erasing: probability of random erasing per face (with augment; 0: off).
        mixup: Beta(alpha, alpha) of mixup's blend weight (0: off).
        cutmix: Beta(alpha, alpha) of cutmix's kept area (0: off; with mixup too, each batch
            is mixed one way or the other).
        tta: a name from `trainer.views.VIEWS`: the views averaged for the teachers'
            targets and for the test-time-averaged figures in metrics.json.
        teachers: trained models (.keras) whose averaged predictions the network also learns from.
        teacher_targets: targets.npz files written by teacher runs (`write_targets`): their
            averaged probabilities are learnt instead of running the teachers (not with teachers).
        write_targets: write targets.npz: the best epoch's probabilities for the train and val
            faces, averaged over the `tta` views, for students to learn from later.
        distill_weight: share of the loss given to matching the teachers (with teachers).
        distill_temperature: softening temperature for distillation.
        class_weight: "none" or "balanced" (inverse class frequency).
        patience: stop after this many epochs without a better validation accuracy (0: never).
        seed: random seed; the same seed repeats a run on the same machine.
        weights: an existing weights file (the seed's `model.h5`) to start from.
        cache_dir: where decoded data is cached (None: the default cache).
    """

    data: str
    out: str
    arch: str = "edge"
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"
    schedule: str = "cosine"
    learning_rate: float = 2e-3
    weight_decay: float = 0.004
    momentum: float = 0.9
    lr_decay: float = 0.0
    warmup_epochs: int = 1
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    label_smoothing: float = 0.1
    augment: bool = True
    crop_jitter: str = "fer"
    erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    tta: str = "flip"
    teachers: tuple[str, ...] = ()
    teacher_targets: tuple[str, ...] = ()
    write_targets: bool = False
    distill_weight: float = 0.7
    distill_temperature: float = 2.0
    class_weight: str = "none"
    patience: int = 10
    seed: int = 42
    weights: str | None = None
    cache_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Reads a run's config.json back; settings it lacks (runs written before they
        existed) take their defaults, names it does not know are ignored.

        Raises:
            RunFileError: not JSON, not an object, no `data` or `out`, a value of the wrong
                type or an unknown choice, naming the file and the field.
        """
        path = Path(path)
        data = read_json_object(path, "the run's settings (data, out, arch, epochs, ...)")
        kinds = {f.name: _JSON_KIND[f.type] for f in fields(cls)}
        check_fields(path, data, {f.name: kinds[f.name] for f in fields(cls) if f.default is MISSING}, kinds)
        # Runs written before the schedule was its own setting: Adam implied the seed's decay.
        data.setdefault("schedule", "inverse-time" if data.get("optimizer") == "adam" else "cosine")
        config = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in kinds})
        if config.arch not in RECIPES:
            raise RunFileError(f"{path}: 'arch' is {config.arch!r}; expected one of {', '.join(RECIPES)}")
        try:
            _check_choices(config)
        except ConfigError as error:
            raise RunFileError(f"{path}: {error}") from None
        return config


# The JSON kind (`trainer.run_files.JSON_KINDS`) each annotation of TrainConfig reads back from.
_JSON_KIND = {
    "str": "a string",
    "str | None": "a string or null",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "tuple[str, ...]": "a list of strings",
}


# What each architecture trains with unless the command line says otherwise.
RECIPES: dict[str, dict] = {
    "edge": {},
    "edge-wide": {},
    # The seed: Adam(lr=1e-4, decay=1e-6), batch 64, 60 epochs, no augmentation, plain loss.
    "seed": dict(
        epochs=60,
        optimizer="adam",
        schedule="inverse-time",
        learning_rate=1e-4,
        weight_decay=0.0,
        lr_decay=1e-6,
        warmup_epochs=0,
        label_smoothing=0.0,
        augment=False,
        patience=0,
    ),
    # The published FER-2013 VGG variant's: SGD with Nesterov momentum from 0.01, the rate
    # x0.75 after 5 epochs without a better validation accuracy, ten-crop evaluation.
    "vgg": dict(
        optimizer="sgd",
        schedule="plateau",
        learning_rate=0.01,
        weight_decay=5e-4,
        warmup_epochs=0,
        plateau_factor=0.75,
        plateau_patience=5,
        tta="crops",
    ),
    # ResNet-18 as trained on small images: SGD with Nesterov momentum from 0.1, two warm-up
    # epochs, cosine decay, ten-crop evaluation.
    "resnet18": dict(optimizer="sgd", learning_rate=0.1, weight_decay=5e-4, warmup_epochs=2, tta="crops"),
}


# Named, complete recipes: `edge-train --preset NAME` repeats a published run (MODEL_CARD.md).
# Command-line options still override single values.
PRESETS: dict[str, dict] = {
    # The seed project's network and recipe.
    "seed": dict(arch="seed"),
    # The first bundled model (66.6% PublicTest): 40 epochs on 2 CPU cores.
    "edge-v1": dict(arch="edge", epochs=40),
    # The teachers of edge-v2: longer runs with random erasing.
    "teacher": dict(arch="edge", epochs=100, batch_size=128, erasing=0.5, patience=0),
    "teacher-wide": dict(arch="edge-wide", epochs=100, batch_size=128, erasing=0.5, patience=0),
    # The bundled model: edge-wide distilled from the teachers' averaged predictions.
    "edge-v2": dict(arch="edge-wide", epochs=120, batch_size=128, erasing=0.25, patience=0, distill_weight=0.7, distill_temperature=2.0),
    # Large teachers with their architectures' published recipes (RECIPES), trained long with
    # random erasing (EXPERIMENTS.md, round 3).
    "teacher-vgg": dict(arch="vgg", epochs=300, batch_size=64, erasing=0.5, patience=0, write_targets=True),
    "teacher-resnet": dict(arch="resnet18", epochs=200, batch_size=128, mixup=0.2, erasing=0.5, patience=0, write_targets=True),
    # The next edge student: edge-wide distilled from the large teachers' ten-crop averages,
    # with the crop jitter of the runtime's face detectors, for a longer schedule.
    "edge-v3": dict(
        arch="edge-wide",
        epochs=200,
        batch_size=128,
        crop_jitter="detector",
        erasing=0.25,
        patience=0,
        distill_weight=0.7,
        distill_temperature=2.0,
        tta="crops",
    ),
}

# Presets that only make sense with teachers given by --teacher.
DISTILLED_PRESETS = frozenset({"edge-v2", "edge-v3"})


class ConfigError(ValueError):
    """Options that contradict each other; the message names them."""


def make_config(data: str, out: str, arch: str | None = None, preset: str | None = None, **overrides) -> TrainConfig:
    """The preset (or the architecture's recipe), with every override that is not None applied.

    `data` and the other files outside the run (teachers, targets, weights, cache) are
    recorded as absolute paths; `out` is kept as given.

    Raises:
        ConfigError: an unknown preset, an --arch that contradicts the preset, or a
            distillation preset without teachers.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"--preset {preset}: unknown; expected one of {', '.join(PRESETS)}")
        recipe = dict(PRESETS[preset])
        preset_arch = recipe.pop("arch")
        if arch is not None and arch != preset_arch:
            raise ConfigError(f"--arch {arch} contradicts --preset {preset}, which trains {preset_arch}")
        arch = preset_arch
        recipe = {**RECIPES[arch], **recipe}
        if preset in DISTILLED_PRESETS and not (overrides.get("teachers") or overrides.get("teacher_targets")):
            raise ConfigError(f"--preset {preset} distils: name its teachers with --teacher (see MODEL_CARD.md)")
    else:
        arch = arch or "edge"
        recipe = RECIPES[arch]
    base = replace(TrainConfig(data=data, out=out, arch=arch), **recipe)
    config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    config = replace(config, **{name: _absolute(getattr(config, name)) for name in OUTSIDE_PATHS if getattr(config, name)})
    _check_choices(config)
    return config


# The files outside the run folder that a config names: recorded absolute, so that the run
# resumes from any working folder (the run folder itself is wherever --resume finds it).
OUTSIDE_PATHS = ("data", "teachers", "teacher_targets", "weights", "cache_dir")


def _absolute(paths: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if isinstance(paths, tuple):
        return tuple(str(Path(path).absolute()) for path in paths)
    return str(Path(paths).absolute())


def _check_choices(config: TrainConfig) -> None:
    """Names that must be rows of their tables (the CLI's choices come from the same tables)."""
    from trainer.augment import CROP_JITTERS
    from trainer.optimizers import OPTIMIZERS, SCHEDULES
    from trainer.views import VIEWS

    for option, value, table in (
        ("--optimizer", config.optimizer, OPTIMIZERS),
        ("--schedule", config.schedule, SCHEDULES),
        ("--crop-jitter", config.crop_jitter, CROP_JITTERS),
        ("--tta", config.tta, VIEWS),
    ):
        if value not in table:
            raise ConfigError(f"{option} {value}: unknown; expected one of {', '.join(table)}")
    if config.teachers and config.teacher_targets:
        raise ConfigError("--teacher and --teacher-targets exclude each other: distil from running teachers or from saved targets")
    if config.teacher_targets and config.class_weight != "none":
        raise ConfigError("--class-weight with --teacher-targets: the labels carry the targets, so classes cannot be weighted")
    for option, value in (("--mixup", config.mixup), ("--cutmix", config.cutmix)):
        if value < 0:
            raise ConfigError(f"{option} {value}: expected a Beta alpha >= 0 (0: off)")
