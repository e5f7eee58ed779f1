"""Test-time views: which views of a face a network's probabilities are averaged over.

Used for the teachers' distillation targets and for the test-time-averaged evaluation a run
writes into metrics.json. "crops" is the ten-crop of the published FER-2013 networks: the
face is enlarged by CROP_ZOOM, and the four corners and the centre of that view, at the
network's input size, are taken with their mirror images. The Keras layers that make the
views are in `trainer.view_layers`; this table is read by the CLI without importing Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

# The enlarged view the crops are cut from: 54 x 54 pixels for a 48 x 48 network, so a
# corner crop is shifted by 6 pixels (12.5% of the face) from the centre one.
CROP_ZOOM = 1.125


@dataclass(frozen=True)
class ViewSet:
    """A name `--tta` accepts and how many views of each face it averages."""

    name: str
    count: int
    description: str


VIEWS: dict[str, ViewSet] = {
    views.name: views
    for views in (
        ViewSet("none", 1, "the face as it is"),
        ViewSet("flip", 2, "the face and its mirror image"),
        ViewSet("crops", 10, f"ten-crop: 4 corners and the centre of the face enlarged {CROP_ZOOM}x, each with its mirror"),
    )
}
