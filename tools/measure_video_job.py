"""Measures the video job (`edge-run --source FOLDER --out RESULTS`): throughput and resuming.

Builds a folder of videos (640x480, 15 FPS): `--scene-videos` made of `edge-bench scene` frames
(PublicTest faces on a backdrop, each scene held for a second, so tracks live and end) and
`--demo-videos` copies of the bundled demo clip. Then, each as its own `edge-run` process with
the bundled model and the default detector:

- the job with 1 and 2 local workers, and on a local Ray instance with 2 workers: frames per
  second as the job's report gives it (from planning to the last video's files, so the start of
  the workers, or of Ray, is in it), the same after the executor's start (Ray's instance and
  actors asked to start; a local pool starts its processes with the first chunks, so its start
  stays in), and the command's wall time;
- a job of `--resume-videos` videos stopped with SIGTERM once half of them are done, then run
  again: how many the second run redid and skipped, and whether its outputs equal those of an
  uninterrupted run.

Usage (from the repository root; YuNet's file must be cached: `edge-run --fetch-models`):

    python tools/measure_video_job.py --data ../shared/fer2013 --json bench/video_job.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.inputs import load_eval_split
from edge_runtime.sources.open_source import demo_clip_path
from fer_data.scenes import SceneSettings, build_scene

FPS = 15.0
EDGE_RUN = str(Path(sys.executable).parent / "edge-run")


def write_scene_video(path: Path, frames, hold: int) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    count = 0
    for frame in frames:
        for _ in range(hold):
            writer.write(frame.image)
            count += 1
    writer.release()
    return count


def build_folder(folder: Path, data: str, scene_videos: int, scenes_per_video: int, demo_videos: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    frames = build_scene(load_eval_split(data, "val"), SceneSettings(frames=scene_videos * scenes_per_video, seed=7))
    total = 0
    for index in range(scene_videos):
        part = frames[index * scenes_per_video : (index + 1) * scenes_per_video]
        total += write_scene_video(folder / f"scene_{index:02d}.mp4", part, hold=int(FPS))
    for index in range(demo_videos):
        shutil.copyfile(demo_clip_path(), folder / f"demo_{index:02d}.mp4")
        total += 106
    return total


def job(source: Path, out: Path, *options: str) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run([EDGE_RUN, "--source", str(source), "--out", str(out), *options], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"edge-run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads((out / "report.json").read_text()), wall


def comparable(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("report.json", "manifest.json", "timeline.png")}


def resume_check(folder: Path, work: Path) -> dict:
    reference = work / "reference"
    job(folder, reference, "--workers", "2")
    out = work / "interrupted"
    process = subprocess.Popen([EDGE_RUN, "--source", str(folder), "--out", str(out), "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    videos = sum(1 for _ in folder.iterdir())
    while process.poll() is None:
        try:
            done = sum(e["status"] == "done" for e in json.loads((out / "manifest.json").read_text())["videos"].values())
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= videos // 2:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    process.communicate()
    finished = json.loads((out / "report.json").read_text())
    rerun, _ = job(folder, out, "--workers", "2")
    return {"videos": videos, "exit_status_when_stopped": process.returncode, "done_before_the_stop": len(finished["done"]),
            "rerun_redid": len(rerun["done"]), "rerun_skipped": len(rerun["skipped"]),
            "outputs_equal_an_uninterrupted_run": comparable(out) == comparable(reference)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or CSV (PublicTest faces are used)")
    parser.add_argument("--scene-videos", type=int, default=8)
    parser.add_argument("--scenes-per-video", type=int, default=40, help="each held for a second")
    parser.add_argument("--demo-videos", type=int, default=8)
    parser.add_argument("--resume-videos", type=int, default=20)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="video-job-"))
    try:
        folder = work / "videos"
        frames = build_folder(folder, args.data, args.scene_videos, args.scenes_per_video, args.demo_videos)
        report = {"videos": args.scene_videos + args.demo_videos, "frames": frames, "rows": []}
        setups = [("local", "1", ()), ("local", "2", ())] + ([] if args.no_ray else [("ray local", "2", ("--ray", "local"))])
        for mode, workers, extra in setups:
            result, wall = job(folder, work / f"out_{mode.replace(' ', '_')}_{workers}", "--workers", workers, *extra)
            row = {"mode": mode, "workers": int(workers), "frames": result["frames"], "job_seconds": result["seconds"],
                   "fps": result["fps"], "start_seconds": result["startup_seconds"],
                   "fps_after_start": round(result["frames"] / (result["seconds"] - result["startup_seconds"]), 2),
                   "wall_seconds": round(wall, 2), "failed": len(result["failed"])}
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        rows = {(row["mode"], row["workers"]): row for row in report["rows"]}
        if ("ray local", 2) in rows:
            ray_row, local_row = rows[("ray local", 2)], rows[("local", 2)]
            report["ray_overhead"] = round(1 - ray_row["fps"] / local_row["fps"], 4)
            report["ray_overhead_after_start"] = round(1 - ray_row["fps_after_start"] / local_row["fps_after_start"], 4)
        resume_folder = work / "resume_videos"
        resume_folder.mkdir()
        for index in range(args.resume_videos):
            shutil.copyfile(demo_clip_path(), resume_folder / f"clip_{index:02d}.mp4")
        report["resume"] = resume_check(resume_folder, work)
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
