"""Measures whether a face track stays one person: label accuracy and mixed tracks on three videos.

Per-track smoothing helps while a track follows one face and hurts when it carries one
person's probabilities onto the next. This builds three videos from PublicTest faces (never a
face the model trained on; `edge-bench scene`'s frames: 640x480, faces of 144-192 px, 1-3 per
frame), every frame with fresh sensor noise so that predictions vary from frame to frame as they
do on a camera:

- changing: a new scene (background, places and faces) every 5 frames, as an edited video
  cuts from shot to shot;
- swapping: one background and one set of places for 30 frames, the faces in them replaced by
  other people every 5 frames, with no cut (one person takes another's place);
- staying: the same faces for 40 frames, drifting a pixel at a time.

Each video runs through `EmotionDetector` (YuNet, the bundled model) with the default settings,
with `smooth=0`, and with tracks kept by overlap alone (no shot cuts, no likeness check: the
runtime before tracks had identities). Reported per video and setting: label accuracy on the
faces found (the `edge-bench scene` matching rule), and the share of tracks that held more than
one true face (mixed tracks).

Usage (from the repository root; YuNet's file must be cached: `edge-run --fetch-models`):

    python tools/measure_track_identity.py --data ../shared/fer2013 --json bench/track_identity.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from benchmarks.inputs import load_eval_split
from edge_runtime.detectors import DetectorSettings
from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.settings import PipelineSettings
from fer_data.scenes import FACE_SIDES, FRAME_HEIGHT, FRAME_WIDTH, background, match_boxes, paste_face, place_boxes

NOISE_SIGMA = 6.0  # gray levels of sensor noise added to every frame
EXPOSURE_JITTER = 0.08  # each frame's gain within +-8%, and its black level within +-8 gray levels
SIZE_JITTER = 0.04  # a staying face's side changes by up to 4% from frame to frame (the head moves)
SETTINGS = {
    "default": {},
    "smooth 0": {"smooth": 0.0},
    "overlap only": {"smooth": PipelineSettings.smooth, "cut_threshold": 0.0, "min_likeness": 0.0},
}


class Faces:
    """PublicTest faces in a seeded order, each used once."""

    def __init__(self, split, seed: int) -> None:
        self.split, self.order, self.next = split, np.random.default_rng(seed).permutation(len(split)), 0

    def take(self) -> int:
        index = int(self.order[self.next % len(self.order)])
        self.next += 1
        return index


def _noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame as a camera delivers it: exposure that wanders a little, and sensor noise."""
    gain, lift = rng.uniform(1 - EXPOSURE_JITTER, 1 + EXPOSURE_JITTER), rng.uniform(-8, 8)
    return np.clip(image * gain + lift + rng.normal(0, NOISE_SIGMA, image.shape), 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, seed: int, number: int) -> tuple[np.ndarray, list]:
    """A scene's backdrop (float, to add noise to) and 1-3 face boxes on it."""
    backdrop = background((FRAME_WIDTH, FRAME_HEIGHT), seed=seed * 100_003 + number).astype(np.float32)
    return backdrop, place_boxes(rng, int(rng.integers(1, 4)), FACE_SIDES, FRAME_WIDTH, FRAME_HEIGHT)


def _pasted(backdrop: np.ndarray, split, boxes, indices) -> np.ndarray:
    image = backdrop.copy()
    for box, index in zip(boxes, indices):
        paste_face(image, split.images[index], box)
    return image


def changing(split, scenes: int, hold: int = 5, seed: int = 3):
    """(frame, boxes, face indices): a new scene every `hold` frames."""
    rng, faces = np.random.default_rng(seed), Faces(split, seed)
    for number in range(scenes):
        backdrop, boxes = _place(rng, seed, number)
        indices = [faces.take() for _ in boxes]
        image = _pasted(backdrop, split, boxes, indices)
        for _ in range(hold):
            yield _noisy(image, rng), boxes, indices


def swapping(split, groups: int, swaps: int = 6, hold: int = 5, seed: int = 4):
    """One background and set of places per group; the people in them change every `hold` frames."""
    rng, faces = np.random.default_rng(seed), Faces(split, seed)
    for number in range(groups):
        backdrop, boxes = _place(rng, seed, number)
        for _ in range(swaps):
            indices = [faces.take() for _ in boxes]
            image = _pasted(backdrop, split, boxes, indices)
            for _ in range(hold):
                yield _noisy(image, rng), boxes, indices


def staying(split, scenes: int, hold: int = 40, seed: int = 5, drift: int = 6):
    """The same faces for `hold` frames, each moving by a pixel at a time within +-`drift`."""
    rng, faces = np.random.default_rng(seed), Faces(split, seed)
    for number in range(scenes):
        backdrop, boxes = _place(rng, seed, number)
        indices = [faces.take() for _ in boxes]
        offsets = np.zeros((len(boxes), 2), int)
        for _ in range(hold):
            offsets = np.clip(offsets + rng.integers(-1, 2, offsets.shape), -drift, drift)
            image, moved = backdrop.copy(), []
            for (x, y, w, h), (dx, dy), index in zip(boxes, offsets, indices):
                side = int(round(w * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)))
                moved.append((x + int(dx) + (w - side) // 2, y + int(dy) + (h - side) // 2, side, side))
                paste_face(image, split.images[index], moved[-1])
            yield _noisy(image, rng), moved, indices


def score(frames, detector, split, iou: float = 0.4) -> dict:
    """Label accuracy on the faces found, and the share of tracks that held several true faces."""
    found = correct = total = 0
    people_per_track: dict[int, set[int]] = defaultdict(set)
    truths: list[tuple[list, list]] = []  # the boxes and faces of each frame the stream has taken

    def images():
        for image, boxes, indices in frames:
            truths.append((boxes, indices))
            yield image

    for result in detector.stream(images()):
        (boxes, indices), faces = truths[-1], result.faces
        matches = match_boxes(boxes, [detector.crop_box(face.box) for face in faces], iou, nested=True)
        total += len(boxes)
        for truth, match in enumerate(matches):
            if match is None:
                continue
            found += 1
            correct += faces[match].label == detector.labels[int(split.labels[indices[truth]])]
            people_per_track[faces[match].track_id].add(indices[truth])
    mixed = sum(len(people) > 1 for people in people_per_track.values())
    return {"faces": total, "found": found, "label_accuracy": round(correct / found, 4) if found else 0.0,
            "tracks": len(people_per_track), "mixed_tracks": round(mixed / len(people_per_track), 4) if people_per_track else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or CSV (PublicTest faces are used)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default video lengths (for a quick try)")
    parser.add_argument("--min-likeness", type=float, help="for the default and smooth-0 settings (default: the runtime's)")
    parser.add_argument("--video", action="append", choices=("changing", "swapping", "staying"), help="repeat for several (default: all)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    split = load_eval_split(args.data, "val")
    videos = {
        "changing": lambda: changing(split, max(1, int(600 * args.scale))),
        "swapping": lambda: swapping(split, max(1, int(40 * args.scale))),
        "staying": lambda: staying(split, max(1, int(60 * args.scale))),
    }
    report = {"noise_sigma": NOISE_SIGMA, "scale": args.scale, "rows": []}
    for video, frames in videos.items():
        if args.video and video not in args.video:
            continue
        for setting, overrides in SETTINGS.items():
            if args.min_likeness is not None and setting != "overlap only":
                overrides = {**overrides, "min_likeness": args.min_likeness}
            with EmotionDetector(detector=DetectorSettings(name="yunet", download=False), **overrides) as detector:
                row = {"video": video, "setting": setting, **score(frames(), detector, split)}
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
            handle.write("\n")


if __name__ == "__main__":
    main()
