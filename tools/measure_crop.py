"""Measures the crop mapping of a face detector: which crop of its box the model reads best.

A detector's box frames a face its own way (YuNet's box is taller than wide and starts at the
brows; Haar's is square and close to the FER-2013 crop). This builds `edge-bench scene` frames
of PublicTest faces (seed 1, so not the frames `edge-bench scene` reports on), runs the
detector, matches its boxes to the true face boxes, and reports

- geometry: where the true (FER) crop lies relative to the detected box: centre offset as a
  fraction of the box's width / height, and the true side over the box's larger side;
- label accuracy of the bundled model on the detected faces for a grid of mappings (side
  scale, vertical shift, square or not, eyes levelled or not), beside the model's accuracy on
  the same faces' own 48x48 crops.

With `--tilt 25` the faces are pasted turned by up to 25 degrees, which shows whether
levelling the eyes (landmark detectors only) pays.

Usage (from the repository root):

    python tools/measure_crop.py --data ../shared/fer2013 --detector yunet --frames 300
    python tools/measure_crop.py --data ../shared/fer2013 --detector yunet --frames 300 --tilt 25
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import asdict

import numpy as np

from benchmarks.accuracy_bench import predict_split
from benchmarks.inputs import load_eval_split
from edge_runtime.detectors import CropMapping, DetectorSettings, load_detector
from edge_runtime.pipeline.emotion_detector import load_model
from fer_data.scenes import SceneSettings, build_scene, match_boxes

SCALES = (0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3)
SHIFTS_Y = (-0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075, 0.1)


def matched_faces(frames, detector, iou_threshold: float):
    """(frame image, detection, true box, label, face index) for every detected true face."""
    found = []
    for frame in frames:
        detections = detector.detect(frame.image)
        matches = match_boxes(frame.boxes, [d.box for d in detections], iou_threshold)
        for truth, match in enumerate(matches):
            if match is not None:
                found.append((frame.image, detections[match], frame.boxes[truth], frame.labels[truth], frame.face_indices[truth]))
    return found


def geometry(found) -> dict:
    """Where the true crop sits relative to the detected box (median and quartiles)."""
    rows = []
    for _, detection, (tx, ty, tw, th), _, _ in found:
        x, y, w, h = detection.box
        rows.append(((tx + tw / 2 - x - w / 2) / w, (ty + th / 2 - y - h / 2) / h, tw / max(w, h), h / w))
    values = np.asarray(rows)
    names = ("centre_shift_x", "centre_shift_y", "true_side_over_box_side", "box_height_over_width")
    return {name: [round(float(q), 4) for q in np.percentile(values[:, i], (25, 50, 75))] for i, name in enumerate(names)}


def accuracy(backend, found, labels: np.ndarray, mapping: CropMapping) -> float:
    crops = [mapping.crop(image, detection) for image, detection, _, _, _ in found]
    return float((predict_split(backend, crops, True).argmax(axis=1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or CSV (PublicTest faces are used)")
    parser.add_argument("--detector", default="yunet", choices=("yunet", "haar"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--tilt", type=float, default=0.0, help="turn faces by up to this many degrees")
    parser.add_argument("--scales", default=",".join(map(str, SCALES)), help="crop side over box side, comma-separated")
    parser.add_argument("--shifts", default=",".join(map(str, SHIFTS_Y)), help="vertical centre shifts, comma-separated")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    split = load_eval_split(args.data, "val")
    settings = SceneSettings(frames=args.frames, seed=1, max_tilt=args.tilt)
    frames = build_scene(split, settings)
    chosen = load_detector(DetectorSettings(name=args.detector))
    backend = load_model(None, "auto")
    found = matched_faces(frames, chosen.detector, settings.iou_threshold)
    indices = np.asarray([index for *_, index in found])
    own = predict_split(backend, split.images[indices], True).argmax(axis=1)
    labels = np.asarray([label for _, _, _, label, _ in found])
    report = {
        "detector": args.detector, "frames": args.frames, "tilt": args.tilt,
        "faces": sum(len(f.boxes) for f in frames), "detected": len(found),
        "own_crop_accuracy": float((own == split.labels[indices]).mean()),
        "geometry": geometry(found), "table_mapping": asdict(chosen.crop), "grid": [],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=1))
    aligns = (False, True) if chosen.info.landmarks else (False,)
    scales = [float(v) for v in args.scales.split(",")]
    shifts = [float(v) for v in args.shifts.split(",")]
    for scale, shift_y, square, align in itertools.product(scales, shifts, (True, False), aligns):
        mapping = CropMapping(scale=scale, shift_y=shift_y, square=square, align_eyes=align)
        report["grid"].append({**asdict(mapping), "label_accuracy": accuracy(backend, found, labels, mapping)})
    report["grid"].sort(key=lambda row: -row["label_accuracy"])
    for row in report["grid"][:10]:
        print(row)
    table = next((r for r in report["grid"] if all(r[k] == v for k, v in asdict(chosen.crop).items())), None)
    print("table mapping:", table or "not in the grid")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
