"""Face detectors: one small class per detector behind one method, `detect(frame) -> [Detection]`.

`load_detector` reads the DETECTORS table (`table.py`) and imports a detector's module only
when it is chosen. `auto` takes YuNet where its file is in the cache or can be fetched, and
otherwise the Haar cascade, with a note that says why.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

from edge_runtime.detectors import downloads
from edge_runtime.detectors.base import Box, Detection, DetectorError, as_detection, check_settings, iou
from edge_runtime.detectors.table import (
    AUTO_ORDER,
    DETECTOR_NAMES,
    DETECTORS,
    CropMapping,
    DetectorInfo,
    get_detector_info,
    owner_of,
)

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
        cascade: a Haar cascade XML instead of OpenCV's frontal-face default (Haar).
        detect_scale: the detector runs on a copy resized by this factor (at most 1).
        min_size: smallest face side, in source pixels.
        score_threshold: least face score (YuNet).
        scale_factor, min_neighbors: Haar cascade settings.
        crop: how boxes map onto the model's crop; None: the detector's measured mapping.
        download: fetch a missing model file (False: use the cache only).

    A field a row declares in its `options` belongs to that detector: given with another
    detector it is refused, and under `auto` it chooses its detector.

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
    scale_factor: float | None = None
    min_neighbors: int | None = None
    crop: CropMapping | None = None
    download: bool = True

    def __post_init__(self) -> None:
        if self.name != "auto":
            get_detector_info(self.name)  # an unknown name fails here, with the choices
        # A setting of another detector would be ignored without a word: refuse it instead.
        owners = {field: owner_of(field) for field in self.given()}
        named = {row.name for row in owners.values() if row is not None}
        if len(named) > 1:
            settings = ", ".join(f"{field} ({row.name})" for field, row in owners.items() if row is not None)
            raise DetectorError(f"{settings} name {len(named)} detectors; pass the settings of one")
        for field, row in owners.items():
            if row is not None and self.name not in ("auto", row.name):
                raise DetectorError(f"{field} is a {row.name} setting, not a {self.name} one; use it with detector {row.name} (or auto)")
        check_settings(
            detect_scale=self.detect_scale,
            min_size=self.min_size,
            score_threshold=self.score_threshold,
            scale_factor=self.scale_factor,
            min_neighbors=self.min_neighbors,
        )

    def given(self) -> list[str]:
        """The fields set to something other than None (the detector's defaults)."""
        return [field.name for field in fields(self) if field.default is None and getattr(self, field.name) is not None]

    def chosen_row(self) -> DetectorInfo | None:
        """The row `name` names, or under `auto` the row whose own option is set; None when `auto` is free to choose."""
        if self.name != "auto":
            return get_detector_info(self.name)
        return next((owner_of(field) for field in self.given() if owner_of(field) is not None), None)


@dataclass
class ChosenDetector:
    """The detector a run uses: the object, its table row, its crop mapping, for `auto` the
    reason another detector was not taken (empty when the first choice ran), the class name
    of a detector passed in by the caller, and the longer side photos are searched at (None:
    the detector's own scale, see `DetectorInfo.photo_side`)."""

    detector: object
    info: DetectorInfo | None  # None for a detector passed in by the caller
    crop: CropMapping
    note: str = ""
    custom_name: str = ""
    photo_side: int | None = None

    @property
    def name(self) -> str:
        return self.custom_name or self.info.name


def _chosen(info: DetectorInfo, settings: DetectorSettings, note: str = "") -> ChosenDetector:
    # A detection scale the user chose applies to photos too.
    photo_side = info.photo_side if settings.detect_scale is None else None
    return ChosenDetector(info.build(settings), info, settings.crop or info.crop, note, photo_side=photo_side)


def load_detector(settings: DetectorSettings | None = None) -> ChosenDetector:
    """Builds the detector `settings` names; `auto` falls back from YuNet to Haar.

    Under `auto`, a setting only one detector reads (see `DetectorInfo.options`: a `cascade`
    means Haar, a `model` YuNet) chooses that detector. Otherwise YuNet is taken
    when its file is in the cache or downloads (a failed download is not retried for a day:
    see `model_files`), else Haar: `ChosenDetector.note` says why, and so does one
    DetectorFallbackWarning (a caller that reports the note itself can filter it out).

    Raises:
        DetectorError: one line naming the file or setting and the fix.
    """
    settings = settings or DetectorSettings()
    row = settings.chosen_row()
    if row is not None:
        return _chosen(row, settings)
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
    if info.model_file is None or downloads.cached_path(info.model_file).is_file():
        return ""
    hint = downloads.manual_copy_hint(info.model_file)
    if not settings.download:
        return f"{info.name} unavailable: {info.model_file.file_name} is not in {downloads.cache_dir()}; {hint}"
    failure = downloads.recent_failure(info.model_file)
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
        cached = downloads.cached_path(info.model_file)
        if cached.is_file():
            try:
                downloads.verify(cached, info.model_file)
                paths.append(cached)
                continue
            except DetectorError:
                pass  # a damaged copy is replaced by a verified download
        paths.append(downloads.fetch(info.model_file))
    return paths
