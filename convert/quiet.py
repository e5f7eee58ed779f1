"""Keeps TensorFlow's, the TFLite converter's and LiteRT's native chatter out of the CLI's output.

Those libraries print from C++ straight to file descriptor 2 ("fully_quantize: 0, ...",
"Created TensorFlow Lite XNNPACK delegate"), past Python's `sys.stderr`; only redirecting the
descriptor itself hides it. Errors still surface: they come back as Python exceptions, which the
exporters turn into one-line messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 to a scratch file while the block runs, then restores it."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # No real descriptor 2 (an embedding host): nothing to hide.
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def logger_quieted(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raises a library logger's threshold to `level` while the block runs."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
