"""The job's progress bar on standard error: videos and frames done, with the time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class JobProgress:
    """Two bars, videos and frames; the estimate of the time left follows the frames."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    def start(self, videos: int, frames: int) -> None:
        self._progress = Progress(TextColumn("{task.description:>7}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                                  TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console)
        self._videos = self._progress.add_task("videos", total=videos)
        self._frames = self._progress.add_task("frames", total=frames)
        self._progress.start()

    def advance(self, videos: int, frames: int) -> None:
        if self._progress is None:
            return
        if videos:
            self._progress.advance(self._videos, videos)
        if frames:
            self._progress.advance(self._frames, frames)

    def stop(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.stop()
