"""A video's timeline: each track's emotion over time, as stacked areas of its probabilities.

People would rather look than read: one row per track (the longest tracks first, at most
MAX_TRACKS), time across, the seven probabilities stacked to 1 in the label colours the live
display uses. Needs matplotlib (`pip install -e ".[plot]"`); importing this module without it
raises ImportError with that line, and the job goes on without timelines.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from edge_runtime.labels import LABELS
from edge_runtime.model_files.formats import install_hint
from edge_runtime.outputs.atomic import atomic_path
from edge_runtime.outputs.draw import LABEL_COLORS

try:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, also on a headless device
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - depends on what is installed
    raise ImportError(f"timeline.png needs matplotlib: {install_hint('plot')}") from None

MAX_TRACKS = 8
# Label colours as (R, G, B) in 0-1, from the overlay's BGR colours, so the chart reads like the video.
COLORS = {label: tuple(channel / 255 for channel in reversed(LABEL_COLORS[label])) for label in LABELS}


def draw_timeline(records: Path, target: Path, title: str) -> None:
    """Draws the timeline of a video's records (JSONL) into `target` (a PNG, written atomically)."""
    tracks: dict[int, list[dict]] = defaultdict(list)
    with open(records, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            tracks[int(record["track_id"])].append(record)
    longest = sorted(tracks, key=lambda track: (-len(tracks[track]), track))[:MAX_TRACKS]
    rows = max(1, len(longest))
    figure, axes = plt.subplots(rows, 1, figsize=(10, 1.4 * rows + 0.9), sharex=True, squeeze=False)
    for axis, track in zip(axes[:, 0], sorted(longest)):
        seen = tracks[track]
        times = [record["time"] if record["time"] is not None else record["frame"] for record in seen]
        stacks = [[(record.get("probabilities") or {}).get(label, 0.0) for record in seen] for label in LABELS]
        axis.stackplot(times, stacks, colors=[COLORS[label] for label in LABELS], labels=LABELS, linewidth=0)
        axis.set_ylim(0, 1)
        axis.set_yticks([])
        counts = {label: sum(record.get("label") == label for record in seen) for label in LABELS}
        dominant = max(LABELS, key=lambda label: counts[label])
        axis.set_ylabel(f"track {track}\n{dominant}", rotation=0, ha="right", va="center", fontsize=9)
    if not longest:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_yticks([])
    axes[-1, 0].set_xlabel("time (s)")
    shown = f"{len(longest)} of {len(tracks)} tracks" if len(tracks) > len(longest) else f"{len(tracks)} track(s)"
    figure.suptitle(f"{title}: {shown}", fontsize=11)
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="lower center", ncol=len(LABELS), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    with atomic_path(target) as temporary:
        figure.savefig(temporary, dpi=90)
    plt.close(figure)
