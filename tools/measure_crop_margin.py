"""Measures how a Haar box relates to the FER-2013 crop, to choose the model's crop margin.

FER-2013 faces are tight crops. This pastes real training faces, upscaled to 144-192 px, at
known boxes into 640x480 frames, runs the runtime's detector on them, and compares each
detected box with the true face box:

- margin = (true side / detected side - 1) / 2: what `expand_box` must add on every side of
  the Haar box to get the FER framing back (negative: the Haar box is larger than the crop);
- offset: (true centre - detected centre) / detected side, which a symmetric margin cannot fix;
- the margin whose 48x48 crop is closest to the original face (mean absolute pixel difference).

Usage (from the repository root):

    python tools/measure_crop_margin.py --faces ../shared/fer2013/train --count 400
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from benchmarks.scenes import FRAME_SIZE, background, match_boxes, paste_face, read_face
from edge_runtime.detector import HaarDetector
from edge_runtime.labels import LABELS
from edge_runtime.preprocess import crop_face, face_to_gray48

MARGIN_GRID = np.round(np.arange(-0.25, 0.41, 0.025), 3)


def sample_faces(root: Path, count: int, seed: int) -> list[Path]:
    """`count` face files spread evenly over the label folders of `root`."""
    rng = random.Random(seed)
    per_label = max(1, count // len(LABELS))
    picked: list[Path] = []
    for label in LABELS:
        files = sorted((root / label).glob("*"))
        picked += rng.sample(files, min(per_label, len(files)))
    return picked


def measure(root: Path, count: int, seed: int, detect_scale: float) -> dict:
    rng = np.random.default_rng(seed)
    detector = HaarDetector(detect_scale=detect_scale)
    width, height = FRAME_SIZE
    margins, offsets_x, offsets_y, best_margins, found = [], [], [], [], 0
    files = sample_faces(root, count, seed)
    for i, path in enumerate(files):
        face = read_face(path)
        side = int(rng.integers(144, 193))
        box = (int(rng.integers(20, width - side - 20)), int(rng.integers(20, height - side - 20)), side, side)
        frame = background(seed=seed + i)
        paste_face(frame, face, box)
        detections = detector.detect(frame)
        match = match_boxes([box], detections)[0]
        if match is None:
            continue
        found += 1
        hx, hy, hw, hh = detections[match]
        margins.append((side / hw - 1) / 2)
        offsets_x.append(((box[0] + side / 2) - (hx + hw / 2)) / hw)
        offsets_y.append(((box[1] + side / 2) - (hy + hh / 2)) / hh)
        errors = [np.abs(face_to_gray48(crop_face(frame, detections[match], m)).astype(np.float32) - face).mean() for m in MARGIN_GRID]
        best_margins.append(float(MARGIN_GRID[int(np.argmin(errors))]))

    def quartiles(values):
        return [round(float(v), 3) for v in np.percentile(values, [25, 50, 75])] if values else []

    return {
        "faces": len(files),
        "detected": found,
        "recall": round(found / max(1, len(files)), 3),
        "detect_scale": detect_scale,
        "margin_from_box_size_q25_median_q75": quartiles(margins),
        "centre_offset_x_q25_median_q75": quartiles(offsets_x),
        "centre_offset_y_q25_median_q75": quartiles(offsets_y),
        "margin_best_pixel_match_q25_median_q75": quartiles(best_margins),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="FER-2013 folder with one sub-folder per label")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detect-scale", type=float, default=0.5)
    args = parser.parse_args()
    print(json.dumps(measure(args.faces, args.count, args.seed, args.detect_scale), indent=2))


if __name__ == "__main__":
    main()
