"""Training-time augmentation: layers that sit in front of the network while it trains and
act only with training=True, so they cost nothing at evaluation and are never exported.
The CROP_JITTERS table is read by the CLI too, so Keras is imported only to build layers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CropJitter:
    """How far the training crops wander from the dataset's own framing.

    Attributes:
        name: what `--crop-jitter` accepts.
        shift: the largest shift of the crop, as a fraction of its side, each direction.
        scale: the smallest and largest side of the crop relative to the dataset's crop
            (above 1: more of the surroundings, a smaller face).
        description: for the help text and the README.
    """

    name: str
    shift: float
    scale: tuple[float, float]
    description: str


CROP_JITTERS: dict[str, CropJitter] = {
    jitter.name: jitter
    for jitter in (
        CropJitter("fer", 0.10, (0.9, 1.1), "shifts up to 10% and scale 0.9-1.1 around FER-2013's own crops"),
        # A face detector's box sits a few percent off FER-2013's framing and is up to a
        # quarter larger (Haar and YuNet boxes, expanded by the runtime's margin).
        CropJitter("detector", 0.06, (0.9, 1.25), "shifts up to 6% and scale 0.9-1.25: the framings of the runtime's face detectors"),
    )
}


def build_augmenter(seed: int, value_range: tuple[float, float] = (0.0, 255.0), erasing: float = 0.0, crop_jitter: str = "fer"):
    """Flips, shifts, rotations and zooms (the jitter of a detector's crop, `CROP_JITTERS`),
    brightness and contrast changes, and, with `erasing` > 0, random erasing: a rectangle of
    noise over part of the face in that fraction of the images (a stand-in for hands,
    glasses and hair).

    Args:
        seed: seeds each layer, so a run repeats.
        value_range: the range of the model-input pixels.
        erasing: probability that a face gets an erased rectangle (0: never).
        crop_jitter: a name from CROP_JITTERS.

    Returns:
        A keras.Sequential named "augment".
    """
    import keras
    from keras import layers

    jitter = CROP_JITTERS[crop_jitter]
    # RandomZoom's factor is the change of the crop's side: positive shows more (zooms out).
    zoom = (jitter.scale[0] - 1.0, jitter.scale[1] - 1.0)
    augmentation = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(jitter.shift, jitter.shift, fill_mode="reflect", seed=seed + 1),
        layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 2),  # about +-11 degrees
        layers.RandomZoom(zoom, fill_mode="reflect", seed=seed + 3),
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
