"""Fakes for the benchmark tests (a clock that only moves when told, a backend that "costs" a
fixed time per face on that clock), and the tests that the fakes behave as the others assume.
No real timing is ever asserted."""

from __future__ import annotations

import numpy as np

from edge_runtime.labels import LABELS
from edge_runtime.model_files.metadata import ModelMetadata
from edge_runtime.preprocess import faces_to_batch


class FakeClock:
    """Seconds that advance only through `advance` (or by `tick` on every reading)."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 0.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeBackend:
    """Answers the face's mean brightness bucket as its class; each call costs `cost` seconds per face."""

    name = "fake"

    def __init__(self, clock: FakeClock, cost: float = 0.001, fmt: str = "tflite-int8", fail_on_call: int | None = None) -> None:
        self.clock = clock
        self.cost = cost
        self.metadata = ModelMetadata(format=fmt)
        self.labels = LABELS
        self.model_path = "fake.tflite"
        self.inputs: list[np.ndarray] = []
        self.fail_on_call = fail_on_call
        self.closed = False

    def predict(self, batch: np.ndarray, flip_average: bool = False) -> np.ndarray:
        if self.fail_on_call is not None and len(self.inputs) == self.fail_on_call:
            raise RuntimeError("interpreter exploded")
        self.inputs.append(batch)
        self.clock.advance(self.cost * len(batch))
        classes = (batch.reshape(len(batch), -1).mean(axis=1) // 37).astype(int) % len(LABELS)
        return np.eye(len(LABELS), dtype=np.float32)[classes]

    def predict_faces(self, faces, flip_average: bool = False) -> np.ndarray:
        return self.predict(faces_to_batch(faces, self.metadata.input))

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_fake_clock_moves_only_when_told():
    clock = FakeClock()
    assert clock() == clock() == 0.0
    clock.advance(0.5)
    assert clock() == 0.5
    assert FakeClock(tick=1.0)() == 1.0


def test_fake_backend_charges_per_face_and_records_inputs():
    clock = FakeClock()
    backend = FakeBackend(clock, cost=0.01)
    probabilities = backend.predict(np.zeros((3, 48, 48, 1), np.float32))
    assert probabilities.shape == (3, len(LABELS))
    assert clock() == 0.03
    assert len(backend.inputs) == 1
