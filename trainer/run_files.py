"""Reading back a run folder's own JSON files (config.json, state.json) for --resume.

A copy cut short, a file edited by hand or one from another program must stop the resume with
one line naming the file and what was expected, before anything trains on a wrong value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

# What a field may hold, by the words the error message uses for it. JSON has no tuples
# (a list stands for one), and a boolean is no number, although Python calls it an int.
JSON_KINDS: dict[str, Callable[[object], bool]] = {
    "a string": lambda value: isinstance(value, str),
    "a string or null": lambda value: value is None or isinstance(value, str),
    "an integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "an integer >= 0": lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
    "a number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "true or false": lambda value: isinstance(value, bool),
    "a list": lambda value: isinstance(value, list),
    "a list of strings": lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value),
    "a list of objects": lambda value: isinstance(value, list) and all(isinstance(item, dict) for item in value),
    "an object": lambda value: isinstance(value, dict),
}

# state.json: the progress `trainer.train` writes after every epoch. The others it may hold
# ("random_states", "plateau") are checked when present.
STATE_FIELDS = {
    "epochs_done": "an integer >= 0",
    "best_epoch": "an integer >= 0",
    "best_val_accuracy": "a number",
    "history": "a list of objects",
    "train_seconds": "a number",
}
OPTIONAL_STATE_FIELDS = {"random_states": "a list", "plateau": "an object"}
# state.json's "plateau": the counters of the plateau schedule (`trainer.optimizers`).
PLATEAU_FIELDS = {"best": "a number", "wait": "an integer >= 0", "cooldown": "an integer >= 0"}


class RunFileError(ValueError):
    """A run folder's file that cannot be read back; the message names the file and what was expected."""


def read_json_object(path: Path, holding: str) -> dict:
    """The JSON object in `path`.

    Args:
        path: the file.
        holding: what the object holds, for the messages ("the run's settings").

    Raises:
        RunFileError: an unreadable file, not JSON (damaged, truncated), or JSON that is no object.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RunFileError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not text; expected a JSON object holding {holding} (a damaged copy?)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunFileError(
            f"{path}: not valid JSON ({error.msg}: line {error.lineno} column {error.colno}); expected an object holding {holding} "
            "(a damaged or truncated copy?)"
        ) from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: a JSON {_kind_of(data)}; expected an object holding {holding}")
    return data


def check_fields(
    path: Path, data: dict, required: dict[str, str], optional: dict[str, str] | None = None, within: str = ""
) -> None:
    """Checks that `data` holds every `required` field and that each field present is of its kind.

    Args:
        path: the file `data` came from, for the messages.
        data: the object read from it.
        required, optional: field name -> a kind from `JSON_KINDS`.
        within: the name of the object holding `data` inside the file, for the messages ("" at the top).

    Raises:
        RunFileError: naming the file, the first missing or wrong field, and what was expected.
    """
    for name, kind in required.items():
        if name not in data:
            raise RunFileError(f"{path}: '{within}{name}' is missing; expected {kind}, as edge-train writes it")
    for name, kind in {**required, **(optional or {})}.items():
        if name in data and not JSON_KINDS[kind](data[name]):
            shown = json.dumps(data[name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise RunFileError(f"{path}: '{within}{name}' is {shown}; expected {kind}")


def read_state(path: Path) -> dict:
    """A run's progress, state.json, checked field by field.

    Raises:
        RunFileError: naming the file and what was expected.
    """
    state = read_json_object(path, "the run's progress (epochs_done, best_epoch, history, ...)")
    check_fields(path, state, STATE_FIELDS, OPTIONAL_STATE_FIELDS)
    if "plateau" in state:
        check_fields(path, state["plateau"], PLATEAU_FIELDS, within="plateau.")
    return state


def _kind_of(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"
