"""A track is one person: shot cuts and a face that takes another's place end the track.

Frames are built from real faces (cut from the bundled demo clip) pasted at one fixed box, and a
fake detector returns that box, so only the tracker decides whether an id goes on.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.model_files.bundled import installed_backends
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.pipeline.shot_cuts import CutDetector
from edge_runtime.pipeline.tracker import IoUTracker, likeness, signature
from edge_runtime.sources.open_source import demo_clip_path
from tests.conftest import FIXTURE_MODELS

BOX = (200, 120, 180, 180)
FRAME_SHAPE = (480, 640, 3)


class FixedBox:
    """A fake face detector that always finds one face at BOX."""

    def detect(self, frame):
        return [BOX]


@pytest.fixture(scope="module")
def people() -> list[np.ndarray]:
    """Grayscale faces of different people, from the demo clip's first frame of each."""
    clip = demo_clip_path()
    truth = json.loads(clip.with_suffix(".json").read_text(encoding="utf-8"))["frames"]
    capture = cv2.VideoCapture(str(clip))
    faces: dict[str, np.ndarray] = {}
    for record in truth:
        ok, frame = capture.read()
        if not ok:
            break
        for face in record["faces"]:
            x, y, w, h = face["box"]
            faces.setdefault(face["source"], cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY))
    capture.release()
    assert len(faces) >= 3, "the demo clip should show at least three people"
    return list(faces.values())


def scene(face: np.ndarray, rng: np.random.Generator, backdrop: np.ndarray | None = None, shift: int = 0) -> np.ndarray:
    """A frame with `face` pasted at BOX (moved by `shift` pixels) on a backdrop (plain grey by
    default), with camera noise."""
    frame = np.full(FRAME_SHAPE, 110, np.float32) if backdrop is None else backdrop.astype(np.float32)
    x, y, w, h = BOX
    frame[y + shift : y + shift + h, x + shift : x + shift + w] = cv2.resize(face, (w, h))[:, :, None]
    return np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)


def detector(**settings) -> EmotionDetector:
    if "onnx" not in installed_backends():
        pytest.skip("needs onnxruntime")
    return EmotionDetector(FIXTURE_MODELS["onnx"], detector=FixedBox(), **settings)


def streamed(model: EmotionDetector, frames: list[np.ndarray]) -> list:
    """The one face of each frame, the frames streamed as one video."""
    return [result.faces[0] for result in model.stream(frames)]


def test_a_face_that_takes_another_s_place_starts_a_new_track_without_the_old_past(people):
    rng = np.random.default_rng(0)
    frames = [scene(people[0], rng) for _ in range(4)] + [scene(people[1], rng) for _ in range(4)]
    with detector() as default, detector(smooth=0.0) as unsmoothed, detector(min_likeness=0.0, cut_threshold=0.0) as by_overlap:
        faces = streamed(default, frames)
        ids, first_of_new = [face.track_id for face in faces], faces[4]
        raw = streamed(unsmoothed, frames)[4]
        carried = streamed(by_overlap, frames)
    assert ids == [1] * 4 + [2] * 4
    # The new person's first frame is theirs alone: nothing of the first person is averaged in.
    assert first_of_new.probabilities == pytest.approx(raw.probabilities, abs=1e-6)
    # Kept by overlap alone (the control), the id and the first person's past carry over.
    assert {face.track_id for face in carried} == {1}
    assert carried[4].probabilities != pytest.approx(raw.probabilities, abs=1e-6)


def test_the_same_face_moving_under_camera_noise_keeps_its_track(people):
    rng = np.random.default_rng(1)
    frames = [scene(people[2], rng, shift=int(rng.integers(-4, 5))) for _ in range(30)]
    with detector() as default:
        ids = {face.track_id for face in streamed(default, frames)}
    assert ids == {1}


def test_a_shot_cut_ends_every_track_even_for_the_same_face(people):
    rng = np.random.default_rng(2)
    first, second = textured(rng), textured(rng)
    frames = [scene(people[0], rng, backdrop=first) for _ in range(3)] + [scene(people[0], rng, backdrop=second) for _ in range(3)]
    with detector() as default, detector(cut_threshold=0.0, min_likeness=0.0) as by_overlap:
        assert [face.track_id for face in streamed(default, frames)] == [1, 1, 1, 2, 2, 2]
        assert [face.track_id for face in streamed(by_overlap, frames)] == [1] * 6


def textured(rng: np.random.Generator, shape=FRAME_SHAPE, low: int = 60, high: int = 200) -> np.ndarray:
    """A picture: smooth random blobs (a shrunk random image blown up)."""
    coarse = rng.integers(low, high, (12, 16) + tuple(shape[2:]), dtype=np.uint8)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).reshape(shape)


def test_cut_detector_scores_changes_of_picture_not_of_light_or_noise():
    rng = np.random.default_rng(3)
    base = textured(rng)
    cuts = CutDetector()
    assert not cuts.is_cut(base)  # the first frame starts the first shot, it is no cut
    assert not cuts.is_cut(cv2.add(base, 40))  # an exposure step
    assert not cuts.is_cut(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))  # sensor noise
    assert cuts.is_cut(textured(rng))
    dark = CutDetector()  # a dark, grey, noisy room: no cut on every frame
    assert not any([dark.is_cut(np.clip(20 + rng.normal(0, 6, FRAME_SHAPE), 0, 255).astype(np.uint8)) for _ in range(5)])
    gray = CutDetector()  # brightness only, for a grey source
    assert not gray.is_cut(textured(rng, (240, 320)))
    assert gray.is_cut(textured(rng, (240, 320)))
    assert not gray.is_cut(textured(rng, (480, 640)))  # another size: the caller starts afresh, no score
    off = CutDetector(0.0)
    assert not off.is_cut(base) and not off.is_cut(255 - base)
    with pytest.raises(ValueError, match="cut_threshold 300"):
        CutDetector(300.0)


def test_likeness_of_signatures_and_featureless_crops(people):
    same = likeness(signature(people[0]), signature(cv2.GaussianBlur(people[0], (3, 3), 0)))
    other = likeness(signature(people[0]), signature(people[1]))
    assert same > 0.9 > other
    assert signature(np.full((48, 48), 90, np.uint8)) is None
    tracker = IoUTracker(min_likeness=0.6)
    (track_id,) = tracker.assign([BOX])
    assert tracker.confirm(track_id, signature(people[0])) == track_id
    assert tracker.confirm(track_id, None) == track_id  # a blank crop proves nothing
    assert tracker.confirm(track_id, signature(people[1])) != track_id
    with pytest.raises(ValueError, match="min_likeness 1.0"):
        IoUTracker(min_likeness=1.0)


@pytest.mark.parametrize("option, value", [("--cut-threshold", "-1"), ("--cut-threshold", "256"), ("--min-likeness", "1")])
def test_track_settings_out_of_range_are_usage_errors(option, value):
    result = CliRunner().invoke(app, ["--source", "demo", "--no-display", option, value])
    assert result.exit_code == 2
    assert option in result.output
