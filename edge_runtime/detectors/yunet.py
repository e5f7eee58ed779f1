"""YuNet (OpenCV Zoo), OpenCV's built-in CNN face detector: boxes, scores and five landmarks.

It runs through `cv2.FaceDetectorYN` (OpenCV 4.8 and later, no extra package) on a 230 KB ONNX
file. At half resolution it takes about 6 ms for a 640x480 frame on two small x86 cores and
finds tilted and turned faces that the Haar cascade misses.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.detectors.base import Detection, DetectorError, check_settings, scale_box, shrink_for_detection
from edge_runtime.detectors.table import YUNET
from edge_runtime.model_files.onnx_props import WireFormatError, graph_io_names
from edge_runtime.preprocess import to_bgr

DEFAULT_NMS_THRESHOLD = 0.3
TOP_K = 5000
# Smaller inputs give the network nothing to look at (its coarsest stride is 32 px) and
# non-finite boxes back.
MIN_INPUT_SIDE = 16
# The outputs cv2.FaceDetectorYN reads by name: scores, objectness, boxes and landmarks at
# strides 8, 16 and 32.
YUNET_OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in (8, 16, 32))


def _check_graph(path: Path) -> None:
    """Refuses an ONNX file that is not YuNet before OpenCV builds it: OpenCV would fail on the
    first layer that disagrees with YuNet's shapes, after some 80 lines of its own log.

    Raises:
        DetectorError: naming the file, the inputs and outputs it has and those YuNet has.
    """
    try:
        inputs, outputs = graph_io_names(path.read_bytes())
    except OSError as error:
        raise DetectorError(f"{path}: cannot be read ({error.strerror})") from None
    except WireFormatError:
        return  # not ONNX at all: OpenCV's load fails and says so below
    if len(inputs) != 1 or any(name not in outputs for name in YUNET_OUTPUTS):
        raise DetectorError(
            f"{path}: not a YuNet face detector (inputs {_listed(inputs)}; outputs {_listed(outputs)}); "
            "expected one image input and the outputs cls_8, cls_16, cls_32, obj_*, bbox_*, kps_*"
        )


def _listed(names: list[str], shown: int = 4) -> str:
    # A graph may have hundreds of outputs; a few name it well enough on one line.
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (", ".join(names[:shown]) or "none") + more


class YuNetDetector:
    """Finds faces with YuNet.

    Settings left None take their defaults from the detector's table row (`table.YUNET`).

    Args:
        model_path: the YuNet ONNX file (see `edge_runtime.detectors.downloads.resolve`).
        score_threshold: least face score to report.
        min_size: smallest face side to report, in source pixels.
        detect_scale: YuNet runs on a copy resized by this factor (at most 1).
        nms_threshold: IoU above which overlapping boxes are merged.

    Raises:
        DetectorError: for a missing or unreadable model file or an out-of-range setting.
    """

    name = YUNET.name  # its row names it

    def __init__(
        self,
        model_path: str | os.PathLike,
        score_threshold: float | None = None,
        min_size: int | None = None,
        detect_scale: float | None = None,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
    ) -> None:
        settings = YUNET.filled(score_threshold=score_threshold, min_size=min_size, detect_scale=detect_scale)
        score_threshold, min_size, detect_scale = settings.values()
        check_settings(score_threshold=score_threshold, min_size=min_size, detect_scale=detect_scale)
        if not 0.0 < nms_threshold <= 1.0:
            raise DetectorError(f"nms_threshold {nms_threshold}: expected a fraction in (0, 1]")
        path = Path(model_path)
        if not path.is_file():
            raise DetectorError(f"{path}: no such YuNet model file")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; install 'opencv-python-headless>=4.8,<5'")
        _check_graph(path)
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 240), float(score_threshold), float(nms_threshold), TOP_K)
        except cv2.error:
            raise DetectorError(f"{path}: not a YuNet ONNX model OpenCV can load (damaged or another file)") from None
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.min_size = int(min_size)
        self.detect_scale = float(detect_scale)
        self._input_size: tuple[int, int] = (320, 240)

    @classmethod
    def from_settings(cls, row, settings) -> YuNetDetector:
        """The detector a table row and a `DetectorSettings` describe (see `DetectorInfo.build`):
        the model file given, else the row's verified download.

        Raises:
            DetectorError: the file is missing and cannot be fetched, or a setting is invalid.
        """
        from edge_runtime.detectors import downloads

        path = downloads.resolve(row.model_file, settings.model, download=settings.download)
        # None fields take the row's defaults in __init__, the one place they are filled in.
        return cls(path, score_threshold=settings.score_threshold, min_size=settings.min_size, detect_scale=settings.detect_scale)

    def detect(self, frame: np.ndarray, scale: float | None = None) -> list[Detection]:
        """Faces in the source frame's pixels, left to right, with scores and landmarks.

        Args:
            frame: a gray, BGR or BGRA image of any size.
            scale: the factor of the copy searched, (0, 1], for this frame only (None: `detect_scale`).
        """
        image = to_bgr(frame, copy=False)  # YuNet takes 3-channel 8-bit images only
        height, width = image.shape[:2]
        small, scale_x, scale_y = shrink_for_detection(image, self.detect_scale if scale is None else scale)
        if min(small.shape[:2]) < MIN_INPUT_SIDE:
            return []
        size = (small.shape[1], small.shape[0])
        if size != self._input_size:
            self.net.setInputSize(size)
            self._input_size = size
        _, found = self.net.detect(small)
        if found is None:
            return []
        detections = []
        for row in np.asarray(found, dtype=np.float32).reshape(-1, 15):
            if not np.isfinite(row).all():
                continue
            box = scale_box(row[:4], scale_x, scale_y, width, height)
            if box[2] < self.min_size and box[3] < self.min_size or box[2] <= 0 or box[3] <= 0:
                continue
            points = tuple((float(row[4 + 2 * i] * scale_x), float(row[5 + 2 * i] * scale_y)) for i in range(5))
            detections.append(Detection(box, float(row[14]), points))
        return sorted(detections, key=lambda d: (d.box[0], d.box[1]))
