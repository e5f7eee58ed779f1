"""Keras layers for test-time views (`trainer.views.VIEWS`): the views are stacked along
the batch axis, so a network runs once on all of them, and averaged back per face."""

from __future__ import annotations

import keras
from keras import layers, ops

from trainer.views import CROP_ZOOM, VIEWS


@keras.saving.register_keras_serializable(package="edge_emotion")
class StackedViews(layers.Layer):
    """(N, H, W, C) faces -> (views * N, H, W, C): view-major, so view v of face i is row v * N + i."""

    def __init__(self, views: str = "flip", **kwargs):
        super().__init__(**kwargs)
        if views not in VIEWS:
            raise ValueError(f"views {views!r}: expected one of {', '.join(VIEWS)}")
        self.views = views

    def call(self, faces):
        if self.views == "none":
            return faces
        crops = [faces] if self.views == "flip" else five_crops(faces)
        return ops.concatenate(crops + [ops.flip(crop, axis=2) for crop in crops], axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] * VIEWS[self.views].count
        return (batch, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "views": self.views}


@keras.saving.register_keras_serializable(package="edge_emotion")
class ViewMean(layers.Layer):
    """(views * N, classes) -> (N, classes): the mean over each face's views."""

    def __init__(self, count: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def call(self, probabilities):
        classes = ops.shape(probabilities)[-1]
        return ops.mean(ops.reshape(probabilities, (self.count, -1, classes)), axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.count
        return (batch, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def five_crops(faces) -> list:
    """Top-left, top-right, bottom-left, bottom-right and centre crops of the enlarged faces."""
    height, width = faces.shape[1], faces.shape[2]
    big_h, big_w = round(height * CROP_ZOOM), round(width * CROP_ZOOM)
    enlarged = ops.image.resize(faces, (big_h, big_w), interpolation="bilinear")
    dy, dx = big_h - height, big_w - width
    corners = [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]
    return [enlarged[:, y : y + height, x : x + width, :] for y, x in corners]


def averaged_over_views(network, views: str, name: str | None = None):
    """A model that outputs `network`'s probabilities averaged over the named views.

    Args:
        network: a Keras model mapping faces to probabilities.
        views: a name from VIEWS.
        name: the returned model's name (default: the network's with the views appended).
    """
    inputs = keras.Input(network.input_shape[1:], name="face")
    outputs = ViewMean(VIEWS[views].count, name="view_mean")(network(StackedViews(views, name="views")(inputs)))
    return keras.Model(inputs, outputs, name=name or f"{network.name}_{views}")
