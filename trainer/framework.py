"""Is a deep-learning framework installed? Asked before any data is read, so that a machine with
only the runtime installed gets one line saying what to install instead of a traceback after
minutes of decoding FER-2013."""

from __future__ import annotations

from edge_runtime.model_files.formats import install_hint, module_available

# Keras 3 runs on any of these; the `train` extra installs TensorFlow.
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
TRAIN_INSTALL_HINT = install_hint("train")


def framework_problem() -> str | None:
    """What is missing for training, as one line with the install command; None when nothing is.

    Returns:
        None when Keras and one of its backends import, else the message to print.
    """
    if not module_available("keras"):
        return f"edge-train needs Keras and TensorFlow, which are not installed: {TRAIN_INSTALL_HINT}"
    if not any(module_available(name) for name in KERAS_BACKENDS):
        return f"edge-train needs a Keras backend (TensorFlow, JAX or PyTorch), none is installed: {TRAIN_INSTALL_HINT}"
    return None
