"""Data-parallel training over several devices and processes, on an existing engine: Keras 3's
distribution API on JAX (`keras.distribution.DataParallel` over a `DeviceMesh`; several
processes join through `keras.distribution.initialize`, JAX's distributed runtime), or, on
TensorFlow and one machine, `tf.distribute.MirroredStrategy`. This is the only module that
knows the engines; the training loop asks it for the device count, the process's place, the
scope to build the model in and whether this process writes the run's files.

Every device holds a replica of the weights and computes on its slice of each global batch;
the gradients are averaged across all devices, so a step sees the same batch and takes the
same update as on one device (batch norm's statistics are those of the global batch too).

Several processes need JAX: TensorFlow's `tf.distribute.MultiWorkerMirroredStrategy` does not
work with Keras 3 (keras issue 20585), and Keras's distribution API does not support
TensorFlow yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from edge_runtime.model_files.formats import install_hint

# What Keras's own `initialize` reads when it is given nothing (its documented variables).
ENV_COORDINATOR = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
INSTALL_HINT = f"{install_hint('distributed')}: JAX for CPUs; on GPUs the jax extra that matches the CUDA driver"


class DistributionError(ValueError):
    """A distribution setting that cannot work; the message names the option."""


@dataclass(frozen=True)
class DistributionSettings:
    """How a run spreads over devices and processes (not part of the run's recipe: a run may
    resume on another number of devices).

    Attributes:
        devices: devices this process uses (0: all it sees).
        coordinator: host:port of process 0 (with several processes).
        num_processes: processes training together (1: this one alone).
        process_id: this process's number, 0 to num_processes - 1; process 0 writes the run.
    """

    devices: int = 0
    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0

    @property
    def writes_files(self) -> bool:
        return self.process_id == 0


def settings_from(
    devices: int | None,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> DistributionSettings | None:
    """The settings from the command-line options, falling back on Keras's environment
    variables for the process group; None when nothing asks for distribution.

    Raises:
        DistributionError: a setting out of range, or several processes without a coordinator.
    """
    coordinator = coordinator or environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(environ, ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(environ, ENV_PROCESS_ID)
    if devices is None and num_processes is None:
        return None
    num_processes = 1 if num_processes is None else num_processes
    process_id = 0 if process_id is None else process_id
    if num_processes < 1:
        raise DistributionError(f"--num-processes {num_processes}: expected 1 or more")
    if not 0 <= process_id < num_processes:
        raise DistributionError(f"--process-id {process_id}: expected 0 to {num_processes - 1} for {num_processes} processes")
    if num_processes > 1 and not coordinator:
        raise DistributionError(f"--num-processes {num_processes} needs --coordinator HOST:PORT (process 0's address) or {ENV_COORDINATOR}")
    if devices is not None and devices < 0:
        raise DistributionError(f"--devices {devices}: expected 0 (all) or more")
    return DistributionSettings(devices or 0, coordinator, num_processes, process_id)


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DistributionError(f"{name}={value!r}: expected a whole number") from None


@dataclass(frozen=True)
class ActiveDistribution:
    """A started distribution: what the training loop needs to know about it."""

    settings: DistributionSettings
    device_names: tuple[str, ...]  # every device taking part, in all processes
    engine: str  # "jax" (DataParallel) or "mirrored" (TensorFlow's MirroredStrategy)
    strategy: object = None  # the MirroredStrategy

    @property
    def devices(self) -> int:
        return len(self.device_names)

    @property
    def even_batches(self) -> bool:
        """Whether every batch must split evenly over the devices, each process feeding its
        own slice (DataParallel; MirroredStrategy splits tf.data batches itself)."""
        return self.engine == "jax"

    def scope(self):
        """Where the model must be built (and loaded) to be replicated."""
        return self.strategy.scope() if self.strategy is not None else nullcontext()

    def describe(self) -> dict:
        """For metrics.json: what the run was spread over."""
        engines = {"jax": "keras.distribution.DataParallel (jax)", "mirrored": "tf.distribute.MirroredStrategy"}
        return {"engine": engines[self.engine], "devices": list(self.device_names), "processes": self.settings.num_processes}


def start(keras, settings: DistributionSettings) -> ActiveDistribution:
    """On JAX, joins the process group (several processes) and makes DataParallel the
    distribution of every model built from now on; on TensorFlow, makes the MirroredStrategy
    whose scope the model is built in. Call before Keras computes anything.

    Raises:
        DistributionError: another backend, several processes on TensorFlow, JAX missing, or
            fewer devices than asked for.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _start_mirrored(settings)
    if backend != "jax":
        raise DistributionError(f"--devices needs KERAS_BACKEND=jax or tensorflow (this is {backend})")
    try:
        import jax
    except ImportError:
        raise DistributionError(f"--devices needs JAX: {INSTALL_HINT}") from None
    if settings.num_processes > 1:
        # CPUs exchange gradients through gloo; GPUs ignore this and use NCCL.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize(settings.coordinator, settings.num_processes, settings.process_id)
    local = jax.local_devices()
    if settings.devices > len(local):
        raise DistributionError(f"--devices {settings.devices}: this process sees {len(local)} ({', '.join(str(d) for d in local)})")
    per_process = settings.devices or len(local)
    # Every process must name the same mesh: the first `per_process` devices of each process.
    chosen = [device for device in jax.devices() if device.id in _first_ids(jax, per_process)]
    names = tuple(f"{device.platform}:{device.id}" for device in chosen)
    mesh = keras.distribution.DeviceMesh((len(names),), ["batch"], list(names))
    # Each process feeds its own slice of every global batch (trainer.epoch_batches), which
    # Keras's auto-sharding would otherwise expect to do from a tf.data pipeline.
    keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=False))
    return ActiveDistribution(settings, names, "jax")


def _start_mirrored(settings: DistributionSettings) -> ActiveDistribution:
    """MirroredStrategy over this machine's first N GPUs; without GPUs, over N logical
    devices split from the CPU (a check of the mechanics, not a speed-up)."""
    if settings.num_processes > 1:
        raise DistributionError(
            "--num-processes on TensorFlow: MultiWorkerMirroredStrategy does not work with Keras 3 (keras issue 20585); "
            "use KERAS_BACKEND=jax"
        )
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    count = settings.devices or max(1, len(gpus))
    if gpus and count > len(gpus):
        raise DistributionError(f"--devices {count}: this machine has {len(gpus)} GPUs")
    if not gpus and count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:
            raise DistributionError(f"--devices {count}: TensorFlow had started before its CPU could be split") from None
    names = tuple(f"/{'gpu' if gpus else 'cpu'}:{index}" for index in range(count))
    return ActiveDistribution(settings, names, "mirrored", tf.distribute.MirroredStrategy(list(names)))


def _first_ids(jax, per_process: int) -> set[int]:
    by_process: dict[int, list[int]] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device.id)
    return {device_id for ids in by_process.values() for device_id in sorted(ids)[:per_process]}


@contextmanager
def outside_distribution(keras):
    """Keras as on one device for a while, for what one process does alone: saving a model
    builds helper variables (an optimizer's step counter), which under the distribution
    would wait for every other process to build them too."""
    active = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(active)


def stop(keras) -> None:
    """Back to one device, for the evaluation that only process 0 runs."""
    keras.distribution.set_distribution(None)
