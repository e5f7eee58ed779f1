"""Training configuration: one frozen dataclass, and one recipe of defaults per architecture."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from edge_runtime.atomic import write_json_atomic


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as `config.json` in the run folder.

    Attributes:
        data: fer2013.csv or a FER-2013 folder layout.
        out: the run folder.
        arch: a name from `trainer.models.ARCHITECTURES`.
        epochs: epochs to run (0 with `weights`: evaluate and package existing weights).
        batch_size: faces per step.
        optimizer: "adamw" (cosine schedule with warm-up) or "adam" (the seed's Adam with
            Keras 2 style `decay`).
        learning_rate: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        lr_decay: the seed's per-step decay, lr = lr0 / (1 + lr_decay * step) (adam only).
        warmup_epochs: linear warm-up before the cosine decay (adamw only).
        label_smoothing: cross-entropy label smoothing.
        augment: flips, shifts, rotations, zoom, brightness and contrast.
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
    learning_rate: float = 2e-3
    weight_decay: float = 0.004
    lr_decay: float = 0.0
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    augment: bool = True
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
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# What each architecture trains with unless the command line says otherwise.
RECIPES: dict[str, dict] = {
    "edge": {},
    # The seed: Adam(lr=1e-4, decay=1e-6), batch 64, 60 epochs, no augmentation, plain loss.
    "seed": dict(
        epochs=60,
        optimizer="adam",
        learning_rate=1e-4,
        weight_decay=0.0,
        lr_decay=1e-6,
        warmup_epochs=0,
        label_smoothing=0.0,
        augment=False,
        patience=0,
    ),
}


def make_config(data: str, out: str, arch: str, **overrides) -> TrainConfig:
    """The architecture's recipe, with every override that is not None applied."""
    base = replace(TrainConfig(data=data, out=out, arch=arch), **RECIPES[arch])
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
