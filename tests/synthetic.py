"""Seeded synthetic FER-2013 stand-ins: small, fast, and learnable.

Each class draws a different stroke pattern on a noisy 48x48 face-like blob, so a tiny CNN
learns them in a few epochs and gives confident, stable predictions (what parity tests need).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.labels import FER_CSV_CODE_TO_LABEL, LABELS, NUM_CLASSES

LABEL_TO_CSV_CODE = {label: code for code, label in FER_CSV_CODE_TO_LABEL.items()}


def synthetic_face(label_index: int, rng: np.random.Generator) -> np.ndarray:
    """One 48x48 uint8 face whose pattern encodes `label_index`."""
    face = np.full((48, 48), 60, np.uint8)
    cv2.ellipse(face, (24, 24), (18, 22), 0, 0, 360, 150, -1)
    cv2.circle(face, (16, 18), 3, 20, -1)
    cv2.circle(face, (32, 18), 3, 20, -1)
    # The class: a thick "mouth" stroke whose angle and brightness differ per class.
    angle = np.deg2rad(label_index * 180 / NUM_CLASSES)
    cx, cy = 24 + int(rng.integers(-2, 3)), 30 + int(rng.integers(-2, 3))
    dx, dy = int(round(14 * np.cos(angle))), int(round(14 * np.sin(angle)))
    cv2.line(face, (cx - dx, cy - dy), (cx + dx, cy + dy), 250 if label_index % 2 else 0, 4)
    noise = rng.normal(0, 8, face.shape)
    return np.clip(face + noise, 0, 255).astype(np.uint8)


def synthetic_split(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 48, 48), label indices (N,)), `per_class` faces of every class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    images = np.stack([synthetic_face(int(label), rng) for label in labels])
    return images, labels


def write_csv(path: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """A fer2013.csv-format file with `per_class[usage]` faces per class for each Usage."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for offset, (usage, count) in enumerate(per_class.items()):
            images, labels = synthetic_split(count, seed + offset)
            for image, label in zip(images, labels):
                writer.writerow([LABEL_TO_CSV_CODE[LABELS[label]], " ".join(map(str, image.ravel())), usage])
    return path


def write_folder(root: Path, train_per_class: int, test_per_class: int, seed: int = 0, private_per_class: int = 0) -> Path:
    """The FER-2013 folder layout: train/<class>/Training_*.jpg, test/<class>/PublicTest_*.jpg
    (and PrivateTest_*.jpg when `private_per_class`)."""
    parts = [("train", "Training", train_per_class), ("test", "PublicTest", test_per_class), ("test", "PrivateTest", private_per_class)]
    for offset, (split, prefix, count) in enumerate(parts):
        if not count:
            continue
        images, labels = synthetic_split(count, seed + offset)
        for number, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / LABELS[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{prefix}_{number}.png"), image)
    return root


def count_video_frames(path: Path) -> int:
    """How many frames OpenCV decodes from a video file (0 for one that does not open)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
