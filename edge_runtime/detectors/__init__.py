"""Face detectors: one small class per detector behind one method, `detect(frame) -> [Detection]`.

`load_detector` reads the DETECTORS table (`table.py`) and imports a detector's module only
when it is chosen. `auto` takes YuNet where its file is in the cache or can be fetched, and
otherwise the Haar cascade, with a note that says why.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.detectors import model_files
from edge_runtime.detectors.base import Box, Detection, DetectorError, as_detection, check_settings, iou
from edge_runtime.detectors.haar import DEFAULT_MIN_NEIGHBORS, DEFAULT_SCALE_FACTOR
from edge_runtime.detectors.table import AUTO_ORDER, DETECTOR_NAMES, DETECTORS, CropMapping, DetectorInfo, get_detector_info

__all__ = [
    "AUTO_ORDER",
    "DETECTORS",
    "DETECTOR_NAMES",
    "Box",
    "ChosenDetector",
    "CropMapping",
    "Detection",
    "DetectorError",
    "DetectorFallbackWarning",
    "DetectorInfo",
    "DetectorSettings",
    "as_detection",
    "get_detector_info",
    "iou",
    "load_detector",
]


class DetectorFallbackWarning(UserWarning):
    """`auto` runs another detector than its first choice (YuNet's file is missing and cannot
    be fetched); the message says why and how to install the file by hand."""


@dataclass(frozen=True)
class DetectorSettings:
    """How faces are found; None fields take the chosen detector's defaults from its table row.

    Attributes:
        name: "auto", or a DETECTORS name ("yunet", "haar").
        model: the detector's model file instead of the cached download (YuNet).
        cascade: a Haar cascade XML instead of OpenCV's frontal-face default (implies Haar under auto).
        detect_scale: the detector runs on a copy resized by this factor (at most 1).
        min_size: smallest face side, in source pixels.
        score_threshold: least face score (YuNet).
        scale_factor, min_neighbors: Haar cascade settings.
        crop: how boxes map onto the model's crop; None: the detector's measured mapping.
        download: fetch a missing model file (False: use the cache only).

    Raises:
        DetectorError: (a ValueError) a number outside its bound in `edge_runtime.limits`
            (the bounds of the `edge-run` options), naming the field; settings of two detectors.
    """

    name: str = "auto"
    model: str | os.PathLike | None = None
    cascade: str | os.PathLike | None = None
    detect_scale: float | None = None
    min_size: int | None = None
    score_threshold: float | None = None
    scale_factor: float = DEFAULT_SCALE_FACTOR
    min_neighbors: int = DEFAULT_MIN_NEIGHBORS
    crop: CropMapping | None = None
    download: bool = True

    def __post_init__(self) -> None:
        if self.name != "auto":
            get_detector_info(self.name)  # an unknown name fails here, with the choices
        # A setting of the other detector would be ignored without a word: refuse it instead.
        if self.name == "yunet" and self.cascade is not None:
            raise DetectorError("--cascade is a Haar cascade setting; use it with --detector haar (or auto)")
        if self.name == "haar" and self.model is not None:
            raise DetectorError("--detector-model is a YuNet file; use it with --detector yunet (or auto)")
        if self.cascade is not None and self.model is not None:
            raise DetectorError("--cascade (Haar) and --detector-model (YuNet) name two detectors; pass one")
        check_settings(
            detect_scale=self.detect_scale,
            min_size=self.min_size,
            score_threshold=self.score_threshold,
            scale_factor=self.scale_factor,
            min_neighbors=self.min_neighbors,
        )


@dataclass
class ChosenDetector:
    """The detector a run uses: the object, its table row, its crop mapping, for `auto` the
    reason another detector was not taken (empty when the first choice ran), the class name
    of a detector passed in by the caller, and the longer side photos are searched at (None:
    the detector's own scale, see `DetectorInfo.photo_side`)."""

    detector: object
    info: DetectorInfo
    crop: CropMapping
    note: str = ""
    custom_name: str = ""
    photo_side: int | None = None

    @property
    def name(self) -> str:
        return self.custom_name or self.info.name


def _build(info: DetectorInfo, settings: DetectorSettings):
    module = importlib.import_module(info.module)
    cls = getattr(module, info.class_name)
    detect_scale = settings.detect_scale if settings.detect_scale is not None else info.detect_scale
    min_size = settings.min_size if settings.min_size is not None else info.min_size
    if info.name == "haar":
        return cls(settings.cascade, settings.scale_factor, settings.min_neighbors, min_size, detect_scale)
    path = model_files.resolve(info.model_file, settings.model, download=settings.download)
    score = settings.score_threshold if settings.score_threshold is not None else info.score_threshold
    return cls(path, score_threshold=score, min_size=min_size, detect_scale=detect_scale)


def _chosen(info: DetectorInfo, settings: DetectorSettings, note: str = "") -> ChosenDetector:
    # A detection scale the user chose applies to photos too.
    photo_side = info.photo_side if settings.detect_scale is None else None
    return ChosenDetector(_build(info, settings), info, settings.crop or info.crop, note, photo_side=photo_side)


def load_detector(settings: DetectorSettings | None = None) -> ChosenDetector:
    """Builds the detector `settings` names; `auto` falls back from YuNet to Haar.

    Under `auto`, a `cascade` means Haar and a `model` means YuNet. Otherwise YuNet is taken
    when its file is in the cache or downloads (a failed download is not retried for a day:
    see `model_files`), else Haar: `ChosenDetector.note` says why, and so does one
    DetectorFallbackWarning (a caller that reports the note itself can filter it out).

    Raises:
        DetectorError: one line naming the file or setting and the fix.
    """
    settings = settings or DetectorSettings()
    if settings.name != "auto":
        return _chosen(get_detector_info(settings.name), settings)
    if settings.cascade is not None:
        return _chosen(get_detector_info("haar"), settings)
    if settings.model is not None:
        return _chosen(get_detector_info("yunet"), settings)
    reasons = []
    for name in AUTO_ORDER:
        info = get_detector_info(name)
        skip = _skip_reason(info, settings)
        if skip:
            reasons.append(skip)
            continue
        try:
            chosen = _chosen(info, settings, "; ".join(reasons))
        except DetectorError as error:
            reasons.append(f"{info.name} unavailable: {error}")
            continue
        if chosen.note:
            warnings.warn(f"face detector {chosen.name}: {chosen.note}", DetectorFallbackWarning, stacklevel=2)
        return chosen
    raise DetectorError("no face detector can run here: " + "; ".join(reasons))


def _skip_reason(info: DetectorInfo, settings: DetectorSettings) -> str:
    """Why `auto` should not even try `info` now (a recent failed download), or ""."""
    if info.model_file is None or model_files.cached_path(info.model_file).is_file():
        return ""
    hint = model_files.manual_copy_hint(info.model_file)
    if not settings.download:
        return f"{info.name} unavailable: {info.model_file.file_name} is not in {model_files.cache_dir()}; {hint}"
    failure = model_files.recent_failure(info.model_file)
    if failure:
        return f"{info.name} unavailable: an earlier download failed ({failure}); 'edge-run --fetch-models' retries, or {hint}"
    return ""


def fetch_all(detectors: tuple[str, ...] | None = None) -> list[Path]:
    """Downloads and verifies every detector file (for a device that will run offline).

    Raises:
        DetectorError: for the first file that cannot be fetched.
    """
    paths = []
    for info in DETECTORS:
        if info.model_file is None or (detectors and info.name not in detectors):
            continue
        cached = model_files.cached_path(info.model_file)
        if cached.is_file():
            try:
                model_files.verify(cached, info.model_file)
                paths.append(cached)
                continue
            except DetectorError:
                pass  # a damaged copy is replaced by a verified download
        paths.append(model_files.fetch(info.model_file))
    return paths
