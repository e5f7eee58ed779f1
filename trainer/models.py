"""The network architectures, one builder per name in ARCHITECTURES.

Each architecture also fixes how pixels are scaled (`InputSpec`), because that is part of
what its weights learned: the seed's network expects pixels / 255 from outside, the edge
network takes raw 0-255 pixels and rescales inside, which lets an int8 TFLite model take
camera pixels with a lossless input quantisation (scale 1, zero point -128).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from edge_runtime.labels import NUM_CLASSES
from edge_runtime.preprocess import FACE_SIZE, InputSpec

INPUT_SHAPE = (FACE_SIZE, FACE_SIZE, 1)


def build_seed() -> keras.Model:
    """The seed project's network, layer for layer (2,345,607 parameters)."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Conv2D(128, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(128, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="seed",
    )


def _conv_bn_relu(x, filters: int, name: str):
    # No conv bias: batch norm's shift replaces it, and converters fold BN into the conv.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_edge_vgg(widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4) -> keras.Model:
    """VGG-style edge network: four blocks of two 3x3 conv + batch norm, global average
    pooling, one dense layer (about 1.18M parameters, about 117M multiply-adds)."""
    inputs = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, width in enumerate(widths, start=1):
        x = _conv_bn_relu(x, width, f"b{block}a")
        x = _conv_bn_relu(x, width, f"b{block}b")
        if block < len(widths):
            x = layers.MaxPooling2D(2, name=f"b{block}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="edge_vgg")


@dataclass(frozen=True)
class Architecture:
    """A named network with the input scaling its weights expect."""

    name: str
    build: Callable[[], keras.Model]
    input_spec: InputSpec
    description: str


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture("edge", build_edge_vgg, InputSpec(scale=1.0), "VGG-style, batch norm, global pooling (default)"),
        Architecture(
            "edge-wide",
            lambda: build_edge_vgg(widths=(32, 64, 160, 320)),
            InputSpec(scale=1.0),
            "the edge network with wider last blocks (about 1.8M parameters, 150M multiply-adds)",
        ),
        Architecture("seed", build_seed, InputSpec(scale=1.0 / 255.0), "the seed project's network, exactly"),
    )
}
