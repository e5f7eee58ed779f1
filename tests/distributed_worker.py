"""Runs edge-train on the tiny test network in a process of its own, for the data-parallel
tests: the Keras backend and JAX's device count are fixed when a process starts, and a
process joins one process group at most.

    python -m tests.distributed_worker REPORT.json EDGE-TRAIN-ARGUMENTS...

REPORT.json receives, per finished epoch, the training loss and the devices holding a copy
of the network's first weight, and the exit code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main() -> int:
    report_path, arguments = Path(sys.argv[1]), sys.argv[2:]
    from edge_runtime.preprocess import InputSpec
    from tests.training_helpers import build_tiny
    from trainer import train as train_module
    from trainer.cli import app
    from trainer.models import ARCHITECTURES, Architecture

    ARCHITECTURES["edge"] = Architecture("edge", build_tiny, InputSpec(scale=1.0), "tiny")
    report: dict = {"epochs": []}
    make_checkpoint = train_module._EpochCheckpoint

    def recording(*args, **kwargs):
        callback = make_checkpoint(*args, **kwargs)
        finish_epoch = callback.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            weight = callback.model.trainable_variables[0].value
            if hasattr(weight, "sharding"):  # JAX: one array over the mesh
                devices = sorted(str(device) for device in weight.sharding.device_set)
            else:  # TensorFlow: a MirroredVariable holds one copy per device
                devices = sorted(copy.device for copy in getattr(weight, "values", [weight]))
            report["epochs"].append({"loss": float(logs["loss"]), "devices": devices})
            finish_epoch(epoch, logs)

        callback.on_epoch_end = on_epoch_end
        return callback

    train_module._EpochCheckpoint = recording
    try:
        # Not standalone: typer.Exit comes back as its exit code instead of ending the process.
        report["exit_code"] = app(arguments, standalone_mode=False) or 0
    finally:
        report_path.write_text(json.dumps(report))
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
