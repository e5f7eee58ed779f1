"""The job's manifest: which videos are done, so a rerun of the same command skips them.

A video counts as done only with the same bytes (size and modification time), the same model
file (its SHA-256) and the same settings as the run that finished it; anything else, and every
video that failed, is processed again. The manifest is rewritten atomically after each video,
so an interrupted job loses at most the videos in flight.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_runtime.outputs.atomic import write_json_atomic
from edge_runtime.sources.base import SourceError
from edge_runtime.video_job.discover import Video

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


class Manifest:
    """The done and failed videos of the job in one --out folder."""

    def __init__(self, out: Path, model_sha256: str, settings: dict) -> None:
        self.path = out / MANIFEST_NAME
        self.model_sha256, self.settings = model_sha256, settings
        self.videos: dict[str, dict] = {}
        if self.path.exists():
            self.videos = _read(self.path)

    def is_done(self, video: Video) -> bool:
        entry = self.videos.get(video.name)
        return bool(entry) and entry.get("status") == "done" and entry == self._entry(video, "done")

    def record(self, video: Video, status: str, reason: str = "") -> None:
        """Marks a video done or failed and writes the manifest."""
        self.videos[video.name] = self._entry(video, status, reason)
        write_json_atomic(self.path, {"version": MANIFEST_VERSION, "videos": dict(sorted(self.videos.items()))})

    def _entry(self, video: Video, status: str, reason: str = "") -> dict:
        entry = {"status": status, "size": video.size, "mtime_ns": video.mtime_ns, "model_sha256": self.model_sha256,
                 "settings": self.settings}
        if reason:
            entry["reason"] = reason
        return entry


def _read(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SourceError(f"{path}: not a readable job manifest ({error}); move it away to start the job afresh") from None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise SourceError(f"{path}: not a job manifest of this version (expected an object with version {MANIFEST_VERSION})")
    videos = data.get("videos")
    if not isinstance(videos, dict) or not all(isinstance(entry, dict) for entry in videos.values()):
        raise SourceError(f"{path}: not a job manifest (expected an object of videos)")
    return videos
