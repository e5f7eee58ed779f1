"""The one label list, and how every known source of labels maps onto it.

Training, export and the runtime all index probabilities by `LABELS`. Every other naming
(the FER-2013 CSV codes, the folder layout, the seed project's folders) is translated here,
explicitly, so no module ever relies on an alphabetical or positional coincidence.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(LABELS)

# fer2013.csv `emotion` column: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
# Note 4 and 6: the CSV order is not the alphabetical order of LABELS.
FER_CSV_CODE_TO_LABEL: dict[int, str] = {
    0: "angry",
    1: "disgust",
    2: "fear",
    3: "happy",
    4: "sad",
    5: "surprise",
    6: "neutral",
}

# Folder names, compared case-insensitively: the common FER-2013 folder layout uses LABELS
# themselves; the seed project's `dataset_prepare.py` wrote these longer names.
FOLDER_NAME_TO_LABEL: dict[str, str] = {
    **{label: label for label in LABELS},
    "disgusted": "disgust",
    "fearful": "fear",
    "surprised": "surprise",
}


def label_index(label: str) -> int:
    """Returns the position of `label` in LABELS.

    Raises:
        ValueError: if `label` is not one of LABELS.
    """
    try:
        return LABELS.index(label)
    except ValueError:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}") from None


def csv_code_to_index(code: int) -> int:
    """Maps a fer2013.csv `emotion` code (0-6) to its index in LABELS.

    Raises:
        ValueError: if the code is not 0-6.
    """
    if code not in FER_CSV_CODE_TO_LABEL:
        raise ValueError(f"emotion code {code} is out of range; expected an integer 0-6")
    return LABELS.index(FER_CSV_CODE_TO_LABEL[code])


def folder_to_index(folder_name: str) -> int | None:
    """Maps a class folder name (any case, FER-2013 or seed naming) to its index, or None."""
    label = FOLDER_NAME_TO_LABEL.get(folder_name.lower())
    return None if label is None else LABELS.index(label)
