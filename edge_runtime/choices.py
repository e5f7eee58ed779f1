"""The choice enums of the command lines, made from the tables.

typer wants an `Enum` for a closed set of choices (it then writes the "not one of ..." error);
every command builds its enums here from a table's names, so a new row is a new choice in
`edge-run`, `edge-bench`, `edge-convert` and `edge-train` alike, and no command keeps a list
of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from edge_runtime.detectors.table import DETECTOR_NAMES
from edge_runtime.model_files.formats import BACKEND_NAMES

# The choice that lets the runtime pick a row (by the model's suffix, or the first detector
# that runs here).
AUTO = "auto"


def choice_enum(name: str, values: Iterable[str]) -> type[Enum]:
    """A str Enum whose values are `values`, in order, for a typer option or argument.

    Member names are the values with "-" as "_" (`tflite-int8` -> `tflite_int8`), so that
    code can write `Choice.tflite_int8`; users only ever see the values.

    Raises:
        ValueError: when `values` is empty or names a value twice.
    """
    values = tuple(values)
    if not values or len(set(values)) != len(values):
        raise ValueError(f"choice_enum {name}: expected distinct values, got {values!r}")
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


BackendChoice = choice_enum("BackendChoice", (AUTO, *BACKEND_NAMES))
DetectorChoice = choice_enum("DetectorChoice", (AUTO, *DETECTOR_NAMES))
