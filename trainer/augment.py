"""Training-time augmentation: layers that sit in front of the network while it trains and
act only with training=True, so they cost nothing at evaluation and are never exported."""

from __future__ import annotations

import keras
from keras import layers


def build_augmenter(seed: int, value_range: tuple[float, float] = (0.0, 255.0), erasing: float = 0.0) -> keras.Sequential:
    """Flips, small shifts, rotations and zooms (the jitter of a detector's crop), brightness
    and contrast changes, and, with `erasing` > 0, random erasing: a rectangle of noise over
    part of the face in that fraction of the images (a stand-in for hands, glasses and hair).

    Args:
        seed: seeds each layer, so a run repeats.
        value_range: the range of the model-input pixels.
        erasing: probability that a face gets an erased rectangle (0: never).
    """
    augmentation = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
        layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 2),  # about +-11 degrees
        layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 3),
        layers.RandomContrast(0.3, value_range=value_range, seed=seed + 4),
        layers.RandomBrightness(0.2, value_range=value_range, seed=seed + 5),
    ]
    if erasing > 0:
        # A (p, p) factor is a fixed probability p; a bare float would draw p from [0, p).
        augmentation.append(layers.RandomErasing(factor=(erasing, erasing), scale=(0.02, 0.25), value_range=value_range, seed=seed + 6))
    return keras.Sequential(augmentation, name="augment")


def allow_xla(model) -> None:
    """Lets Keras compile a model holding the geometric augmentation layers with XLA on the
    JAX and PyTorch backends. Those layers opt out of XLA for TensorFlow's sake (its image
    transform kernel has none); on the other backends they are plain array ops, and without
    XLA a JAX step runs op by op, dozens of times slower."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    for layer in model._flatten_layers():
        layer.supports_jit = True
    if model.compiled:
        model.jit_compile = True
