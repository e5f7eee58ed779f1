"""The training loop: data, model, per-epoch checkpoints, resume, and the run's artifacts.

A run folder holds:
    config.json            the full TrainConfig
    checkpoints/last.keras the last completed epoch, optimizer state included (for --resume)
    state.json             epochs done, best epoch, history, time spent
    model.keras            the best epoch by validation accuracy (+ model.keras.json metadata)
    history.csv, metrics.json, curves.png, confusion_matrix.png   (written at the end)
    targets.npz            with --write-targets: the best epoch's view-averaged probabilities
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_runtime.error_text import first_line
from edge_runtime.labels import LABELS, NUM_CLASSES
from edge_runtime.model_files.keras_file import KerasFileError, keras_file_problem, load_keras_file, save_keras_file
from edge_runtime.outputs.atomic import atomic_path, write_json_atomic, write_text_atomic
from edge_runtime.outputs.paths import OutputError, check_folder_writable
from edge_runtime.preprocess import gray48_to_input
from edge_runtime.version import __version__
from fer_data.fer2013 import DataError, FerData, classes_without_training_faces, load_fer2013
from fer_data.metrics import classification_report
from fer_data.prediction import predict_in_batches
from trainer.config import TrainConfig
from trainer.epoch_batches import batch_bounds
from trainer.run_files import RunFileError, read_state

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


class TrainingError(RuntimeError):
    """The run cannot start or continue; the message says why."""


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.keras"

    @property
    def best(self) -> Path:
        return self.root / "model.keras"


def resumed_config(run_dir: Path) -> TrainConfig:
    """The config that continues the run in `run_dir` (with `train(config, resume=True)`).

    `run_dir` is the run wherever it is now: a copied or moved run folder trains in place,
    whatever `out` its config.json recorded when the run started.

    Raises:
        TrainingError: no config.json, or one that cannot be read back (naming the file).
    """
    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        raise TrainingError(f"{run_dir}: no config.json; expected a run folder written by edge-train")
    try:
        config = TrainConfig.load(paths.config)
    except RunFileError as error:
        raise TrainingError(str(error)) from None
    return replace(config, out=str(run_dir))


def load_training_data(config: TrainConfig) -> FerData:
    """Loads and checks the data before anything else happens; warns, one line each, of a
    class without training faces (refused with --class-weight balanced).

    Raises:
        DataError: an empty train or val split, or a class without training faces to balance.
    """
    data = load_fer2013(config.data, cache_dir=config.cache_dir)
    for split in ("train", "val"):
        if len(data.split(split)) == 0:
            what = "Training rows" if split == "train" else "PublicTest rows"
            where = what if data.layout == "csv" else ("train/<class>/ images" if split == "train" else "test/<class>/ images")
            raise DataError(f"{config.data}: the {split} split is empty; expected {where}")
    for label, problem in classes_without_training_faces(data):
        if config.class_weight == "balanced":
            # Inverse class frequency is infinite for a class without faces: nothing to balance.
            raise DataError(
                f"{problem}; --class-weight balanced needs faces of every class (add '{label}' faces, "
                "or leave out --class-weight balanced)"
            )
        print(f"edge-train: warning: {problem}; the model will never learn '{label}'", file=sys.stderr, flush=True)
    return data


def train(config: TrainConfig, resume: bool = False, max_minutes: float | None = None, distribution=None) -> dict:
    """Runs (or resumes) training and writes every artifact into `config.out`.

    Args:
        config: the run.
        resume: continue the run in `config.out` from its last completed epoch.
        max_minutes: stop after the first epoch that ends this many minutes after the start
            and finish the run as usual (model, metrics, targets); `resume` continues it.
            For machines lent for a limited time. None: no limit.
        distribution: a `trainer.distributed.DistributionSettings` to train data-parallel
            over several devices or processes (None: one device). Only process 0 writes files.

    Returns:
        The metrics written to metrics.json (in the other processes of a group, only which
        process this was).

    Raises:
        DataError: bad data (before any training).
        TrainingError: an unusable run folder or weights file.
    """
    writes = distribution is None or distribution.writes_files
    paths = RunPaths(Path(config.out))
    # What the settings alone decide is checked before FER-2013 is decoded (a minute or more),
    # and a new run folder is created only once training is about to start: a mistake costs a
    # second and leaves no empty folder behind.
    _check_settings(config, distribution, max_minutes)
    state = _start_state(paths, config, resume, writes)
    data = load_training_data(config)

    import keras  # The deep-learning framework is imported here, after the cheap checks have passed.

    from trainer.models import ARCHITECTURES

    active = _start_distribution(keras, config, distribution, max_minutes)
    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    arch = ARCHITECTURES[config.arch]
    spec = arch.input_spec
    x_train = gray48_to_input(data.split("train").images, spec)
    y_train = keras.utils.to_categorical(data.split("train").labels, NUM_CLASSES)
    x_val = gray48_to_input(data.split("val").images, spec)
    y_val = data.split("val").labels
    y_val_one_hot = keras.utils.to_categorical(y_val, NUM_CLASSES)
    if config.teacher_targets:
        # The saved targets ride along with the labels: y is (labels | teachers' probabilities).
        train_targets, val_targets = _saved_targets(config, data)
        y_train = np.concatenate([y_train, train_targets], axis=1)
        y_val_one_hot = np.concatenate([y_val_one_hot, val_targets], axis=1)
    steps_per_epoch = _steps_per_epoch(len(y_train), config.batch_size, active)

    with active.scope() if active else nullcontext():  # MirroredStrategy replicates what is built in its scope
        model = _load_or_build(paths, config, arch, steps_per_epoch, resume and state["epochs_done"] > 0)
        if resume and state.get("random_states"):
            _restore_random_states(model, state["random_states"])
    if writes and not resume:
        _create_run_folder(paths, config)
    print(
        f"edge-train: {config.arch} ({_core(model).count_params():,} parameters) on {_device(keras, active)}; "
        f"train {len(y_train):,}, val {len(y_val):,} faces; epochs {state['epochs_done'] + 1}-{config.epochs}",
        flush=True,
    )

    if config.epochs > state["epochs_done"]:
        deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        callbacks = [_EpochCheckpoint(keras, paths, config, state, arch.name, spec, deadline, writes)]
        if config.schedule == "plateau":
            from trainer.optimizers import plateau_callback

            # First, so that the epoch's checkpoint holds the plateau counters it updated.
            callbacks.insert(0, plateau_callback(keras, config, state))
        model.fit(
            **_fit_inputs(keras, config, x_train, y_train, x_val, y_val_one_hot, state["epochs_done"], active),
            epochs=config.epochs,
            initial_epoch=state["epochs_done"],
            class_weight=_class_weights(data.split("train").labels) if config.class_weight == "balanced" else None,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    elif writes and not paths.best.exists():
        # No epoch to run (for example the seed's model.h5 with --epochs 0): package as is.
        save_keras_file(_core(model), paths.best, arch.name, spec)
    if active is not None:
        from trainer.distributed import stop

        stop(keras)  # the evaluation below runs in process 0 alone
    if not writes:
        return {"process_id": distribution.process_id, "num_processes": distribution.num_processes}
    return _finish(paths, config, state, data, x_train, x_val, y_val, spec, distributed=active.describe() if active else None)


def _start_distribution(keras, config: TrainConfig, settings, max_minutes: float | None):
    """Starts data-parallel training when asked to (before Keras computes anything)."""
    if settings is None:
        return None
    from trainer.distributed import DistributionError, start

    try:
        active = start(keras, settings)
    except DistributionError as error:
        raise TrainingError(str(error)) from None
    if config.batch_size % active.devices:
        raise TrainingError(f"--batch-size {config.batch_size}: expected a multiple of the {active.devices} devices that share each batch")
    return active


def _saved_targets(config: TrainConfig, data: FerData) -> tuple[np.ndarray, np.ndarray]:
    from trainer.targets import TargetsError, fingerprint, load_targets

    try:
        return load_targets(
            list(config.teacher_targets), fingerprint(data.split("train").images), len(data.split("train")), len(data.split("val"))
        )
    except TargetsError as error:
        raise TrainingError(str(error)) from None


def _start_state(paths: RunPaths, config: TrainConfig, resume: bool, writes: bool = True) -> dict:
    """The run's progress: read back with `resume`; else a new run folder (created by the
    process that writes files; the others of a process group keep their state in memory)."""
    if resume:
        if not paths.state.exists():
            raise TrainingError(f"{paths.root}: no state.json; expected a run folder written by edge-train")
        try:
            return read_state(paths.state)
        except RunFileError as error:
            raise TrainingError(str(error)) from None
    fresh = {"epochs_done": 0, "best_epoch": 0, "best_val_accuracy": -1.0, "history": [], "train_seconds": 0.0}
    if not writes:
        return fresh
    if paths.state.exists():
        raise TrainingError(f"{paths.root}: already holds a run; use --resume {paths.root} to continue it, or another --out")
    try:
        check_folder_writable(paths.root, "--out")  # nothing is created yet: see `_create_run_folder`
    except OutputError as error:
        raise TrainingError(str(error)) from None
    return fresh


def _check_settings(config: TrainConfig, distribution, max_minutes: float | None) -> None:
    """The checks that need only the settings and the files they name, not the data set."""
    if distribution is not None and max_minutes is not None and distribution.num_processes > 1:
        raise TrainingError("--max-minutes with several processes: each would stop after its own epoch; give --epochs instead")
    if config.weights:
        problem = keras_file_problem(config.weights)
        if problem:
            raise TrainingError(problem)


def _create_run_folder(paths: RunPaths, config: TrainConfig) -> None:
    """The new run's folder and its config.json, written just before training starts."""
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        config.save(paths.config)
    except OSError as error:
        raise TrainingError(f"{paths.root}: cannot write the run folder ({error.strerror})") from None


def _load_or_build(paths: RunPaths, config: TrainConfig, arch, steps_per_epoch: int, from_checkpoint: bool):
    """The model that `fit` trains: the network, behind the augmentation layers when
    augmenting (they act only in training, and only the network is saved as model.keras)."""
    import keras

    if from_checkpoint:
        # Registers the custom layers and loss that a distilling run's checkpoint holds.
        from trainer import distill, view_layers  # noqa: F401
        from trainer.augment import allow_xla

        # The .keras checkpoint holds the optimizer too: its step count keeps the schedule in place.
        try:
            model = load_keras_file(paths.last, compile=True)
        except KerasFileError as error:
            if error.damaged:
                raise TrainingError(f"{error}; the run cannot resume from it (start a new run with another --out)") from None
            raise TrainingError(f"{paths.last}: cannot resume from this checkpoint ({error.reason})") from None
        allow_xla(model)
        return model
    network = arch.build()
    if config.weights:
        problem = keras_file_problem(config.weights)
        if problem:
            raise TrainingError(problem)
        try:
            network.load_weights(config.weights)
        except Exception as error:  # Keras raises many types for a wrong file; all mean the same.
            raise TrainingError(
                f"{config.weights}: cannot load weights into the {arch.name} network ({first_line(error)})"
            ) from None
    model = network
    if config.augment or config.teachers:
        from trainer.augment import allow_xla, build_augmenter

        spec = arch.input_spec
        inputs = keras.Input(network.input_shape[1:], name="face")
        faces = inputs
        if config.augment:
            value_range = (spec.offset, 255.0 * spec.scale + spec.offset)
            augmenter = build_augmenter(config.seed, value_range, erasing=config.erasing, crop_jitter=config.crop_jitter)
            faces = augmenter(inputs)
        outputs = network(faces)
        if config.teachers:
            from trainer.distill import build_teacher_ensemble

            try:
                teachers = build_teacher_ensemble(list(config.teachers), network.input_shape[1:], views=config.tta)
            except ValueError as error:
                raise TrainingError(str(error)) from None
            # The teachers see the same augmented faces as the student.
            outputs = keras.layers.Concatenate(name="student_and_teachers")([outputs, teachers(faces)])
        model = keras.Model(inputs, outputs, name="training")
        allow_xla(model)
    if config.teachers or config.teacher_targets:
        from trainer.distill import DistillationLoss, student_accuracy

        loss = DistillationLoss(
            config.distill_weight, config.distill_temperature, config.label_smoothing, teacher_in_labels=bool(config.teacher_targets)
        )
        metrics = [student_accuracy]
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metrics = ["accuracy"]
    from trainer.optimizers import build_optimizer

    model.compile(optimizer=build_optimizer(keras, config, steps_per_epoch), loss=loss, metrics=metrics)
    return model


def _random_generators(model) -> list:
    """The random-number generators of the model's layers (augmentation, dropout), in layer order."""
    import keras

    return [value for layer in model._flatten_layers() for value in vars(layer).values() if isinstance(value, keras.random.SeedGenerator)]


def _restore_random_states(model, states: list) -> None:
    """Puts the layers' random generators where the interrupted run left them: a .keras file
    does not hold them, and a resumed run would otherwise replay the first epoch's draws."""
    generators = _random_generators(model)
    if len(generators) != len(states):
        raise TrainingError(f"checkpoint: {len(generators)} random generators in the model, {len(states)} in state.json")
    for generator, values in zip(generators, states):
        generator.state.assign(np.asarray(values, dtype=generator.state.dtype))


def _core(model):
    """The network inside the training model (itself when there is no augmentation wrapper)."""
    if model.name != "training":
        return model
    return next(layer for layer in model.layers if hasattr(layer, "layers") and layer.name not in ("augment", "teachers"))


def _device(keras, distribution=None) -> str:
    """Where the backend will run, for the start-up line."""
    backend = keras.backend.backend()
    if distribution is not None:
        processes = distribution.settings.num_processes
        spread = f"{distribution.devices} devices" + (f" in {processes} processes" if processes > 1 else "")
        platform = distribution.device_names[0].strip("/").split(":")[0].upper()
        return f"{backend}/{platform}, data-parallel over {spread}"
    if backend == "jax":
        import jax

        return f"jax/{jax.devices()[0].platform.upper()}"
    if backend == "torch":
        import torch

        return "torch/GPU" if torch.cuda.is_available() else "torch/CPU"
    import tensorflow as tf

    return "tensorflow/GPU" if tf.config.list_physical_devices("GPU") else "tensorflow/CPU"


def _steps_per_epoch(count: int, batch_size: int, distribution=None) -> int:
    """The steps the learning-rate schedule counts: the batches an epoch really has (an even
    split over the devices cuts the last batch to a multiple of their number, or drops it)."""
    multiple = distribution.devices if distribution is not None and distribution.even_batches else 1
    return len(batch_bounds(count, batch_size, multiple))


def _fit_inputs(keras, config: TrainConfig, x_train, y_train, x_val, y_val, first_epoch: int, distribution=None) -> dict:
    """The data arguments of `fit`: tf.data pipelines on TensorFlow, plain arrays elsewhere,
    and batches made in Python (`trainer.epoch_batches`) on every backend for mixup and
    cutmix, and for data-parallel runs, whose batches must split evenly over the devices.

    Augmentation is part of the training model, so the input side only shuffles, batches and
    mixes, and the same loop runs on the TensorFlow, JAX and PyTorch backends (a GPU box
    without TensorFlow can train with KERAS_BACKEND=jax). On TensorFlow the pipelines are
    built here because Keras's own array adapter asks TF 2.21 for a dataset option it does
    not know and logs an error line every epoch.
    """
    if config.mixup > 0 or config.cutmix > 0 or (distribution is not None and distribution.even_batches):
        from trainer.epoch_batches import training_batches

        group = {}
        if distribution is not None and distribution.even_batches:
            settings = distribution.settings
            group = dict(devices=distribution.devices, process_id=settings.process_id, num_processes=settings.num_processes)
        mixing = dict(mixup=config.mixup, cutmix=config.cutmix)
        batches = training_batches(keras, x_train, y_train, config.batch_size, config.seed, first_epoch, **mixing, **group)
        # The batches are shuffled already; Keras's own shuffling would reorder them per process
        # and per run, so neither the processes' slices nor a resumed run would line up.
        train = dict(x=batches, shuffle=False)
    elif keras.backend.backend() != "tensorflow":
        train = dict(x=x_train, y=y_train, batch_size=config.batch_size, shuffle=True)
    else:
        import tensorflow as tf

        batches = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        batches = batches.shuffle(len(y_train), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
        train = dict(x=batches.prefetch(tf.data.AUTOTUNE))
    if distribution is not None and distribution.even_batches:
        return dict(**train, **_padded_validation(x_val, y_val, distribution.devices // distribution.settings.num_processes))
    if keras.backend.backend() != "tensorflow":
        return dict(**train, validation_data=(x_val, y_val), validation_batch_size=256)
    import tensorflow as tf

    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(256)
    return dict(**train, validation_data=val.prefetch(tf.data.AUTOTUNE))


def _padded_validation(x_val, y_val, local_devices: int) -> dict:
    """Validation data whose every batch splits evenly over this process's devices: the
    faces padded to a multiple of them with copies of the first face weighted 0, so the
    accuracy counts each real face once (the loss is averaged over the padded batch, which
    moves it by at most local_devices - 1 faces in thousands). Every process feeds all of
    them: duplicates across processes leave the means unchanged."""
    padding = -len(x_val) % local_devices
    weights = np.concatenate([np.ones(len(x_val), np.float32), np.zeros(padding, np.float32)])
    x_padded = np.concatenate([x_val, np.repeat(x_val[:1], padding, axis=0)])
    y_padded = np.concatenate([y_val, np.repeat(y_val[:1], padding, axis=0)])
    batch_size = -(-256 // local_devices) * local_devices
    return dict(validation_data=(x_padded, y_padded, weights), validation_batch_size=batch_size)


def _class_weights(labels: np.ndarray) -> dict[int, float]:
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    weights = len(labels) / (NUM_CLASSES * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}


def _EpochCheckpoint(
    keras, paths: RunPaths, config: TrainConfig, state: dict, arch: str, spec, deadline: float | None = None, writes: bool = True
):
    """Builds the callback that makes each finished epoch durable (when this process `writes`
    the run's files) and stops training early (patience, or past the `time.monotonic()`
    deadline); defined lazily: Keras. The processes of a group keep the same state from the
    same global metrics, so they stop together."""

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self.started
            learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            state["history"].append(
                {
                    "epoch": epoch + 1,
                    **{k: float(logs.get(k, float("nan"))) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                    "learning_rate": learning_rate,
                    "seconds": round(seconds, 2),
                }
            )
            state["train_seconds"] += seconds
            improved = logs.get("val_accuracy", -1.0) > state["best_val_accuracy"]
            if improved:
                state["best_val_accuracy"] = float(logs["val_accuracy"])
                state["best_epoch"] = epoch + 1
            state["epochs_done"] = epoch + 1
            state["random_states"] = [keras.ops.convert_to_numpy(g.state).tolist() for g in _random_generators(self.model)]
            if writes:
                from trainer.distributed import outside_distribution

                with outside_distribution(keras):
                    self.make_durable(improved)
            if config.patience and state["epochs_done"] - state["best_epoch"] >= config.patience:
                print(f"edge-train: no better val_accuracy for {config.patience} epochs; stopping early", flush=True)
                self.model.stop_training = True
            elif deadline is not None and time.monotonic() >= deadline and state["epochs_done"] < config.epochs:
                print(
                    f"edge-train: --max-minutes reached after epoch {state['epochs_done']}; "
                    f"continue with: edge-train --resume {paths.root}",
                    flush=True,
                )
                self.model.stop_training = True

        def make_durable(self, improved: bool):
            if improved:
                save_keras_file(_core(self.model), paths.best, arch, spec)
            paths.last.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(paths.last) as tmp:
                self.model.save(tmp)
            # state.json last: it only ever points at checkpoints that are already complete.
            write_json_atomic(paths.state, state)
            _write_history(paths.root / "history.csv", state["history"])

    return EpochCheckpoint()


def _write_history(path: Path, history: list[dict]) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [",".join(str(row.get(col, "")) for col in HISTORY_COLUMNS) for row in history]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _predict(model, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities for every face, batch by batch (no dataset adapter: see _fit_inputs)."""
    return predict_in_batches(model.predict_on_batch, faces, batch_size, NUM_CLASSES)


def _finish(paths: RunPaths, config: TrainConfig, state: dict, data: FerData, x_train, x_val, y_val, spec,
            distributed: dict | None = None) -> dict:

    from trainer.report import plot_confusion_matrix, plot_curves

    best = load_keras_file(paths.best, compile=True)
    best_val = _predict(best, x_val)
    val_report = classification_report(y_val, best_val)
    metrics = {
        "val_accuracy": val_report["accuracy"],
        "macro_f1": val_report["macro_f1"],
        "val": val_report,
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epochs_done"],
        "training_seconds": round(state["train_seconds"], 1),
        "counts": data.counts(),
        "class_counts": {name: dict(zip(LABELS, data.split(name).class_counts())) for name in data.splits},
        "parameters": int(best.count_params()),
        "config": config.to_dict(),
        "version": __version__,
    }
    if distributed:
        metrics["distribution"] = distributed
    # The best network averaged over its test-time views (itself with --tta none).
    averaged, averaged_val = best, best_val
    if config.tta != "none":
        from trainer.view_layers import averaged_over_views

        averaged = averaged_over_views(best, config.tta)
        averaged_val = _predict(averaged, x_val)
        metrics["tta"] = config.tta
        metrics["val_tta"] = classification_report(y_val, averaged_val)
    if len(data.split("test")):
        x_test = gray48_to_input(data.split("test").images, spec)
        metrics["test"] = classification_report(data.split("test").labels, _predict(best, x_test))
        if config.tta != "none":
            metrics["test_tta"] = classification_report(data.split("test").labels, _predict(averaged, x_test))
    if config.write_targets:
        from trainer.targets import TARGETS_FILE, fingerprint, write_targets

        train_probabilities = _predict(averaged, x_train)
        write_targets(paths.root / TARGETS_FILE, train_probabilities, averaged_val, config.tta, fingerprint(data.split("train").images))
    _write_history(paths.root / "history.csv", state["history"])
    write_json_atomic(paths.root / "metrics.json", metrics)
    if state["history"]:
        plot_curves(state["history"], paths.root / "curves.png")
    plot_confusion_matrix(np.asarray(val_report["confusion_matrix"]), paths.root / "confusion_matrix.png")
    return metrics
