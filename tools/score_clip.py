"""Scores the whole pipeline on a clip with ground truth (`<clip>.json`, as make_demo.py writes).

Per true face per frame: detected (a runtime box overlapping it with IoU >= 0.4) and, if so,
labelled right. Reports detection recall, false detections, label accuracy on detected faces,
end-to-end accuracy (detected and right, over all true faces) and the loop's FPS (decode,
detect, classify; no drawing).

Usage (from the repository root):

    python tools/make_demo.py --faces ../shared/fer2013/test --random-scenes 40 --out /tmp/public_test.mp4
    python tools/score_clip.py /tmp/public_test.mp4 --backend onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edge_runtime.pipeline.emotion_detector import EmotionDetector
from edge_runtime.sources.open_source import open_source
from fer_data.scenes import match_boxes

MATCH_IOU = 0.4


def score(clip: Path, model: Path | None, backend: str, detect_every: int, threads: int | None) -> dict:
    truth = json.loads(clip.with_suffix(".json").read_text(encoding="utf-8"))["frames"]
    true_faces = detected = right = false_detections = 0
    with EmotionDetector(model, backend=backend, detect_every=detect_every, threads=threads) as detector:
        source = open_source(str(clip))
        started = time.perf_counter()
        frames = 0
        for record, result in zip(truth, detector.stream(source)):
            faces = result.faces
            matches = match_boxes([face["box"] for face in record["faces"]], [face.box for face in faces], MATCH_IOU)
            for true_face, match in zip(record["faces"], matches):
                true_faces += 1
                if match is not None:
                    detected += 1
                    right += faces[match].label == true_face["label"]
            false_detections += len(faces) - sum(m is not None for m in matches)
            frames += 1
        seconds = time.perf_counter() - started
        source.close()
        model_name = f"{detector.model_path.name} ({detector.backend.name})"
    return {
        "clip": str(clip),
        "model": model_name,
        "frames": frames,
        "true_faces": true_faces,
        "detection_recall": round(detected / max(1, true_faces), 4),
        "false_detections": false_detections,
        "accuracy_on_detected": round(right / max(1, detected), 4),
        "end_to_end_accuracy": round(right / max(1, true_faces), 4),
        "fps": round(frames / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(score(args.clip, args.model, args.backend, args.detect_every, args.threads), indent=2))


if __name__ == "__main__":
    main()
