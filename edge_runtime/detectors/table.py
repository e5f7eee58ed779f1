"""The table of face detectors: one row per detector, with named fields.

`edge-run --detector`, `EmotionDetector(detector=...)` and `edge-bench pipeline/scene` read
their choices, defaults, model files and crop mappings from here; adding a detector is adding a
row and its class (with a `from_settings(row, settings)` constructor). Nothing outside a row
decides by a detector's name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from edge_runtime.model_files.formats import find_row


@dataclass(frozen=True)
class ModelFile:
    """A third-party model file a detector needs, pinned to one upstream version.

    Attributes:
        file_name: name in the cache folder.
        url: the pinned upstream address (a fixed commit, so the bytes never change).
        sha256: the bytes' hash; a download or cached copy with another hash is refused.
        size: bytes, for a download's sanity limit.
        licence: its licence and copyright holder.
        trained_on: the data set the weights were trained on.
    """

    file_name: str
    url: str
    sha256: str
    size: int
    licence: str
    trained_on: str


@dataclass(frozen=True)
class CropMapping:
    """How a detector's box becomes the face crop the model expects (FER-2013's framing).

    The crop is centred on the box's centre moved by (shift_x * w, shift_y * h); its side is
    `scale` times the box's side (the larger one when `square`, so the face keeps its aspect
    ratio, as FER-2013's square crops do). With `align_eyes` the crop is rotated about its
    centre so the eye landmarks are level (detectors with landmarks only). Measured per
    detector with `tools/measure_crop.py` (see docs/edge-run.md, "Crops that match the model").
    """

    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    square: bool = True
    align_eyes: bool = False

    def region(self, box, margin: float = 0.0) -> tuple[float, float, float, float]:
        """Centre (x, y) and size (w, h) of the crop for a detector box, with `margin` of its
        side added on every side."""
        from edge_runtime.preprocess import crop_region

        return crop_region(box, self.scale * (1 + 2 * margin), (self.shift_x, self.shift_y), self.square)

    def box(self, box, margin: float = 0.0) -> tuple[int, int, int, int]:
        """The (x, y, w, h) region of `region`, in whole pixels (before any eye levelling)."""
        centre_x, centre_y, w, h = self.region(box, margin)
        return int(round(centre_x - w / 2)), int(round(centre_y - h / 2)), int(round(w)), int(round(h))

    def crop(self, frame, detection, margin: float = 0.0):
        """The crop of `frame` the model reads for a Detection (eyes levelled when asked and known)."""
        from edge_runtime.preprocess import crop_mapped, eye_angle

        angle = eye_angle(detection.landmarks) if self.align_eyes and detection.landmarks else 0.0
        return crop_mapped(frame, self.region(detection.box, margin), angle)


@dataclass(frozen=True)
class DetectorInfo:
    """One face detector.

    Attributes:
        name: `--detector` value.
        description: one line for help texts and tables.
        needs: what it needs to run.
        module: module holding the class, imported only when chosen.
        class_name: the class in `module`.
        model_file: the file it needs that no wheel ships (fetched and verified), or None.
        detect_scale: default factor of the copy it runs on (video frames, and photos when
            `photo_side` is None).
        photo_side: photos (image and folder sources, `EmotionDetector.detect`) are searched on a copy
            whose longer side is this many pixels (never enlarged), whatever the photo's size;
            None: at `detect_scale`, as video frames. A `detect_scale` the user sets wins.
        min_size: default smallest face side, in source pixels.
        crop: how its boxes map onto the model's crop.
        landmarks: True when it returns the five face landmarks.
        options: the `DetectorSettings` fields only this detector reads, with their defaults
            (None: none); a setting of another detector is refused, and under `auto` one of
            these chooses this detector.
    """

    name: str
    description: str
    needs: str
    module: str
    class_name: str
    model_file: ModelFile | None
    detect_scale: float
    photo_side: int | None
    min_size: int
    crop: CropMapping
    landmarks: bool
    options: dict[str, object]

    def value(self, settings, field: str):
        """`settings`' `field` (a `DetectorSettings` field), or this row's default for it."""
        return self.filled(**{field: getattr(settings, field)})[field]

    def filled(self, **values) -> dict:
        """`values` (`DetectorSettings` field -> value), with this row's default for each None."""
        return {field: self.default(field) if value is None else value for field, value in values.items()}

    def default(self, field: str):
        """This row's default for a `DetectorSettings` field."""
        return self.options[field] if field in self.options else getattr(self, field)

    def build(self, settings):
        """The detector this row describes, with `settings` (its module is imported only now).

        Raises:
            DetectorError: its file or a setting is invalid.
        """
        detector_class = getattr(importlib.import_module(self.module), self.class_name)
        return detector_class.from_settings(self, settings)


YUNET_FILE = ModelFile(
    file_name="face_detection_yunet_2026may.onnx",
    url=(
        "https://github.com/opencv/opencv_zoo/raw/47534e27c9851bb1128ccc0102f1145e27f23f98/"
        "models/face_detection_yunet/face_detection_yunet_2026may.onnx"
    ),
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    size=229_738,
    licence="MIT, copyright (c) 2020 Shiqi Yu (OpenCV Zoo, models/face_detection_yunet/LICENSE)",
    trained_on="WIDER FACE",
)

YUNET = DetectorInfo(
    name="yunet",
    description="YuNet CNN (OpenCV Zoo): tilted and turned faces, scores and five landmarks",
    needs="OpenCV >= 4.8 (cv2.FaceDetectorYN) and a 230 KB ONNX file, fetched once and verified",
    module="edge_runtime.detectors.yunet",
    class_name="YuNetDetector",
    model_file=YUNET_FILE,
    detect_scale=0.5,
    # Half size keeps video fast; a photo has no frame rate to keep and comes in any size,
    # and YuNet finds most faces when they are 150-400 px in the copy it searches, which a
    # 640 px copy gives photos of every size (docs/performance.md, "Photos: how large a
    # copy is searched").
    photo_side=640,
    min_size=24,
    # YuNet's box is taller than the FER crop is wide: the crop is the square of its height;
    # levelling the eyes helps turned faces and costs upright ones nothing (docs/edge-run.md,
    # "Crops that match the model").
    crop=CropMapping(scale=1.0, shift_x=0.0, shift_y=0.0, square=True, align_eyes=True),
    landmarks=True,
    # model: its ONNX file instead of the cached download. The score threshold is the lowest
    # that still adds no detection on the background, so recall is as high as it goes without
    # stray boxes (docs/performance.md, "Detector in the loop").
    options={"model": None, "score_threshold": 0.5},
)

HAAR = DetectorInfo(
    name="haar",
    description="OpenCV's frontal-face Haar cascade (the seed's detector): no download, frontal faces only",
    needs="OpenCV 4.x (OpenCV 5 ships no cascades)",
    module="edge_runtime.detectors.haar",
    class_name="HaarDetector",
    model_file=None,
    detect_scale=0.5,
    # Photos keep the seed-era cascade's behaviour: a 640 px search gains little and
    # unevenly, and adds detections that match no face (docs/performance.md, "Photos: how
    # large a copy is searched").
    photo_side=None,
    min_size=60,
    # A Haar box of a FER face already frames it as FER-2013 does (docs/edge-run.md, "Crops
    # that match the model").
    crop=CropMapping(scale=1.0, square=True),
    landmarks=False,
    # cascade: a cascade XML instead of OpenCV's frontal-face default (None). A pyramid step
    # of 1.2 and 5 neighbours are the seed's settings.
    options={"cascade": None, "scale_factor": 1.2, "min_neighbors": 5},
)

DETECTORS: tuple[DetectorInfo, ...] = (YUNET, HAAR)

DETECTOR_NAMES = tuple(row.name for row in DETECTORS)
# `auto` tries the rows in table order and takes the first that can run here.
AUTO_ORDER = DETECTOR_NAMES


def owner_of(setting: str) -> DetectorInfo | None:
    """The row that declares `setting` as its own option, or None for a setting every detector reads."""
    return next((row for row in DETECTORS if setting in row.options), None)


def defaults_text(field: str) -> str:
    """The rows' defaults for a `DetectorSettings` field, for help texts: "yunet 24, haar 60";
    one value when every row has the same."""
    rows = [row for row in DETECTORS if field in row.options or hasattr(row, field)]
    values = {row.default(field) for row in rows}
    if len(values) == 1:
        return f"{values.pop():g}"
    return ", ".join(f"{row.name} {row.default(field):g}" for row in rows)


def get_detector_info(name: str) -> DetectorInfo:
    """Returns the DETECTORS row called `name`.

    Raises:
        DetectorError: naming the choices and the closest one.
    """
    from edge_runtime.detectors.base import DetectorError

    try:
        return find_row(DETECTORS, name, "detector", ("auto", *DETECTOR_NAMES))
    except ValueError as error:
        raise DetectorError(str(error)) from None
