"""FER-2013 loading in both forms, the cache, and every bad-data case."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime.labels import LABELS
from fer_data import fer2013
from fer_data.fer2013 import DataError, load_fer2013
from tests.conftest import SHARED_FER
from tests.synthetic import synthetic_face, write_folder


def _load(path: Path, tmp_path: Path):
    return load_fer2013(path, cache_dir=tmp_path / "cache")


def test_folder_layout(fer_folder, tmp_path):
    data = _load(fer_folder, tmp_path)
    assert data.layout == "folder"
    assert data.counts() == {"train": 140, "val": 42, "test": 0}
    assert data.split("train").class_counts() == [20] * 7
    assert data.split("val").images.shape == (42, 48, 48)
    assert data.split("val").images.dtype == np.uint8


def test_folder_labels_follow_folder_names(tmp_path):
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=0, seed=3)
    data = _load(root, tmp_path)
    for index, label in enumerate(LABELS):
        image = cv2.imread(str(root / "train" / label / "Training_0.png".replace("0", str(index))), cv2.IMREAD_GRAYSCALE)
        position = int(np.flatnonzero(data.split("train").labels == index)[0])
        np.testing.assert_array_equal(data.split("train").images[position], image)


def test_test_folder_split_by_prefix(tmp_path):
    root = write_folder(tmp_path / "fer", train_per_class=2, test_per_class=3, private_per_class=2, seed=4)
    data = _load(root, tmp_path)
    assert data.counts() == {"train": 14, "val": 21, "test": 14}
    assert len(data.evaluation_split("test")) == 35  # every image under test/


def test_seed_folder_names_any_case(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for folder in ("Angry", "Disgusted", "Fearful", "Happy", "Neutral", "Sad", "Surprised"):
            (tmp_path / "data" / split / folder).mkdir(parents=True)
            cv2.imwrite(str(tmp_path / "data" / split / folder / "im0.png"), synthetic_face(0, rng))
    data = _load(tmp_path / "data", tmp_path)
    assert sorted(data.split("train").labels.tolist()) == list(range(7))
    assert data.counts()["val"] == 7


def test_csv_layout(fer_csv, tmp_path):
    data = _load(fer_csv, tmp_path)
    assert data.layout == "csv"
    assert data.counts() == {"train": 140, "val": 42, "test": 28}


def test_csv_codes_become_label_indices(tmp_path):
    path = tmp_path / "fer2013.csv"
    pixels = " ".join(["7"] * 2304)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for code in range(7):
            writer.writerow([code, pixels, "Training"])
        writer.writerow([4, pixels, "PublicTest"])
    data = _load(path, tmp_path)
    expected = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert [LABELS[i] for i in data.split("train").labels] == expected
    assert LABELS[data.split("val").labels[0]] == "sad"
    assert int(data.split("train").images[0, 0, 0]) == 7


def test_cache_is_used_and_invalidated(fer_csv, tmp_path, monkeypatch):
    first = _load(fer_csv, tmp_path)
    assert len(list((tmp_path / "cache").glob("fer2013-*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(fer2013, "_read_csv", no_decoding)
    second = _load(fer_csv, tmp_path)
    np.testing.assert_array_equal(first.split("train").images, second.split("train").images)
    # A changed source file changes the key: the cache is not trusted.
    changed = tmp_path / "changed.csv"
    changed.write_bytes(fer_csv.read_bytes())
    with pytest.raises(AssertionError, match="decoded again"):
        _load(changed, tmp_path)


def _csv_with(tmp_path: Path, rows: list[list], header=("emotion", "pixels", "Usage")) -> Path:
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD_PIXELS = " ".join(["0"] * 2304)


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([[0, GOOD_PIXELS, "Training"]], ("label", "pixels", "Usage"), "header is 'label,pixels,Usage'; expected 'emotion,pixels,Usage'"),
        ([[0, GOOD_PIXELS, "Training"], [1, " ".join(["0"] * 2303), "Training"]], None, "row 3: 2303 pixels; expected 2304"),
        ([[7, GOOD_PIXELS, "Training"]], None, "row 2: emotion '7' is not a label; expected an integer 0-6"),
        ([["happy", GOOD_PIXELS, "Training"]], None, "row 2: emotion 'happy' is not a label"),
        ([[0, GOOD_PIXELS, "Validation"]], None, "row 2: Usage 'Validation'; expected Training, PublicTest or PrivateTest"),
        ([[0, GOOD_PIXELS.replace("0", "256", 1), "Training"]], None, "row 2: pixel values must be 0-255"),
        ([[0, GOOD_PIXELS.replace("0", "x", 1), "Training"]], None, "row 2: pixels must be space-separated integers"),
        ([[0, GOOD_PIXELS]], None, "row 2: 2 fields; expected 3"),
        ([], None, "no faces found"),
    ],
)
def test_bad_csv(tmp_path, rows, header, message):
    path = _csv_with(tmp_path, rows, header or ("emotion", "pixels", "Usage"))
    with pytest.raises(DataError) as error:
        _load(path, tmp_path)
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_empty_csv_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="header is an empty file"):
        _load(path, tmp_path)


def test_unreadable_image(tmp_path):
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    broken = root / "train" / "happy" / "Training_broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=f"{broken}: not an image OpenCV can decode; expected a complete image file"):
        _load(root, tmp_path)


def test_unknown_class_folder(tmp_path):
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        _load(root, tmp_path)


def test_missing_and_wrong_layouts(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        _load(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no train/ or test/ folder"):
        _load(tmp_path / "empty_dir", tmp_path)
    (tmp_path / "hollow" / "train" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="no faces found"):
        _load(tmp_path / "hollow", tmp_path)


def test_no_partial_cache_left_behind(fer_csv, tmp_path):
    _load(fer_csv, tmp_path)
    leftovers = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _face_file(folder: Path, name: str, extension: str) -> tuple[Path, bytes]:
    """A real encoded face image (JPEG or PNG, as OpenCV writes them) in the happy class."""
    ok, encoded = cv2.imencode(extension, cv2.resize(synthetic_face(3, np.random.default_rng(5)), (96, 96)))
    assert ok
    path = folder / "train" / "happy" / f"{name}{extension}"
    path.write_bytes(encoded.tobytes())
    return path, encoded.tobytes()


def test_opencv_decodes_a_truncated_jpeg_without_a_word(tmp_path):
    """Why the loader checks the end-of-image marker itself."""
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    path, data = _face_file(root, "Training_cut", ".jpg")
    path.write_bytes(data[: len(data) // 3])
    assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None


@pytest.mark.parametrize(("extension", "message"), [
    (".jpg", "truncated JPEG: no end-of-image marker (FF D9) at its end"),
    (".png", "truncated PNG: no IEND chunk at its end"),
])
def test_truncated_image_is_named(tmp_path, extension, message):
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    path, data = _face_file(root, "Training_cut", extension)
    assert _load(root, tmp_path / "whole").split("train").images.shape[0] == 8  # the whole file loads
    path.write_bytes(data[: len(data) // 3])  # the first third, as an interrupted copy leaves it
    with pytest.raises(DataError) as caught:
        _load(root, tmp_path)
    assert str(caught.value) == f"{path}: {message}; expected a complete image file (a truncated or damaged copy?)"


def test_empty_and_padded_images(tmp_path):
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    path, data = _face_file(root, "Training_padded", ".jpg")
    path.write_bytes(data + b"\x00" * 16)  # padding after the end marker is no missing data
    assert _load(root, tmp_path / "padded").split("train").images.shape[0] == 8
    path.write_bytes(b"")
    with pytest.raises(DataError, match=f"{path}: empty file; expected a complete image file"):
        _load(root, tmp_path)


@pytest.mark.skipif(not (SHARED_FER / "train").is_dir(), reason=f"{SHARED_FER} is not here")
def test_a_real_fer2013_jpeg_cut_to_a_third_is_refused(tmp_path):
    real = sorted((SHARED_FER / "train" / "happy").glob("*.jpg"))[0]
    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    cut = root / "train" / "happy" / real.name
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 3])
    with pytest.raises(DataError, match="truncated JPEG"):
        _load(root, tmp_path)


def test_edge_train_names_the_truncated_image_and_leaves_no_run_folder(tmp_path):
    """A failed start removes the new --out folder it made, so the same command can run again."""
    pytest.importorskip("keras")
    from typer.testing import CliRunner

    from trainer.cli import app

    root = write_folder(tmp_path / "fer", train_per_class=2, test_per_class=1)
    path, data = _face_file(root, "Training_cut", ".jpg")
    path.write_bytes(data[: len(data) // 3])
    args = ["--data", str(root), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1] == (
            f"edge-train: error: {path}: truncated JPEG: no end-of-image marker (FF D9) at its end; "
            "expected a complete image file (a truncated or damaged copy?)"
        )
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()  # a folder that was there before is the user's: kept
    assert CliRunner().invoke(app, args).exit_code == 1
    assert (tmp_path / "run").is_dir()


def _without_training_faces_of(root: Path, label: str) -> Path:
    """`root`'s train/<label>/ folder emptied: the class has no training face left."""
    for file in (root / "train" / label).iterdir():
        file.unlink()
    return root / "train" / label


def _csv_without_training_rows_of(folder: Path, code: int) -> Path:
    """A fer2013.csv in `folder` whose class `code` has PublicTest rows but no Training rows."""
    rows = [[code, GOOD_PIXELS, "PublicTest"]] + [[other, GOOD_PIXELS, usage] for other in range(7) if other != code
                                                  for usage in ("Training", "PublicTest")]
    return _csv_with(folder, rows)


def test_a_class_without_training_faces_is_named_in_one_warning_line(tmp_path, capsys):
    from trainer.config import make_config
    from trainer.train import load_training_data

    root = write_folder(tmp_path / "fer", train_per_class=1, test_per_class=1)
    empty = _without_training_faces_of(root, "disgust")
    shutil.rmtree(root / "train" / "fear")  # a class folder that is not there at all
    csv_file = _csv_without_training_rows_of(tmp_path, 5)
    for data in (root, csv_file):
        load_training_data(make_config(str(data), str(tmp_path / "run"), cache_dir=str(tmp_path / "cache")))
    assert capsys.readouterr().err.splitlines() == [
        f"edge-train: warning: {empty}: no images; the model will never learn 'disgust'",
        f"edge-train: warning: {root / 'train'}: no fear/ folder; the model will never learn 'fear'",
        f"edge-train: warning: {csv_file}: no Training rows of emotion 5 (surprise); the model will never learn 'surprise'",
    ]


def test_edge_train_refuses_class_weight_balanced_without_a_class_and_leaves_no_run_folder(tmp_path):
    pytest.importorskip("keras")
    from typer.testing import CliRunner

    from trainer.cli import app

    empty = _without_training_faces_of(write_folder(tmp_path / "fer", train_per_class=2, test_per_class=1), "disgust")
    csv_file = _csv_without_training_rows_of(tmp_path, 1)
    for data, problem in ((tmp_path / "fer", f"{empty}: no images"), (csv_file, f"{csv_file}: no Training rows of emotion 1 (disgust)")):
        args = ["--data", str(data), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--class-weight", "balanced"]
        args += ["--epochs", "1"]  # short, should the refusal ever fail
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert result.output.strip() == (
            f"edge-train: error: {problem}; --class-weight balanced needs faces of every class "
            "(add 'disgust' faces, or leave out --class-weight balanced)"
        )
        assert not (tmp_path / "run").exists()
