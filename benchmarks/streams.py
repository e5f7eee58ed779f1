"""`edge-bench streams`: how many camera-like sources one process keeps in real time.

Each source is a 640x480 video at 30 FPS made of `edge-bench scene` frames (PublicTest faces,
a new scene every second, at a moment of the second that differs from source to source unless
`--same-cuts`), played `--realtime` as a camera delivers frames, so a process that
falls behind drops frames rather than running late. For 1, 2, ... sources, the runtime's own
multi-source loop (`edge_runtime.pipeline.runner.run_many`: a reader thread per source, the faces of all
ready frames classified in one model call) runs them together; a count of sources is kept in
real time when under 1% of their frames are dropped. Then, at that count, the same sources are
run as fast as they decode, once with one model call per step for every source and once with a
call per source, which is the gain of batching across sources.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from benchmarks.environment import environment
from benchmarks.inputs import load_eval_split
from benchmarks.rows import ok_row
from fer_data.scenes import SceneSettings, build_scene

SOURCE_FPS = 30.0
REALTIME_DROP_SHARE = 0.01  # under 1% of frames dropped counts as keeping up


@dataclass(frozen=True)
class StreamsConfig:
    """What `edge-bench streams` measures."""

    data: Path
    max_sources: int = 8
    seconds: float = 20.0
    detect_every: int = 3
    detector: str = "yunet"
    detector_model: Path | None = None
    model: Path | None = None
    backend: str = "auto"
    threads: int | None = None
    staggered_cuts: bool = True


class PerSource:
    """The pipeline with one model call per source and step: what batching is measured against."""

    def __init__(self, detector) -> None:
        self.detector = detector

    def _track(self, frames, whole=False):
        return self._classify_found(self._track_search(frames, whole))

    def _track_search(self, frames, whole=False):
        return [self.detector._track_search([frame], whole) for frame in frames]

    def _classify_found(self, found):
        return [self.detector._classify_found(one)[0] for one in found]

    def __getattr__(self, name):
        return getattr(self.detector, name)


def run_streams(config: StreamsConfig, log=lambda line: None) -> dict:
    from edge_runtime.detectors import DetectorSettings
    from edge_runtime.pipeline.runner import RunConfig, build_detector, run_many
    from edge_runtime.settings import ModelSettings, PipelineSettings

    work = Path(tempfile.mkdtemp(prefix="edge-bench-streams-"))
    try:
        videos = _write_sources(config, work, log)
        base = RunConfig(source=str(videos[0]), model=ModelSettings(config.model, config.backend, config.threads),
                         detector=DetectorSettings(name=config.detector, model=config.detector_model),
                         pipeline=PipelineSettings(detect_every=config.detect_every), display=False, realtime=True)
        rows, kept = [], 0
        with build_detector(base) as detector:
            for count in range(1, config.max_sources + 1):
                # One source too goes through the multi-source loop: a reader thread, then the search
                # and classifying halves of `EmotionDetector._track`.
                summary = run_many(_sources(base, videos[:count]), detector=detector)
                offered = summary.frames + summary.dropped
                share = summary.dropped / offered if offered else 1.0
                realtime = share < REALTIME_DROP_SHARE
                kept = count if realtime and kept == count - 1 else kept
                rows.append(ok_row(f"{count} source(s), realtime", sources=count, fps=summary.fps, fps_per_source=summary.fps / count,
                                   dropped_share=share, realtime=realtime))
                log(f"  {count} source(s): {summary.fps:.1f} FPS, {100 * share:.2f}% dropped")
                if not realtime and count > kept + 1:
                    break  # two counts past the last one kept: the curve has turned
            batch_count = max(kept, 2)
            as_fast = replace(_sources(base, videos[:batch_count]), realtime=False)
            batched = run_many(as_fast, detector=detector)
            separate = run_many(as_fast, detector=PerSource(detector))
        gain = batched.fps / separate.fps - 1 if separate.fps else 0.0
        rows.append(ok_row(f"{batch_count} sources, as fast as they decode, one model call per step", sources=batch_count,
                           fps=batched.fps, fps_per_source=batched.fps / batch_count))
        rows.append(ok_row(f"{batch_count} sources, as fast as they decode, one model call per source", sources=batch_count,
                           fps=separate.fps, fps_per_source=separate.fps / batch_count))
        return {"command": "streams", "environment": environment(), "rows": rows, "max_realtime_sources": kept,
                "batching_gain": round(gain, 4),
                "settings": {"data": str(config.data), "seconds": config.seconds, "source_fps": SOURCE_FPS,
                             "detect_every": config.detect_every, "detector": config.detector,
                             "staggered_cuts": config.staggered_cuts,
                             "realtime_drop_share": REALTIME_DROP_SHARE}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sources(base, videos: list[Path]):
    return replace(base, source=str(videos[0]), more_sources=tuple(str(video) for video in videos[1:]))


def _write_sources(config: StreamsConfig, folder: Path, log) -> list[Path]:
    frames_per_video = int(config.seconds * SOURCE_FPS)
    scenes_per_video = max(1, int(config.seconds))
    split = load_eval_split(config.data, "val")
    scenes = build_scene(split, SceneSettings(frames=scenes_per_video * config.max_sources, seed=11))
    videos = []
    for index in range(config.max_sources):
        path = folder / f"camera_{index:02d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), SOURCE_FPS, (640, 480))
        # Independent cameras change scene at different moments: each source's scene changes are
        # shifted by its share of a second, so no step carries every source's shot cut (each of
        # which starts a detection) at once.
        shift = round(index * SOURCE_FPS / config.max_sources) if config.staggered_cuts else 0
        for frame_number in range(frames_per_video):
            scene = scenes[index * scenes_per_video + min(scenes_per_video - 1, int((frame_number + shift) / SOURCE_FPS))]
            writer.write(scene.image)
        writer.release()
        videos.append(path)
    log(f"streams: {config.max_sources} sources of {frames_per_video} frames at {SOURCE_FPS:g} FPS")
    return videos
