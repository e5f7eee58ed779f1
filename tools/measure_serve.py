"""Measures what `edge-run --serve` viewers cost the pipeline: FPS with 0, 1 and 4 viewers.

Starts `edge-run --source demo --loop --serve PORT` (bundled model, default detector), lets it
warm up, then for each setting opens that many viewers of `/stream.mjpg` or `/events` (threads
that read as a browser does), and reads the frames the pipeline processed from `/healthz` over a
window: FPS = frames / seconds. Viewers are on 127.0.0.1 only.

The machine's speed drifts (a shared or throttled CPU) by more than a viewer costs, so the
settings run in rounds, each between two no-viewer windows, and a window's cost is its FPS
against the mean of the no-viewer windows either side of its round; each setting reports the
median over the rounds.

    python tools/measure_serve.py --seconds 6 --rounds 4 --json bench/serve_overhead.json
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

EDGE_RUN = str(Path(sys.executable).parent / "edge-run")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frames(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return sum(source["frames"] for source in json.loads(response.read())["sources"].values())


def viewer(url: str, stop: threading.Event, received: list[int]) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        while not stop.is_set():
            chunk = response.read1(65536)
            if not chunk:
                return
            received.append(len(chunk))


def measure(port: int, path: str | None, viewers: int, seconds: float) -> dict:
    stop, received = threading.Event(), []
    threads = [threading.Thread(target=viewer, args=(f"http://127.0.0.1:{port}{path}", stop, received), daemon=True)
               for _ in range(viewers if path else 0)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # viewers connected and receiving
    first, started = frames(port), time.monotonic()
    time.sleep(seconds)
    count, elapsed = frames(port) - first, time.monotonic() - started
    stop.set()
    return {"viewers": viewers if path else 0, "endpoint": path or "-", "fps": round(count / elapsed, 2),
            "bytes_to_viewers_per_s": round(sum(received) / (elapsed + 2.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring window per setting")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of every setting, each between no-viewer windows")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--only", choices=("/stream.mjpg", "/events"), help="measure one endpoint (default: both)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    port = free_port()
    process = subprocess.Popen([EDGE_RUN, "--source", "demo", "--loop", "--serve", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup)
        settings = [(path, viewers) for path in ("/stream.mjpg", "/events") for viewers in (1, 4) if args.only in (None, path)]
        baselines, rounds = [measure(port, None, 0, args.seconds)], []
        print(json.dumps(baselines[-1]), flush=True)
        for _ in range(args.rounds):
            rounds.append([measure(port, path, viewers, args.seconds) for path, viewers in settings])
            for row in rounds[-1]:
                print(json.dumps(row), flush=True)
            baselines.append(measure(port, None, 0, args.seconds))
            print(json.dumps(baselines[-1]), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    for number, windows in enumerate(rounds):
        around = (baselines[number]["fps"] + baselines[number + 1]["fps"]) / 2
        for row in windows:
            row["cost_vs_no_viewer"] = round(1 - row["fps"] / around, 4)
    summary = []
    for index, (path, viewers) in enumerate(settings):
        costs = [windows[index]["cost_vs_no_viewer"] for windows in rounds]
        fps = [windows[index]["fps"] for windows in rounds]
        summary.append({"endpoint": path, "viewers": viewers, "median_cost": round(statistics.median(costs), 4),
                        "costs": costs, "median_fps": round(statistics.median(fps), 2)})
    report = {"no_viewer_fps": [row["fps"] for row in baselines], "settings": summary,
              "rounds": rounds, "seconds": args.seconds, "command_line": " ".join(["python", *sys.argv])}
    for row in summary:
        print(f"{row['endpoint']} x{row['viewers']}: median cost {100 * row['median_cost']:+.1f}% "
              f"(rounds: {', '.join(f'{100 * c:+.1f}%' for c in row['costs'])})")
    print(f"no viewer: {', '.join(f'{row:.1f}' for row in report['no_viewer_fps'])} FPS")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

if __name__ == "__main__":
    main()
