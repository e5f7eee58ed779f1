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


def build_vgg_large(widths: tuple[int, ...] = (64, 128, 256, 512), dense: int = 4096, dropout: float = 0.2) -> keras.Model:
    """A teacher of the published FER-2013 VGG variant's shape: four blocks of two 3x3 conv +
    batch norm, max pooling after each, two 4096-unit dense layers (about 40.4M parameters at
    48 x 48; the published network has 29.9M at its 40 x 40 crops)."""
    inputs = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, width in enumerate(widths, start=1):
        x = _conv_bn_relu(x, width, f"b{block}a")
        x = _conv_bn_relu(x, width, f"b{block}b")
        x = layers.MaxPooling2D(2, name=f"b{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = layers.Dense(dense, activation="relu", kernel_initializer="he_normal", name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="vgg_large")


def _basic_block(x, filters: int, stride: int, name: str):
    """ResNet's basic block: two 3x3 conv + batch norm, with a 1x1 projection when the shape changes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer="he_normal", name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def build_resnet18() -> keras.Model:
    """ResNet-18 for 48 x 48 x 1 faces (about 11.2M parameters): ImageNet's 7x7 stride-2 stem
    and max pooling would leave 1.5 x 1.5 pixels for the last stage, so the stem is one 3x3
    conv at full resolution (the CIFAR variant) and the stages run at 48, 24, 12 and 6 pixels."""
    inputs = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = _conv_bn_relu(x, 64, "stem")
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        x = _basic_block(x, filters, 1 if stage == 1 else 2, f"s{stage}b1")
        x = _basic_block(x, filters, 1, f"s{stage}b2")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="resnet18")


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
        Architecture("vgg", build_vgg_large, InputSpec(scale=1.0), "teacher: the published FER-2013 VGG variant (40.4M parameters)"),
        Architecture("resnet18", build_resnet18, InputSpec(scale=1.0), "teacher: ResNet-18, 3x3 stem for 48 x 48 faces (11.2M parameters)"),
    )
}
