"""Test-time flip averaging: one model call on the faces and their mirror images."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.backends import load_backend
from edge_runtime.preprocess import gray48_to_input
from tests.conftest import FIXTURE_MODELS
from tests.synthetic import synthetic_split

pytest.importorskip("onnxruntime")


def test_flip_average_is_the_mean_of_both_views():
    images, _ = synthetic_split(2, seed=11)
    with load_backend(FIXTURE_MODELS["onnx"], "onnx") as backend:
        batch = gray48_to_input(images, backend.metadata.input)
        plain = backend.predict(batch)
        mirrored = backend.predict(batch[:, :, ::-1])
        averaged = backend.predict(batch, flip_average=True)
        by_faces = backend.predict_faces(list(images), flip_average=True)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(by_faces, averaged, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-5)
    # The synthetic strokes are not mirror-symmetric, so the views really differ.
    assert np.abs(plain - mirrored).max() > 1e-3
