"""Training-time augmentation, applied in the input pipeline and never saved in the model,
so exported models contain no random layers."""

from __future__ import annotations

import keras
from keras import layers


def build_augmenter(seed: int, value_range: tuple[float, float] = (0.0, 255.0)) -> keras.Sequential:
    """Flips, small shifts, rotations and zooms (the jitter of a detector's crop), and
    brightness/contrast changes, in the model-input range `value_range`."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
            layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 2),  # about +-11 degrees
            layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 3),
            layers.RandomContrast(0.3, value_range=value_range, seed=seed + 4),
            layers.RandomBrightness(0.2, value_range=value_range, seed=seed + 5),
        ],
        name="augment",
    )
