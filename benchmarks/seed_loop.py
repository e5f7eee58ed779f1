"""The seed project's display loop, reproduced step for step, as the baseline every other
pipeline row is compared with.

Per frame the seed: loads the Haar cascade from its XML file again; converts the full frame
to grayscale; runs `detectMultiScale(gray, scaleFactor=1.3, minNeighbors=5)` at full
resolution; and for each face, one at a time: crops it, resizes it to 48x48, expands its
dimensions to (1, 48, 48, 1), calls Keras `model.predict`, and draws a rectangle and the label.
The one deliberate difference: the crop is scaled by the model's own input spec (the seed fed
raw 0-255 pixels to a network trained on pixels / 255), so the baseline classifies correctly
and only its speed is being compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.detectors.haar import default_cascade_path
from edge_runtime.preprocess import InputSpec, gray48_to_input

SEED_SCALE_FACTOR = 1.3
SEED_MIN_NEIGHBORS = 5


class SeedLoop:
    """The seed loop's per-frame work, with its stage timings.

    Args:
        predict: (1, 48, 48, 1) float32 -> (1, classes) probabilities (Keras `model.predict`).
        labels: class names in output order.
        spec: the model's input scaling.
        cascade_path: the cascade XML loaded on every frame.
        clock: seconds.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        labels: tuple[str, ...],
        spec: InputSpec,
        cascade_path: str | Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.predict = predict
        self.labels = labels
        self.spec = spec
        self.cascade_path = str(cascade_path or default_cascade_path())
        self.clock = clock
        self._close = close

    @classmethod
    def load(cls, model_path: str | Path, threads: int | None = None) -> SeedLoop:
        """The Keras model through the Keras backend, called the seed's way (`model.predict`).

        Raises:
            BackendError: TensorFlow missing or a bad model file.
        """
        from edge_runtime.backends import load_backend
        from edge_runtime.model_files.formats import MASTER_FORMAT

        backend = load_backend(model_path, MASTER_FORMAT.backend, threads=threads)

        def predict_seed_style(batch: np.ndarray) -> np.ndarray:
            # `model.predict` on every batch, as the seed's display loop called it: the cost the
            # seed paid per frame, which `model(x)` in the Keras backend does not pay.
            return backend.model.predict(batch, verbose=0)

        return cls(predict_seed_style, backend.labels, backend.metadata.input, close=backend.close)

    def process(self, frame: np.ndarray):
        """Detects and classifies the faces of one frame the seed's way.

        Returns:
            ([(box, label)], {"detect", "preprocess", "infer"} seconds).
        """
        clock = self.clock
        start = clock()
        # The seed built its classifier inside the frame loop, so it parsed the XML every frame.
        cascade = cv2.CascadeClassifier(self.cascade_path)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        boxes = cascade.detectMultiScale(gray, scaleFactor=SEED_SCALE_FACTOR, minNeighbors=SEED_MIN_NEIGHBORS)
        timings = {"detect": clock() - start, "preprocess": 0.0, "infer": 0.0}
        faces = []
        for x, y, w, h in np.asarray(boxes).reshape(-1, 4):
            before = clock()
            roi_gray = gray[y : y + h, x : x + w]
            cropped = gray48_to_input(np.expand_dims(cv2.resize(roi_gray, (48, 48)), 0), self.spec)
            prepared = clock()
            prediction = self.predict(cropped)
            done = clock()
            timings["preprocess"] += prepared - before
            timings["infer"] += done - prepared
            faces.append(((int(x), int(y), int(w), int(h)), self.labels[int(np.argmax(prediction))]))
        return faces, timings

    @staticmethod
    def draw(frame: np.ndarray, faces, fps=None) -> np.ndarray:
        """The seed's overlay: a rectangle and the label above each face."""
        for (x, y, w, h), label in faces:
            cv2.rectangle(frame, (x, y - 50), (x + w, y + h + 10), (255, 0, 0), 2)
            cv2.putText(frame, label, (x + 20, y - 60), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2, cv2.LINE_AA)
        return frame

    def close(self) -> None:
        self._close()
