"""Optimizers and learning-rate schedules: one table each, read by the config, the CLI and
the training loop. Keras is imported only when an optimizer is built."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerChoice:
    """A name `--optimizer` accepts and what it builds."""

    name: str
    description: str


@dataclass(frozen=True)
class ScheduleChoice:
    """A name `--schedule` accepts: how the learning rate moves during a run."""

    name: str
    per_step: bool  # a Keras schedule evaluated every step; otherwise a callback acts per epoch
    description: str


OPTIMIZERS: dict[str, OptimizerChoice] = {
    choice.name: choice
    for choice in (
        OptimizerChoice("adamw", "AdamW with decoupled weight decay (the edge networks' default)"),
        OptimizerChoice("adam", "Adam without weight decay (the seed's)"),
        OptimizerChoice("sgd", "SGD with Nesterov momentum (--momentum) and decoupled weight decay (the published large FER networks')"),
    )
}

SCHEDULES: dict[str, ScheduleChoice] = {
    choice.name: choice
    for choice in (
        ScheduleChoice("cosine", True, "linear warm-up for --warmup-epochs, then cosine decay to 1% over the run"),
        ScheduleChoice(
            "plateau", False, "constant, multiplied by plateau_factor after plateau_patience epochs without a better val_accuracy"
        ),
        ScheduleChoice("inverse-time", True, "lr / (1 + lr_decay * step): the seed's Keras 2 Adam `decay`"),
    )
}


def build_optimizer(keras, config, steps_per_epoch: int):
    """The optimizer `config` names, with its learning-rate schedule.

    Args:
        keras: the keras module (imported by the caller, after the cheap checks).
        config: a TrainConfig.
        steps_per_epoch: optimizer steps in one epoch (the schedules count steps).
    """
    learning_rate = _schedule(keras, config, steps_per_epoch)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay or None
        )
    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=config.weight_decay)


def _schedule(keras, config, steps_per_epoch: int):
    if config.schedule == "inverse-time":
        # Keras 2's Adam(decay=d) meant lr / (1 + d * step); InverseTimeDecay is exactly that.
        return keras.optimizers.schedules.InverseTimeDecay(config.learning_rate, 1, config.lr_decay)
    if config.schedule == "plateau":
        # A plain float: ReduceLROnPlateau can only change a learning rate that is a variable.
        return config.learning_rate
    warmup_steps = config.warmup_epochs * steps_per_epoch
    decay_steps = max(1, config.epochs * steps_per_epoch - warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup_steps else config.learning_rate,
        decay_steps=decay_steps,
        alpha=0.01,
        warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def plateau_callback(keras, config, state: dict):
    """ReduceLROnPlateau on val_accuracy whose counters live in the run's state.json, so a
    resumed run waits exactly as long as an uninterrupted one (the reduced learning rate
    itself is in the checkpoint's optimizer)."""

    class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            saved = state.get("plateau")
            if saved:
                self.best, self.wait, self.cooldown_counter = saved["best"], saved["wait"], saved["cooldown"]

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            state["plateau"] = {"best": float(self.best), "wait": int(self.wait), "cooldown": int(self.cooldown_counter)}

    return ResumablePlateau(
        monitor="val_accuracy",
        mode="max",
        factor=config.plateau_factor,
        patience=config.plateau_patience,
        min_lr=config.learning_rate * 1e-3,
    )
