"""Builds the demo clip (`demo.mp4`) and its ground truth (`demo.json`) from FER-2013 faces.

`edge-run --source demo` plays this clip, so the runtime can be tried on a machine without a
webcam. It is made of one training face per label, upscaled to 150-190 px and placed with
background around them into 640x480 frames: three scenes of two or three faces, one of them
moving in each, with a few empty frames between scenes. Haar finds only about two in three
FER faces pasted this way, so each face is chosen among seeded candidates as one the
detector finds at every size and place it is shown.
The JSON lists the true box and label of every face in every frame (for tests and benchmarks).

Usage (from the repository root; the defaults rebuild the bundled clip):

    python tools/make_demo.py --faces ../shared/fer2013/train

With `--faces ../shared/fer2013/test --random-scenes 40 --out /tmp/public_test.mp4` it builds
an evaluation clip instead: 40 one-second scenes of three PublicTest faces drawn at random
(not chosen by the detector), for measuring the pipeline on faces the model never saw with
`score_clip.py`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.detectors.haar import HaarDetector
from edge_runtime.labels import LABELS
from edge_runtime.outputs.atomic import atomic_path, write_json_atomic
from edge_runtime.sources.open_source import demo_clip_path
from fer_data.scenes import FRAME_SIZE, background, match_boxes, paste_face, read_face

FPS = 15
SCENE_FRAMES = 30  # two seconds per scene
# Empty frames between scenes: longer than the tracker keeps an unmatched track, so the faces
# of the next scene start new tracks instead of inheriting ids where boxes overlap.
GAP_FRAMES = 8

# Each scene: faces as (label, side, x, y, dx per frame, dy per frame).
SCENES: tuple[tuple[tuple[str, int, int, int, float, float], ...], ...] = (
    (("happy", 180, 60, 150, 0.0, 0.0), ("neutral", 160, 330, 60, 2.0, 3.0)),
    (("surprise", 160, 20, 60, 0.0, 0.0), ("sad", 170, 230, 250, 0.0, -3.5), ("angry", 150, 460, 170, 0.0, 0.0)),
    (("fear", 190, 400, 120, 0.0, 0.0), ("disgust", 160, 40, 80, 3.0, 2.0)),
)


def scene_boxes(scene, frame_index: int) -> list[tuple[int, int, int, int]]:
    return [(round(x + dx * frame_index), round(y + dy * frame_index), side, side) for _, side, x, y, dx, dy in scene]


def robust(face: np.ndarray, placements: list[tuple[int, int, int, int]], detector: HaarDetector, seed: int) -> bool:
    """True when the detector finds the face at every placement (after an MPEG-4 round trip)."""
    for i, box in enumerate(placements):
        frame = background(seed=seed + i)
        paste_face(frame, face, box)
        # JPEG at similar quality stands in for the video codec's blockiness.
        frame = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_COLOR)
        if match_boxes([box], [d.box for d in detector.detect(frame)], min_iou=0.5)[0] is None:
            return False
    return True


def choose_faces(root: Path, detector: HaarDetector, seed: int, tries: int = 200) -> dict[str, Path]:
    """One face file per label of the scenes, the first robust one among seeded candidates."""
    rng = random.Random(seed)
    chosen: dict[str, Path] = {}
    for scene in SCENES:
        for label, *_ in scene:
            placements = [scene_boxes([item], f)[0] for item in scene if item[0] == label for f in range(0, SCENE_FRAMES, 5)]
            files = sorted((root / label).glob("*"))
            if not files:
                raise SystemExit(f"{root / label}: no faces; expected the FER-2013 folder layout (<split>/<label>/*.jpg)")
            for path in rng.sample(files, min(tries, len(files))):
                if robust(read_face(path), placements, detector, seed):
                    chosen[label] = path
                    break
            else:
                raise SystemExit(f"{root / label}: no face among {tries} candidates is detected at every placement")
    return chosen


def demo_scenes(root: Path, seed: int) -> list[list[tuple]]:
    """SCENES with the chosen face file in front of each item."""
    faces = choose_faces(root, HaarDetector(), seed)
    return [[(faces[item[0]], *item) for item in scene] for scene in SCENES]


def random_scenes(root: Path, count: int, seed: int, frames: int) -> list[list[tuple]]:
    """`count` scenes of three faces drawn at random (no detector in the choice, so detection
    recall measured on them is unbiased), one per column, the middle one moving."""
    rng = random.Random(seed)
    files = {label: sorted((root / label).glob("*")) for label in LABELS}
    scenes = []
    for _ in range(count):
        scene = []
        for column, x in enumerate((20, 230, 440)):
            label = rng.choice([label for label in LABELS if files[label]])
            side = rng.randint(150, 190)
            dy = 2.0 if column == 1 else 0.0
            y = rng.randint(20, FRAME_SIZE[1] - side - 20 - int(dy * frames))
            scene.append((rng.choice(files[label]), label, side, x, y, 0.0, dy))
        scenes.append(scene)
    return scenes


def build(scenes: list[list[tuple]], out: Path, seed: int, scene_frames: int, faces_from: str) -> dict:
    """Writes the clip and its ground truth; each scene item is (file, label, side, x, y, dx, dy)."""
    width, height = FRAME_SIZE
    frames_truth = []
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, FRAME_SIZE)
        if not writer.isOpened():
            raise SystemExit(f"{out}: OpenCV cannot write mp4v video here")
        index = 0
        for scene_index, scene in enumerate(scenes):
            backdrop = background(seed=seed + scene_index)
            pixels = [read_face(item[0]) for item in scene]
            for _ in range(GAP_FRAMES if scene_index else 0):
                writer.write(backdrop)
                frames_truth.append({"frame": index, "faces": []})
                index += 1
            for f in range(scene_frames):
                frame = backdrop.copy()
                placed = []
                for (path, label, *_), face, box in zip(scene, pixels, scene_boxes([item[1:] for item in scene], f)):
                    if box[0] < 0 or box[1] < 0 or box[0] + box[2] > width or box[1] + box[3] > height:
                        raise SystemExit(f"scene {scene_index}: the {label} face leaves the frame at frame {f}")
                    paste_face(frame, face, box)
                    placed.append({"box": list(box), "label": label, "source": Path(path).name})
                writer.write(frame)
                frames_truth.append({"frame": index, "faces": placed})
                index += 1
        writer.release()
    truth = {
        "video": out.name,
        "fps": FPS,
        "size": [width, height],
        "frames": frames_truth,
        "made_by": "tools/make_demo.py",
        "faces_from": faces_from,
        "seed": seed,
    }
    write_json_atomic(out.with_suffix(".json"), truth)
    return truth


def check(out: Path, truth: dict) -> str:
    """Reads the clip back and runs the detector on it: frames decoded and detection recall."""
    capture = cv2.VideoCapture(str(out))
    detector = HaarDetector()
    decoded, total, found = 0, 0, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        boxes = [face["box"] for face in truth["frames"][decoded]["faces"]]
        matches = match_boxes(boxes, [d.box for d in detector.detect(frame)])
        total += len(boxes)
        found += sum(m is not None for m in matches)
        decoded += 1
    capture.release()
    return (
        f"{out}: {out.stat().st_size / 1024:.0f} KB, {decoded}/{len(truth['frames'])} frames decoded, "
        f"Haar found {found}/{total} faces ({found / max(1, total):.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="FER-2013 split folder with one sub-folder per label")
    parser.add_argument("--out", type=Path, default=demo_clip_path(), help="the clip; its ground truth goes next to it (.json)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--random-scenes", type=int, default=0, metavar="N",
        help="instead of the demo: N scenes of 3 faces drawn at random (not chosen by the detector), 1 s each",
    )
    args = parser.parse_args()
    missing = [label for label in LABELS if not (args.faces / label).is_dir()]
    if missing:
        raise SystemExit(f"{args.faces}: no folder for {', '.join(missing)}; expected <split>/<label>/ folders")
    if args.random_scenes:
        scenes = random_scenes(args.faces, args.random_scenes, args.seed, FPS)
        truth = build(scenes, args.out, args.seed, FPS, args.faces.name)
    else:
        truth = build(demo_scenes(args.faces, args.seed), args.out, args.seed, SCENE_FRAMES, args.faces.name)
    print(check(args.out, truth))


if __name__ == "__main__":
    main()
