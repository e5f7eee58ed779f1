"""Mixup and cutmix: training batches whose faces and labels are blends of two faces.

Mixing happens where the batches are made, before the augmentation layers inside the model,
because it changes the labels as well as the pixels. The labels stay probability vectors, so
label smoothing and distillation work on them unchanged (the teachers see the mixed face).
"""

from __future__ import annotations

import numpy as np


def mix_batch(
    faces: np.ndarray, labels: np.ndarray, rng: np.random.Generator, mixup: float = 0.0, cutmix: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Blends each face of a batch with another face of the same batch.

    With both alphas set, each batch is mixed one way or the other with equal chance.

    Args:
        faces: (N, H, W, C) model-input faces.
        labels: (N, classes) one-hot or soft labels.
        rng: the random generator (seeded by the caller, so a run repeats).
        mixup: Beta(alpha, alpha) for the blend weight of mixup (0: off).
        cutmix: Beta(alpha, alpha) for the kept area of cutmix (0: off).

    Returns:
        The mixed faces and labels (new arrays; the inputs are not changed).
    """
    kinds = [kind for kind, alpha in (("mixup", mixup), ("cutmix", cutmix)) if alpha > 0]
    if not kinds or len(faces) < 2:
        return faces, labels
    kind = kinds[rng.integers(len(kinds))]
    partner = rng.permutation(len(faces))
    if kind == "mixup":
        weight = rng.beta(mixup, mixup)
        mixed = weight * faces + (1.0 - weight) * faces[partner]
    else:
        mixed, weight = _cut_and_paste(faces, partner, rng.beta(cutmix, cutmix), rng)
    return mixed.astype(faces.dtype), (weight * labels + (1.0 - weight) * labels[partner]).astype(labels.dtype)


def _cut_and_paste(faces: np.ndarray, partner: np.ndarray, keep: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Pastes a rectangle of the partner faces covering about 1 - keep of the area; returns
    the faces and the share of each face that is still its own (the label weight)."""
    height, width = faces.shape[1:3]
    cut_h, cut_w = int(round(height * np.sqrt(1.0 - keep))), int(round(width * np.sqrt(1.0 - keep)))
    centre_y, centre_x = rng.integers(height), rng.integers(width)
    top, bottom = np.clip([centre_y - cut_h // 2, centre_y + cut_h - cut_h // 2], 0, height)
    left, right = np.clip([centre_x - cut_w // 2, centre_x + cut_w - cut_w // 2], 0, width)
    mixed = faces.copy()
    mixed[:, top:bottom, left:right] = faces[partner, top:bottom, left:right]
    # Clipping at the border shrinks the box: the label follows the area actually pasted.
    return mixed, 1.0 - (bottom - top) * (right - left) / (height * width)
