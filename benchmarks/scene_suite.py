"""`edge-bench scene` as a library call: build the scene once, run each model's full pipeline on
it, and score detection, labels and the crop-accuracy gap."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.environment import environment
from benchmarks.inputs import load_eval_split
from benchmarks.rows import error_text, failed_row, ok_row
from benchmarks.scene_bench import crop_accuracy, score_scene
from edge_runtime.detectors import DETECTOR_NAMES
from edge_runtime.outputs.atomic import atomic_path
from fer_data.scenes import SceneSettings, build_scene

VIDEO_FPS = 10.0
TRUTH_COLOR = (0, 255, 0)


@dataclass(frozen=True)
class SceneConfig:
    """Settings of `edge-bench scene`.

    Attributes:
        data: FER-2013 folder or CSV whose `split` supplies the faces.
        split: "val" (PublicTest, the default: faces no model trained on), "test" or "train".
        models: model files; empty for the bundled default model.
        backend: "auto" or a BACKENDS name.
        threads: inference threads.
        detect_scale: the runtime's detection scale.
        detectors: face detectors (DETECTORS names); every model is scored with each, on the same frames.
        detector_model: the model file of the detectors that need one (YuNet), instead of the
            cache's copy; None: the cache's.
        scene: how frames are built and scored.
        save_video: write the annotated scene (first model) here.
    """

    data: Path
    split: str = "val"
    models: tuple[Path, ...] = ()
    backend: str = "auto"
    threads: int | None = None
    detect_scale: float = 0.5
    detectors: tuple[str, ...] = DETECTOR_NAMES
    detector_model: Path | None = None
    scene: SceneSettings = field(default_factory=SceneSettings)
    save_video: Path | None = None

    def settings(self) -> dict:
        data = asdict(self)
        data.update(data=str(self.data), models=[str(p) for p in self.models], detectors=list(self.detectors),
                    save_video=str(self.save_video) if self.save_video else None,
                    detector_model=str(self.detector_model) if self.detector_model else None)
        return data


def open_detector(model: Path | None, config: SceneConfig, detector: str):
    """The runtime pipeline as `edge-run` builds it; each scene frame goes to `detect`, which
    carries nothing from one frame to the next (consecutive scene frames hold different people,
    and averaging one with the next would blur the score). A benchmark never downloads: a
    detector whose file is neither passed nor cached fails its row."""
    from benchmarks.pipeline_suite import detector_file
    from edge_runtime.detectors import DetectorSettings
    from edge_runtime.pipeline.emotion_detector import EmotionDetector

    model_file, _ = detector_file(detector, config.detector_model)  # a missing file fails below, with its reason
    settings = DetectorSettings(name=detector, model=model_file or None, detect_scale=config.detect_scale, download=False)
    return EmotionDetector(model=model, backend=config.backend, threads=config.threads, detector=settings, min_confidence=0.0)


class VideoOut:
    """The annotated scene as a video: true boxes in thin green, the runtime's own drawing on top."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
        self.writer = cv2.VideoWriter(str(path), fourcc, VIDEO_FPS, (width, height))
        if not self.writer.isOpened():
            raise OSError(f"{path}: OpenCV cannot write this video format; use .mp4 or .avi")

    def __call__(self, frame, faces) -> None:
        from edge_runtime.outputs.draw import draw_faces

        image = frame.image.copy()
        for x, y, w, h in frame.boxes:
            cv2.rectangle(image, (x, y), (x + w, y + h), TRUTH_COLOR, 1)
        self.writer.write(draw_faces(image, faces))

    def close(self) -> None:
        self.writer.release()


def run_scene(config: SceneConfig, detector_factory: Callable = open_detector, log=lambda line: None) -> dict:
    """Scores every model on the same scene; returns the report.

    Raises:
        DataError: bad data or an empty split.
    """
    split = load_eval_split(config.data, config.split)
    frames = build_scene(split, config.scene)
    log(f"scene: {len(frames)} frames, {sum(len(f.boxes) for f in frames)} faces from the {config.split} split of {config.data}")
    rows = []
    with contextlib.ExitStack() as stack:
        video = None
        if config.save_video:
            # Written to a temporary file and renamed when done: never a half-written video.
            video = VideoOut(stack.enter_context(atomic_path(config.save_video)), config.scene.width, config.scene.height)
            stack.callback(video.close)
        pairs = [(model, detector) for model in config.models or (None,) for detector in config.detectors]
        for index, (model, detector) in enumerate(pairs):
            rows.append(_score_model(model, detector, config, frames, split, detector_factory, video if index == 0 else None))
            log(f"  {rows[-1]['name']}: {rows[-1]['status']}")
    counts = np.bincount([label for frame in frames for label in frame.labels], minlength=7).tolist()
    return {"command": "scene", "environment": environment(), "settings": config.settings(), "rows": rows,
            "scene": {"frames": len(frames), "faces": sum(counts), "faces_per_label": counts}}


def _score_model(model, detector_name: str, config: SceneConfig, frames, split, detector_factory, video) -> dict:
    try:
        with detector_factory(model, config, detector_name) as detector:
            name = f"{Path(detector.model_path).name} ({detector.backend.name}) {detector_name}"
            score = score_scene(frames, detector.detect, detector.labels, config.scene.iou_threshold, on_frame=video,
                                crop_box=detector.crop_box)
            all_indices = [i for frame in frames for i in frame.face_indices]
            figures = score.figures()
            # The crops go through the model as the detector's faces do (flip averaging included),
            # so the gap between the two accuracies is the detector's alone.
            def predict_crops(faces):
                return detector.backend.predict_faces(faces, detector.settings.flip_average)

            figures["crop_accuracy"] = crop_accuracy(predict_crops, split, all_indices)
            figures["crop_accuracy_detected"] = crop_accuracy(predict_crops, split, score.detected_face_indices)
            # The detector's cost in accuracy on the same faces: own crops minus detected crops.
            figures["crop_gap"] = figures["crop_accuracy_detected"] - figures["label_accuracy"]
            return ok_row(name, model=str(detector.model_path), backend=detector.backend.name, detector=detector_name, **figures)
    except Exception as error:  # noqa: BLE001 - one model's failure is its row
        return failed_row(f"{model or 'bundled model'} {detector_name}", error_text(error), model=str(model) if model else None,
                          detector=detector_name)
