"""The one error type of the conversion library."""

from __future__ import annotations


class ConvertError(RuntimeError):
    """A conversion cannot start or finish; the message names the file or option and what was expected."""
