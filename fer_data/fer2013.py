"""Reads FER-2013 in either of its two common forms, validates it, and caches the decoded arrays.

- The original CSV, `fer2013.csv` with header `emotion,pixels,Usage`: Training, PublicTest and
  PrivateTest rows become the `train`, `val` and `test` splits.
- The folder layout, `train/<class>/*.jpg` and `test/<class>/*.jpg`: class folder names are
  matched case-insensitively (seed names such as `Disgusted` too). In `test/`, files named
  `PrivateTest_*` form the `test` split and all others (normally `PublicTest_*`) the `val` split.

Every face passes through `preprocess.face_to_gray48`, the function the runtime uses too.
Bad data raises `DataError` with one line naming the file or row, before any training starts.
This module needs only numpy and OpenCV, so the runtime-only install can measure accuracy.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.labels import FER_CSV_CODE_TO_LABEL, LABELS, NUM_CLASSES, csv_code_to_index, folder_to_index
from edge_runtime.outputs.atomic import atomic_path
from edge_runtime.preprocess import FACE_SIZE, face_to_gray48
from edge_runtime.sources.images import read_image

CSV_HEADER = ("emotion", "pixels", "Usage")
CSV_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLITS = ("train", "val", "test")
PIXELS_PER_FACE = FACE_SIZE * FACE_SIZE
# Bumped whenever decoding changes, so stale caches are never read.
CACHE_FORMAT = 2  # 2: truncated images are refused; a cache of format 1 may hold some


class DataError(ValueError):
    """The data set is missing, malformed or empty; the message names the file or row."""


@dataclass
class Split:
    """One split: uint8 faces (N, 48, 48) and label indices into LABELS (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=NUM_CLASSES).tolist()


@dataclass
class FerData:
    """Every split found in one source. `layout` is "csv" or "folder"."""

    source: str
    layout: str
    splits: dict[str, Split] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        """Returns a split by name; an absent split is an empty one."""
        if name in self.splits:
            return self.splits[name]
        return Split(np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8), np.zeros((0,), np.int64))

    def counts(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in SPLITS}

    def evaluation_split(self, name: str) -> Split:
        """A split for evaluation. In the folder layout `test` means every image under test/
        (PublicTest and PrivateTest alike), as a user of that layout expects."""
        if name == "test" and self.layout == "folder":
            parts = [self.split("val"), self.split("test")]
            return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
        return self.split(name)


def classes_without_training_faces(data: FerData) -> list[tuple[str, str]]:
    """(label, where its faces were looked for and not found) for each class that has no face
    in the train split: its class folder under train/ (empty, or absent), or the CSV's
    Training rows. A model trained on such data never predicts that class.
    """
    counts = data.split("train").class_counts()
    missing = [label for label, count in zip(LABELS, counts) if count == 0]
    if data.layout == "csv":
        codes = {label: code for code, label in FER_CSV_CODE_TO_LABEL.items()}
        return [(label, f"{data.source}: no Training rows of emotion {codes[label]} ({label})") for label in missing]
    train_dir = Path(data.source) / "train"
    folders = {folder_to_index(p.name): p for p in train_dir.iterdir() if p.is_dir()} if train_dir.is_dir() else {}
    found = []
    for label in missing:
        folder = folders.get(LABELS.index(label))
        found.append((label, f"{folder}: no images" if folder else f"{train_dir}: no {label}/ folder"))
    return found


def default_cache_dir() -> Path:
    base = os.environ.get("EDGE_EMOTION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "edge-emotion"
    )
    return Path(base)


def load_fer2013(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, use_cache: bool = True) -> FerData:
    """Loads FER-2013 from a CSV file or a folder layout, through the cache.

    Args:
        path: `fer2013.csv`, or a folder holding `train/` and/or `test/`.
        cache_dir: where decoded arrays are kept (default: ~/.cache/edge-emotion).
        use_cache: read and write the cache.

    Returns:
        The splits found, each validated.

    Raises:
        DataError: missing path, wrong header, bad row, unreadable image, unknown class folder,
            or no face at all.
    """
    source = Path(path)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; expected fer2013.csv or a folder with train/ and test/")
    layout = "folder" if source.is_dir() else "csv"
    files = _folder_files(source) if layout == "folder" else None
    cache_file = None
    if use_cache:
        key = _cache_key(source, files)
        cache_file = Path(cache_dir or default_cache_dir()) / f"fer2013-{key}.npz"
        if cache_file.exists():
            try:
                return _read_cache(cache_file, source, layout)
            except (OSError, ValueError, KeyError):
                pass  # A damaged cache is rebuilt, never trusted.
    data = _read_csv(source) if layout == "csv" else _read_folder(source, files)
    if not any(len(s) for s in data.splits.values()):
        raise DataError(f"{source}: no faces found; expected {'rows' if layout == 'csv' else 'images in train/<class>/ or test/<class>/'}")
    if cache_file is not None:
        _write_cache(cache_file, data)
    return data


def _cache_key(source: Path, files: list[tuple[Path, str, str]] | None) -> str:
    # Keyed by the resolved path and by each file's place inside the folder, so that every
    # spelling of one folder (relative, absolute, through a link, with a trailing slash) shares
    # one cache file.
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{source.resolve()}".encode())
    if files is None:
        st = source.stat()
        digest.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        for file, _, _ in files:
            st = file.stat()
            digest.update(f"|{file.relative_to(source).as_posix()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _read_cache(cache_file: Path, source: Path, layout: str) -> FerData:
    with np.load(cache_file) as archive:
        splits = {name: Split(archive[f"{name}_images"], archive[f"{name}_labels"]) for name in SPLITS if f"{name}_images" in archive}
    return FerData(str(source), layout, splits)


def _write_cache(cache_file: Path, data: FerData) -> None:
    arrays = {}
    for name, split in data.splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
    try:
        with atomic_path(cache_file) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass  # An unwritable cache only costs time on the next run.


def _read_csv(source: Path) -> FerData:
    images: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    labels: dict[str, list[int]] = {name: [] for name in SPLITS}
    try:
        handle = open(source, newline="", encoding="utf-8")
    except OSError as error:
        raise DataError(f"{source}: cannot read ({error.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError):
            header = ["<not text>"]
        if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
            found = "an empty file" if header is None else "'" + ",".join(header)[:80] + "'"
            raise DataError(f"{source}: header is {found}; expected 'emotion,pixels,Usage' (fer2013.csv)")
        row_number = 1
        try:
            for row_number, row in enumerate(reader, start=2):
                if not row:
                    continue
                split, label, face = _parse_csv_row(source, row_number, row)
                images[split].append(face)
                labels[split].append(label)
        except (csv.Error, UnicodeDecodeError) as error:
            raise DataError(f"{source}, row {row_number}: cannot parse ({error})") from None
    return FerData(str(source), "csv", _stack_splits(images, labels))


def _parse_csv_row(source: Path, row_number: int, row: list[str]) -> tuple[str, int, np.ndarray]:
    where = f"{source}, row {row_number}"
    if len(row) != 3:
        raise DataError(f"{where}: {len(row)} fields; expected 3 (emotion,pixels,Usage)")
    emotion, pixels, usage = (value.strip() for value in row)
    try:
        label = csv_code_to_index(int(emotion))
    except ValueError:
        raise DataError(f"{where}: emotion {emotion!r} is not a label; expected an integer 0-6") from None
    split = CSV_USAGE_TO_SPLIT.get(usage)
    if split is None:
        raise DataError(f"{where}: Usage {usage!r}; expected Training, PublicTest or PrivateTest")
    try:
        values = np.array(pixels.split(), dtype=np.int64)
    except ValueError:
        raise DataError(f"{where}: pixels must be space-separated integers 0-255") from None
    if values.size != PIXELS_PER_FACE:
        raise DataError(f"{where}: {values.size} pixels; expected {PIXELS_PER_FACE} (48x48)")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixel values must be 0-255, found {values.min()}..{values.max()}")
    return split, label, values.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def _folder_files(source: Path) -> list[tuple[Path, str, str]]:
    """Lists (file, split, class folder) for every face file, validating the folder names."""
    split_dirs = [d for d in (source / "train", source / "test") if d.is_dir()]
    if not split_dirs:
        raise DataError(f"{source}: no train/ or test/ folder; expected the FER-2013 folder layout (train/<class>/, test/<class>/)")
    files = []
    for split_dir in split_dirs:
        for class_dir in sorted(p for p in split_dir.iterdir() if not p.name.startswith(".")):
            if not class_dir.is_dir():
                continue
            if folder_to_index(class_dir.name) is None:
                raise DataError(
                    f"{class_dir}: unknown class folder {class_dir.name!r}; expected one of "
                    "angry, disgust, fear, happy, neutral, sad, surprise (any case; seed names such as Disgusted accepted)"
                )
            for file in sorted(class_dir.iterdir()):
                if file.is_file() and not file.name.startswith("."):
                    split = "train" if split_dir.name == "train" else ("test" if file.name.startswith("PrivateTest") else "val")
                    files.append((file, split, class_dir.name))
    return files


def _read_folder(source: Path, files: list[tuple[Path, str, str]]) -> FerData:
    images: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    labels: dict[str, list[int]] = {name: [] for name in SPLITS}
    for file, split, class_name in files:
        images[split].append(face_to_gray48(_read_image(file)))
        labels[split].append(folder_to_index(class_name))
    return FerData(str(source), "folder", _stack_splits(images, labels))


def _read_image(file: Path) -> np.ndarray:
    """One face image, refused when it is incomplete or undecodable.

    OpenCV decodes a truncated JPEG without an error, filling the missing rows with grey, and
    training would learn from that; so the file is read as `edge-run` reads a photo
    (`edge_runtime.sources.images.read_image`: whole, then decoded).

    Raises:
        DataError: naming the file and what is wrong with it.
    """
    face, why = read_image(file, cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise DataError(f"{file}: {why}; expected a complete image file (a truncated or damaged copy?)")
    return face


def _stack_splits(images: dict[str, list[np.ndarray]], labels: dict[str, list[int]]) -> dict[str, Split]:
    return {name: Split(np.stack(images[name]), np.asarray(labels[name], dtype=np.int64)) for name in SPLITS if images[name]}
