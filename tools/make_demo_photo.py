"""Builds the demo photo (`demo_photo.jpg`) and its ground truth (`demo_photo.json`).

A 960x640 "group photo" of six FER-2013 training faces, one per label (disgust, the rarest,
left out), at 90-150 px, some turned by up to 20 degrees as heads in a group photo are. The
Python API page's example (docs/python-api.md) and the photo-mode tests read it, so the runtime can be tried on a
photo without a camera or a download.

Usage (from the repository root; the defaults rebuild the bundled photo):

    python tools/make_demo_photo.py --faces ../shared/fer2013/train
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.outputs.atomic import atomic_path, write_json_atomic
from edge_runtime.sources.open_source import demo_photo_path
from fer_data.scenes import background, paste_face, place_boxes, read_face

LABELS_SHOWN = ("angry", "fear", "happy", "neutral", "sad", "surprise")
SIZE = (960, 640)
SIDES = (90, 150)
MAX_TILT = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="FER-2013 split folder with one sub-folder per label")
    parser.add_argument("--out", type=Path, default=demo_photo_path(), help="the photo; its ground truth goes next to it (.json)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pick = random.Random(args.seed)
    image = background(SIZE, seed=args.seed)
    boxes = place_boxes(rng, len(LABELS_SHOWN), SIDES, *SIZE)
    if len(boxes) < len(LABELS_SHOWN):
        raise SystemExit(f"only {len(boxes)} faces fit; try another --seed")
    faces = []
    for label, box in zip(LABELS_SHOWN, boxes):
        files = sorted((args.faces / label).glob("*"))
        if not files:
            raise SystemExit(f"{args.faces / label}: no faces; expected the FER-2013 folder layout")
        source = pick.choice(files)
        angle = round(float(rng.uniform(-MAX_TILT, MAX_TILT)), 1)
        paste_face(image, read_face(source), box, angle)
        faces.append({"box": list(box), "label": label, "angle": angle, "source": source.name})
    with atomic_path(args.out) as tmp:
        cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    write_json_atomic(args.out.with_suffix(".json"), {"photo": args.out.name, "size": list(SIZE), "faces": faces,
                                                      "made_by": "tools/make_demo_photo.py", "seed": args.seed})
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB, {len(faces)} faces")


if __name__ == "__main__":
    main()
