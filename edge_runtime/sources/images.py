"""Image files read whole: a JPEG or PNG cut short is refused, not decoded.

OpenCV decodes a truncated JPEG without an error, filling the missing rows with grey: a face
classified from such a file, or trained on, is partly made up. So a JPEG must end with its
end-of-image marker and a PNG with its IEND chunk before it is decoded. `edge-run`'s image
sources and `edge-train`'s folder layout both read through here.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"  # IEND chunk: type and CRC


def incomplete_image(data: bytes) -> str | None:
    """Why the bytes of a JPEG or PNG file are not a whole image, or None."""
    if not data:
        return "empty file"
    # Some writers pad a file after its last marker; padding is not missing data.
    end = data.rstrip(b"\x00\r\n\t ")
    if data.startswith(JPEG_START) and not end.endswith(JPEG_END):
        return "truncated JPEG: no end-of-image marker (FF D9) at its end"
    if data.startswith(PNG_SIGNATURE) and not end.endswith(PNG_END):
        return "truncated PNG: no IEND chunk at its end"
    return None


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str]:
    """Decodes an image file that is whole.

    Returns:
        (image, ""), or (None, why) with why one phrase: cannot be read, incomplete (see
        `incomplete_image`), or not an image OpenCV decodes.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return None, f"cannot be read ({error.strerror})"
    problem = incomplete_image(data)
    if problem:
        return None, problem
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        return None, "not an image OpenCV can decode"
    return image, ""
