"""Photo mode: each image stands alone, already-cropped faces, --whole-image, --save-images,
the overlay's layout, and the Python API page's example (run as it is written)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.detectors import get_detector_info
from edge_runtime.labels import LABELS
from edge_runtime.model_files.bundled import MODELS_DIR
from edge_runtime.outputs.draw import OVERLAYS, draw_faces
from edge_runtime.pipeline.emotion_detector import EmotionDetector, Face
from edge_runtime.preprocess import to_bgr
from edge_runtime.sources.open_source import demo_clip_path, demo_photo_path
from tests.conftest import SHARED_YUNET

pytest.importorskip("onnxruntime")
BUNDLED_ONNX = MODELS_DIR / "emotion_int8.onnx"
pytestmark = pytest.mark.skipif(not BUNDLED_ONNX.is_file(), reason="needs the bundled ONNX model")
API_DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
runner = CliRunner()


def run(*args) -> tuple[CliRunner, list[dict]]:
    result = runner.invoke(app, ["--model", str(BUNDLED_ONNX), "--no-display", *map(str, args)])
    return result


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def photos(tmp_path) -> Path:
    """A folder of two photos: the demo photo, and the same photo mirrored (other faces at other places)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    image = cv2.imread(str(demo_photo_path()))
    cv2.imwrite(str(folder / "a.jpg"), image)
    cv2.imwrite(str(folder / "b.jpg"), image[:, ::-1])
    return folder


def test_each_photo_stands_alone_and_records_name_their_file(photos, tmp_path):
    together, alone = tmp_path / "together.jsonl", tmp_path / "alone.jsonl"
    assert run("--source", photos, "--jsonl", together, "--detector", "haar").exit_code == 0
    assert run("--source", photos / "b.jpg", "--jsonl", alone, "--detector", "haar").exit_code == 0
    both = records(together)
    assert {r["source"] for r in both} == {str(photos / "a.jpg"), str(photos / "b.jpg")}
    assert all(r["time"] is None for r in both)  # a photo has no clock
    # b.jpg's faces get exactly the probabilities they get when b.jpg is run alone:
    # no track or smoothing carries over from a.jpg, though both photos have the same size.
    after_a = [(r["box"], r["probabilities"], r["track_id"]) for r in both if r["source"].endswith("b.jpg")]
    assert after_a and after_a == [(r["box"], r["probabilities"], r["track_id"]) for r in records(alone)]


# --- how large a copy of a photo is searched ---------------------------------------------------

needs_yunet = pytest.mark.skipif(not SHARED_YUNET.is_file(), reason=f"needs {SHARED_YUNET}")


@pytest.fixture()
def searched_scales(monkeypatch) -> list:
    """The `scale` every YuNet and Haar detect() call is given (None: the detector's own)."""
    from edge_runtime.detectors.haar import HaarDetector
    from edge_runtime.detectors.yunet import YuNetDetector

    scales = []
    for cls in (YuNetDetector, HaarDetector):
        original = cls.detect

        def spy(self, frame, scale=None, original=original):
            scales.append((self.name, scale))
            return original(self, frame, scale)

        monkeypatch.setattr(cls, "detect", spy)
    return scales


@needs_yunet
def test_yunet_searches_a_photo_at_a_longer_side_of_640_px_whatever_its_size(searched_scales):
    from edge_runtime.detectors import DetectorSettings
    from edge_runtime.pipeline.emotion_detector import EmotionDetector

    with EmotionDetector(BUNDLED_ONNX, detector="yunet") as detector:
        for shape in ((1080, 1920, 3), (3000, 4000, 3), (320, 480, 3)):
            detector.detect(np.full(shape, 120, np.uint8))
        list(detector.stream([np.full((1080, 1920, 3), 120, np.uint8)]))  # a video frame: the video's scale
    assert searched_scales == [("yunet", pytest.approx(640 / 1920)), ("yunet", pytest.approx(640 / 4000)), ("yunet", 1.0),
                               ("yunet", None)]
    searched_scales.clear()
    # A detection scale the user chose holds for photos too.
    with EmotionDetector(BUNDLED_ONNX, detector=DetectorSettings(name="yunet", detect_scale=0.5)) as detector:
        detector.detect(np.full((1080, 1920, 3), 120, np.uint8))
    assert searched_scales == [("yunet", None)]


def test_haar_searches_photos_as_it_searches_video(searched_scales):
    from edge_runtime.pipeline.emotion_detector import EmotionDetector

    with EmotionDetector(BUNDLED_ONNX, detector="haar") as detector:
        detector.detect(np.full((1080, 1920, 3), 120, np.uint8))
    assert searched_scales == [("haar", None)]


@needs_yunet
def test_every_face_of_the_demo_photo_is_found():
    result = run("--source", demo_photo_path(), "--detector", "yunet")
    assert result.exit_code == 0, result.output
    assert "frames: 1 | faces: 6 |" in result.output  # at half size, as in a video, YuNet misses the turned sad face


def test_already_cropped_faces_are_classified_whole(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    photo = cv2.imread(str(demo_photo_path()), cv2.IMREAD_GRAYSCALE)
    for name, (x, y) in {"one.png": (90, 105), "two.png": (503, 56)}.items():
        cv2.imwrite(str(folder / name), cv2.resize(photo[y : y + 139, x : x + 139], (48, 48)))
    out = tmp_path / "faces.jsonl"
    result = run("--source", folder, "--jsonl", out)
    assert result.exit_code == 0, result.output
    assert "frames: 2 | faces: 2" in result.output
    assert [r["box"] for r in records(out)] == [[0, 0, 48, 48], [0, 0, 48, 48]]
    # No detector ran on a crop: the records name none and carry no detector score.
    assert [(r["detector"], r["score"]) for r in records(out)] == [(None, None), (None, None)]


def test_a_truncated_or_tiny_image_is_refused_with_one_line_naming_it(tmp_path):
    whole = demo_photo_path().read_bytes()
    cut, tiny = tmp_path / "cut.jpg", tmp_path / "tiny.png"
    cut.write_bytes(whole[: len(whole) // 3])
    cv2.imwrite(str(tiny), np.full((1, 1, 3), 128, np.uint8))
    for path, why in (
        (cut, "truncated JPEG: no end-of-image marker (FF D9) at its end"),
        (tiny, "1x1 px is too small to hold a face (the model reads 48x48)"),
    ):
        result = run("--source", path, "--detector", "haar")
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines()[-1] == f"error: {path}: {why}; nothing was processed"
        assert "frames: 0 | faces: 0" in result.output


def test_a_folder_names_the_images_it_skips_and_classifies_the_others(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    photo = cv2.imread(str(demo_photo_path()), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / "a_crop.png"), cv2.resize(photo[105:244, 90:229], (48, 48)))
    whole = demo_photo_path().read_bytes()
    (folder / "b_cut.jpg").write_bytes(whole[: len(whole) // 3])
    for i in range(5):  # thumbnails below the model's 48 px on both sides
        cv2.imwrite(str(folder / f"c_thumb{i}.png"), np.full((40, 47), 128, np.uint8))
    out = tmp_path / "faces.jsonl"
    result = run("--source", folder, "--jsonl", out)
    assert result.exit_code == 0, result.output
    assert "frames: 1 | faces: 1" in result.output
    assert [r["source"] for r in records(out)] == [str(folder / "a_crop.png")]
    assert (
        f"skipped images: {folder / 'b_cut.jpg'}: truncated JPEG: no end-of-image marker (FF D9) at its end; "
        + "; ".join(f"{folder / f'c_thumb{i}.png'}: 47x40 px is too small to hold a face (the model reads 48x48)" for i in range(4))
        + "; and 1 more\n"
    ) in result.output


def test_only_images_from_the_model_input_size_up_are_classified_whole():
    with EmotionDetector(BUNDLED_ONNX, detector="haar") as detector:
        for shape in ((1, 1, 3), (47, 40)):
            with pytest.raises(ValueError, match=r"^image: \d+x\d+ px is too small to hold a face"):
                detector.detect(np.full(shape, 128, np.uint8))
        assert detector.is_face_crop(np.zeros((48, 48), np.uint8)) and detector.is_face_crop(np.zeros((96, 60), np.uint8))
        # A strip is no face crop: it goes to the detector, which finds no face in it.
        assert not detector.is_face_crop(np.zeros((30, 90), np.uint8))
        assert detector.detect(np.full((30, 90), 128, np.uint8)) == []


def test_whole_image_option_classifies_a_large_image_as_one_face(tmp_path):
    out = tmp_path / "faces.jsonl"
    result = run("--source", demo_photo_path(), "--whole-image", "--jsonl", out)
    assert result.exit_code == 0, result.output
    (record,) = records(out)
    assert record["box"] == [0, 0, 960, 640] and record["label"] in LABELS
    assert record["detector"] is None and record["score"] is None


def test_save_images_writes_an_annotated_copy_of_each_photo(photos, tmp_path):
    out = tmp_path / "annotated"
    result = run("--source", photos, "--save-images", out, "--detector", "haar")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]
    original, annotated = cv2.imread(str(photos / "a.jpg")), cv2.imread(str(out / "a.jpg"))
    assert annotated.shape == original.shape and np.abs(annotated.astype(int) - original).max() > 100  # boxes and text drawn


def test_save_images_refuses_the_input_folder_and_video_sources(photos, tmp_path):
    before = (photos / "a.jpg").read_bytes()
    result = run("--source", photos, "--save-images", photos)
    assert result.exit_code == 1
    assert "is the folder the photos come from; choose another folder" in result.output
    assert (photos / "a.jpg").read_bytes() == before
    result = run("--source", "demo", "--save-images", tmp_path / "frames")
    assert result.exit_code == 1 and "only for image and folder sources; for video use --save-video" in result.output


def test_the_summary_and_records_name_the_detector_used(tmp_path):
    out = tmp_path / "haar.jsonl"
    result = run("--source", "demo", "--detector", "haar", "--max-frames", "3", "--jsonl", out)
    assert result.exit_code == 0 and "| detector: haar" in result.output
    assert {r["detector"] for r in records(out)} == {"haar"}
    assert {r["score"] for r in records(out)} == {None}  # a cascade gives no score
    if SHARED_YUNET.is_file():
        result = run("--source", "demo", "--max-frames", "3")
        assert result.exit_code == 0 and "| detector: yunet" in result.output


def test_the_detectors_crop_mapping_is_applied(monkeypatch):
    # YuNet's table row levels the eyes: the crop is rotated by the eye line's angle.
    import edge_runtime.pipeline.emotion_detector as api
    from edge_runtime.detectors import Detection

    class Tilted:
        def detect(self, frame):
            return [Detection((100, 100, 80, 100), 0.9, ((120.0, 130.0), (160.0, 150.0), (140, 160), (125, 180), (155, 185)))]

    angles = []
    import edge_runtime.preprocess as preprocess

    original = preprocess.crop_mapped
    def recording(frame, region, angle=0.0):
        angles.append((region, angle))
        return original(frame, region, angle)

    monkeypatch.setattr(preprocess, "crop_mapped", recording)
    detector = api.EmotionDetector(BUNDLED_ONNX, detector=Tilted())
    detector.chosen.crop = get_detector_info("yunet").crop  # as `auto` sets it for YuNet
    detector.detect(np.full((300, 300, 3), 100, np.uint8))
    (region, angle), = angles
    assert region == (140.0, 150.0, 100.0, 100.0)  # a square of the box's height around its centre
    assert angle == pytest.approx(26.565, abs=0.01)  # atan2(20, 40): the eye line's slope


def test_a_detector_that_finds_nothing_is_said_once(tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    result = run("--source", blank, "--detector", "haar")
    assert result.exit_code == 0 and "frames: 1 | faces: 0" in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("no face found")]
    assert line.startswith("no face found: haar found none in 1 frame(s); for already-cropped faces use --whole-image")


def test_the_summary_names_the_detector_and_why_auto_fell_back():
    from edge_runtime.pipeline.runner import RunSummary

    summary = RunSummary(detector="haar", detector_note="YuNet file not available: no network", frames=3)
    lines = summary.lines()
    assert "detector: haar (YuNet file not available: no network)" in lines[0]
    (line,) = [line for line in lines if line.startswith("no face found")]
    assert line.startswith("no face found: haar found none in 3 frame(s);")


def test_photos_report_no_fps_in_the_summary_or_on_the_annotated_copy(photos, tmp_path):
    result = run("--source", demo_photo_path(), "--detector", "haar")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("frames: 1 |")]
    assert "FPS" not in result.output and line.endswith(" s")
    with EmotionDetector(BUNDLED_ONNX, detector="haar") as detector:
        # The second photo of a folder is where a rate could first be measured.
        results = list(detector.stream(str(photos), annotate=True))
        assert len(results) == 2
        for result in results:
            assert np.array_equal(result.annotated, draw_faces(to_bgr(result.frame), result.faces, None))


def test_a_video_summary_still_reports_its_fps():
    result = run("--source", "demo", "--detector", "haar", "--max-frames", "2")
    assert result.exit_code == 0 and " FPS over " in result.output


# --- the overlay -------------------------------------------------------------------------------


def face(box, label="happy") -> Face:
    probabilities = dict.fromkeys(LABELS, 0.05) | {label: 0.7}
    return Face(tuple(box), 1, label, 0.7, probabilities, False)


def test_overlay_none_draws_boxes_only_and_labels_no_bars():
    frame = np.zeros((480, 640, 3), np.uint8)
    boxes = [(100, 150, 120, 120)]
    none = draw_faces(frame.copy(), [face(b) for b in boxes], overlay="none")
    labels = draw_faces(frame.copy(), [face(b) for b in boxes], overlay="labels")
    bars = draw_faces(frame.copy(), [face(b) for b in boxes], overlay="bars")
    outside = np.ones((480, 640), bool)
    outside[148:273, 98:223] = False
    assert not none[outside].any()  # nothing but the box
    assert labels[outside].any() and not labels[:, 230:].any()  # a caption above the box, nothing to its right
    assert bars[:, 230:].any()  # the probability panel beside the box
    with pytest.raises(ValueError, match="overlay 'bar'"):
        draw_faces(frame, [], overlay="bar")
    assert set(OVERLAYS) == {"bars", "labels", "none"}


# --- the README's example ----------------------------------------------------------------------


def test_the_readme_photo_example_runs_as_written(tmp_path):
    section = API_DOC.read_text(encoding="utf-8").split("## In your own code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "model.detect(image)" in code
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) >= 2 and any(label in lines[0] for label in LABELS)
    assert cv2.imread(str(tmp_path / "annotated.jpg")).shape == (640, 960, 3)


def test_the_demo_clip_and_photo_ship_with_the_package():
    assert demo_clip_path().is_file() and demo_photo_path().is_file()
    truth = json.loads(demo_photo_path().with_suffix(".json").read_text())
    assert len(truth["faces"]) == 6 and shutil.disk_usage(demo_photo_path().parent)
