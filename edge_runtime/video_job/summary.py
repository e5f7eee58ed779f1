"""What a video's records add up to, per track and for the whole video.

Only what the video and the model determine goes here (no timings, no dates), so two runs over
the same videos with the same model and settings give the same summary, byte for byte.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field

from edge_runtime.labels import LABELS

ALL_TRACKS = "all"  # the track column of a video's own row
SUMMARY_COLUMNS = ("video", "track", "frames", "first_s", "last_s", "dominant", "mean_confidence",
                   *(f"share_{label}" for label in LABELS))


@dataclass
class TrackStats:
    """Counts over the records of one track (or of a whole video)."""

    frames: int = 0
    first_s: float | None = None
    last_s: float | None = None
    labels: Counter = field(default_factory=Counter)
    confidence_sum: float = 0.0

    def add(self, record: dict) -> None:
        self.frames += 1
        time_s = record.get("time")
        if time_s is not None:
            self.first_s = time_s if self.first_s is None else min(self.first_s, time_s)
            self.last_s = time_s if self.last_s is None else max(self.last_s, time_s)
        label = record.get("label")
        if label is not None:  # a face the model gave no valid answer for has no label
            self.labels[label] += 1
            self.confidence_sum += float(record["confidence"])

    def row(self, video: str, track: str) -> dict:
        labelled = sum(self.labels.values())
        # Ties go to the label first in the model's order, so the result never depends on the
        # order records arrived in.
        dominant = max(LABELS, key=lambda label: (self.labels[label], -LABELS.index(label))) if labelled else ""
        return {
            "video": video,
            "track": track,
            "frames": self.frames,
            "first_s": _round(self.first_s),
            "last_s": _round(self.last_s),
            "dominant": dominant,
            "mean_confidence": round(self.confidence_sum / labelled, 4) if labelled else "",
            **{f"share_{label}": round(self.labels[label] / labelled, 4) if labelled else "" for label in LABELS},
        }


class VideoSummary:
    """Per-track and whole-video statistics of one video, fed record by record."""

    def __init__(self, video: str) -> None:
        self.video = video
        self.faces = TrackStats()
        self.tracks: dict[int, TrackStats] = {}

    def add(self, record: dict) -> None:
        self.faces.add(record)
        self.tracks.setdefault(int(record["track_id"]), TrackStats()).add(record)

    def rows(self, frames: int) -> list[dict]:
        """The video's row (track `all`: its `frames` processed, shares over every face
        record), then one row per track by id (frames: the frames the track was seen in)."""
        rows = [{**self.faces.row(self.video, ALL_TRACKS), "frames": frames}]
        rows += [self.tracks[track].row(self.video, str(track)) for track in sorted(self.tracks)]
        return rows

    def to_dict(self, frames: int, fps: float, unreadable: int, chunks: int) -> dict:
        """The video's summary.json."""
        return {"video": self.video, "frames": frames, "fps": fps, "unreadable_frames": unreadable, "chunks": chunks,
                "faces": self.faces.frames, "tracks": len(self.tracks), "rows": self.rows(frames)}


def summary_csv(rows: list[dict]) -> str:
    """The job's summary.csv text: every video's rows, in video name order."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _round(value: float | None):
    return "" if value is None else round(float(value), 4)
