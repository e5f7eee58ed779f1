"""Shared fixtures: synthetic data sets and one tiny trained model per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.synthetic import write_csv, write_folder

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_FER = SHARED / "fer2013"
SHARED_YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"

# Tests never touch the user's cache or the network: they get a cache of their own (set here,
# before anything reads it, so subprocesses inherit it too), holding the YuNet file from
# ../shared/models when it is there, and a download mirror on a closed local port.
TEST_CACHE = Path(tempfile.mkdtemp(prefix="edge-emotion-test-cache-"))
os.environ["EDGE_EMOTION_CACHE"] = str(TEST_CACHE)
# Libraries underneath (matplotlib's font list, anything XDG-aware) cache there too, not in ~/.cache.
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE / "xdg")
os.environ["MPLCONFIGDIR"] = str(TEST_CACHE / "matplotlib")
os.environ["EDGE_EMOTION_MODEL_MIRROR"] = "http://127.0.0.1:9"
if SHARED_YUNET.is_file():
    (TEST_CACHE / "models").mkdir(parents=True)
    shutil.copyfile(SHARED_YUNET, TEST_CACHE / "models" / SHARED_YUNET.name)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(TEST_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def fer_folder(tmp_path_factory) -> Path:
    """Synthetic FER-2013 folder layout: 20 train and 6 PublicTest faces per class."""
    return write_folder(tmp_path_factory.mktemp("fer_folder"), train_per_class=20, test_per_class=6, seed=1)


@pytest.fixture(scope="session")
def fer_csv(tmp_path_factory) -> Path:
    """Synthetic fer2013.csv: 20 Training, 6 PublicTest, 4 PrivateTest rows per class."""
    path = tmp_path_factory.mktemp("fer_csv") / "fer2013.csv"
    return write_csv(path, {"Training": 20, "PublicTest": 6, "PrivateTest": 4}, seed=2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny CNN (raw 0-255 input, rescaled inside) trained a few epochs on synthetic faces,
    saved as model.keras with its metadata sidecar. Built once per test session."""
    keras = pytest.importorskip("keras")
    from keras import layers

    from edge_runtime.preprocess import InputSpec, gray48_to_input
    from tests.synthetic import synthetic_split
    from trainer.train import save_model

    keras.utils.set_random_seed(0)
    spec = InputSpec(scale=1.0)
    images, labels = synthetic_split(40, seed=3)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(8, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.8),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(7, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(gray48_to_input(images, spec), labels, epochs=25, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("tiny_model") / "model.keras"
    save_model(model, path, "tiny", spec)
    return path
