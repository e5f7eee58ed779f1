"""Measures how large a copy of a photo a face detector should search (`DetectorInfo.photo_side`).

A video loop searches a fixed fraction of each frame (`detect_scale`, 0.5: a 640x480 webcam frame
becomes 320x240) to keep its frame rate. A photo has no frame rate to keep, and photos come in
every size, so a fixed fraction finds small faces in small photos poorly and large faces in
large photos poorly (and slowly). This builds `edge-bench scene` frames of PublicTest faces
(seed 2, so not the frames `edge-bench scene` reports on: 640x480, faces of 144-192 px),
enlarges them into photos of 1, 2 and 4 times that size, and reports for each photo size and
each setting (the detector's fixed `detect_scale`, and copies whose longer side is 480, 640 or
960 px) the share of faces found (the `edge-bench scene` rule: the crop the model reads, the
detector's box through its crop mapping, overlaps the face's FER crop by IoU >= 0.4 or is
nested with it), the detections that match no face, and the milliseconds one detection takes.

Usage (from the repository root; YuNet's file must be cached: `edge-run --fetch-models`):

    python tools/measure_photo_side.py --data ../shared/fer2013 --frames 200 --json bench/photo_side.json
"""

from __future__ import annotations

import argparse
import json
import time

import cv2

from benchmarks.inputs import load_eval_split
from edge_runtime.detectors import DETECTOR_NAMES, DetectorSettings, load_detector
from edge_runtime.detectors.base import photo_scale
from fer_data.scenes import SceneSettings, build_scene, match_boxes

FACTORS = (1, 2, 4)
SIDES = (480, 640, 960)


def measure(chosen, photos, scale_of) -> dict:
    """Found share, unmatched detections per photo and ms per detection over `photos`."""
    found = faces = unmatched = 0
    seconds = 0.0
    for image, boxes in photos:
        scale = scale_of(image)
        started = time.perf_counter()
        detections = chosen.detector.detect(image, scale)
        seconds += time.perf_counter() - started
        matches = match_boxes(boxes, [chosen.crop.box(d.box) for d in detections], 0.4, nested=True)
        found += sum(m is not None for m in matches)
        faces += len(boxes)
        unmatched += len(detections) - sum(m is not None for m in matches)
    return {"found": round(found / faces, 4), "unmatched_per_photo": round(unmatched / len(photos), 4),
            "ms_per_photo": round(1000 * seconds / len(photos), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or CSV (PublicTest faces are used)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--detector", action="append", choices=DETECTOR_NAMES, help="repeat for several (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    cv2.setNumThreads(args.threads)
    frames = build_scene(load_eval_split(args.data, "val"), SceneSettings(frames=args.frames, seed=2))
    report = {"frames": args.frames, "threads": args.threads, "rows": []}
    for name in args.detector or DETECTOR_NAMES:
        chosen = load_detector(DetectorSettings(name=name, download=False))
        for factor in FACTORS:
            photos = [(cv2.resize(f.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC),
                       [tuple(v * factor for v in box) for box in f.boxes]) for f in frames]
            width, height = photos[0][0].shape[1], photos[0][0].shape[0]
            settings = [(f"detect_scale {chosen.info.detect_scale:g}", lambda image: None)]
            settings += [(f"longer side {side}", lambda image, side=side: photo_scale(image.shape, side)) for side in SIDES]
            for label, scale_of in settings:
                row = {"detector": name, "photo": f"{width}x{height}", "face_px": f"{144 * factor}-{192 * factor}",
                       "setting": label, **measure(chosen, photos, scale_of)}
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
