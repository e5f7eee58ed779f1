"""Shared fixtures: synthetic data sets and one tiny trained model per test session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from edge_runtime.model_files.formats import install_hint
from tests.synthetic import write_csv, write_folder

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The runs the tests stop with Ctrl-C must see it as a user's terminal delivers it. A suite
# started in the background of a script (`pytest &`) inherits SIGINT ignored, and a run keeps an
# ignored signal ignored, as it does under nohup; a handled signal reverts to the default in the
# processes the tests start.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_FER = SHARED / "fer2013"
SHARED_YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"
# The Keras master stays in the repository's models/, out of the wheel: the tests read it from
# the clone they belong to, also where the package under test was installed from a wheel.
REPOSITORY_MODELS = Path(__file__).resolve().parents[1] / "models"
# The tiny CNN of `tiny_model`, exported once (tools/make_test_models.py) and checked in, so the
# runtime's tests run in an install without TensorFlow.
FIXTURE_MODELS = {
    "onnx": Path(__file__).resolve().parent / "fixtures" / "tiny_fp32.onnx",
    "tflite": Path(__file__).resolve().parent / "fixtures" / "tiny_int8.tflite",
}
NEEDS_TF = f"needs TensorFlow (Keras): {install_hint('train')}"

# Tests never touch the user's cache or the network: they get a cache of their own (set here,
# before anything reads it, so subprocesses inherit it too), holding the YuNet file from
# ../shared/models when it is there, and a download mirror on a closed local port.
TEST_CACHE = Path(tempfile.mkdtemp(prefix="edge-emotion-test-cache-"))
os.environ["EDGE_EMOTION_CACHE"] = str(TEST_CACHE)
# Libraries underneath (matplotlib's font list, anything XDG-aware) cache there too, not in ~/.cache.
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE / "xdg")
os.environ["MPLCONFIGDIR"] = str(TEST_CACHE / "matplotlib")
os.environ["EDGE_EMOTION_MODEL_MIRROR"] = "http://127.0.0.1:9"
# ONNX Runtime (1.29+) on Linux keeps a telemetry device id and event cache in
# $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime and uploads events; its documented opt-out,
# read once when it starts, creates neither.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
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
    saved as model.keras with its metadata sidecar. Built once per test session; needs Keras."""
    pytest.importorskip("keras", reason=NEEDS_TF)
    from tests.tiny_model import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model.keras")


@pytest.fixture(scope="module")
def two_face_scene():
    """A 640x480 frame with two real faces from the demo assets at known boxes."""
    import cv2

    from fer_data.scenes import background, demo_faces

    faces = dict(demo_faces())
    frame = background(seed=5)
    boxes = [(40, 120, 170, 170), (380, 60, 180, 180)]
    for (x, y, w, h), label in zip(boxes, ("happy", "surprise")):
        frame[y : y + h, x : x + w] = cv2.resize(faces[label], (w, h))[:, :, None]
    return frame, boxes


# --- a small disk that fills up -----------------------------------------------------------------


def mount_tmpfs(folder: Path, options: str) -> None:
    """Mounts a tmpfs on `folder`, or skips the test saying why it cannot (mounting needs root)."""
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("needs the mount command to make a small disk")
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {result.stderr.strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture()
def small_disk(tmp_path):
    """A real 2 MB file system (tmpfs) at tmp_path/disk, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount_tmpfs(disk, "size=2m")
    try:
        yield disk
    finally:
        unmount(disk)
