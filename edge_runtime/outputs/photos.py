"""`--save-images DIR`: the annotated copy of each input photo, under the photo's own name."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.outputs.atomic import atomic_path
from edge_runtime.outputs.paths import write_failure
from edge_runtime.outputs.writers import OutputError


class AnnotatedImages:
    """Writes each annotated photo of an image source into `folder`.

    Args:
        folder: where the copies go (created when missing).
        source: the image source being run (its `current` names each photo).

    Raises:
        OutputError: for a source that is not images, a folder that is a file, or the
            folder the photos come from (the copies would replace the photos).
    """

    def __init__(self, folder: str | os.PathLike, source) -> None:
        self.folder = Path(folder)
        if not getattr(source, "is_photo", False):
            raise OutputError(f"--save-images {self.folder}: only for image and folder sources; for video use --save-video")
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputError(f"--save-images {self.folder}: is not a folder")
        inputs = {path.resolve().parent for path in source.paths}
        if self.folder.resolve() in inputs:
            raise OutputError(f"--save-images {self.folder}: is the folder the photos come from; choose another folder")
        self._source = source
        self.written = 0

    def write(self, annotated: np.ndarray) -> Path:
        """Writes the annotated copy of the photo the source yielded last.

        Raises:
            OutputError: when the file cannot be written.
        """
        current = Path(self._source.current)
        target = self.folder / current.name
        # Encoded here and written by us: cv2.imwrite only answers False, never why (a full
        # disk and an unknown format look the same).
        try:
            encoded, image = cv2.imencode(target.suffix, annotated)
        except cv2.error:
            encoded = False
        if not encoded:
            raise OutputError(f"--save-images {target}: OpenCV cannot write the '{target.suffix}' image format")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a run stopped mid-write leaves no half image.
            with atomic_path(target) as tmp:
                tmp.write_bytes(image.tobytes())
        except OSError as error:
            raise OutputError(f"--save-images {target}: {write_failure(error)}") from None
        self.written += 1
        return target
