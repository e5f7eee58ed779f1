"""One line from a library's exception, for the one-line error messages every command prints."""

from __future__ import annotations

import errno
import re
import sys

# Long enough for a file name and a reason, short enough for one terminal line beside our text.
FIRST_LINE_LIMIT = 160
# Why a write failed, in the words a user acts on; other errors keep the system's wording.
WRITE_FAILURES = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


def first_line(error: BaseException, limit: int = FIRST_LINE_LIMIT, default: str | None = None) -> str:
    """The first non-empty line of `error`'s message, at most `limit` characters.

    Libraries (Keras, ONNX Runtime, LiteRT, tf2onnx) raise messages of many lines with a
    traceback of their own; the first line names the problem.

    Args:
        error: the exception.
        limit: the most characters returned.
        default: returned when the message is empty (None: the exception's type name).
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__ if default is None else default
    return lines[0][:limit]


def first_sentences(error: BaseException, limit: int = FIRST_LINE_LIMIT, default: str | None = None) -> str:
    """The whole sentences of `error`'s first line that fit in `limit` characters.

    Some libraries (Keras) write a paragraph on one line; cut at a fixed length it ends
    mid-sentence ("... and thus it is "). A first sentence longer than `limit` is cut after
    a word and ends in "...".

    Args:
        error: the exception.
        limit: the most characters returned.
        default: as `first_line`.
    """
    line = first_line(error, limit=sys.maxsize, default=default)
    if len(line) <= limit:
        return line
    kept = ""
    for sentence in re.split(r"(?<=[.!?])\s+", line):
        longer = f"{kept} {sentence}" if kept else sentence
        if len(longer) > limit:
            break
        kept = longer
    return kept or line[: limit - 3].rsplit(" ", 1)[0] + "..."


def os_error_reason(error: OSError) -> str:
    """A few words for why a file operation failed: "disk full" for ENOSPC, "disk quota
    exceeded" for EDQUOT, else the system's text (e.g. "Permission denied")."""
    return WRITE_FAILURES.get(error.errno) or error.strerror or first_line(error)
