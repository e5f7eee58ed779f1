"""Compares edge-run's ARM records with x86 records of the same wheel, backend, detector and clip.

Reads what tools/arm/run_on_arm.sh brought back from the arm64 guest (`RESULTS/{onnx,tflite}.jsonl`
plus the guest's facts) and the host's records of the same runs (`X86/{onnx,tflite}.jsonl`), pairs
each ARM face with the x86 face of the same frame whose box overlaps it most, and checks:

- every face has a partner (same faces found), and the label is equal on every face;
- box corners within BOX_TOLERANCE_PX;
- probabilities within PROB_TOLERANCE (why that figure: see its comment).

Writes one JSON report (guest facts, wheel versions and sizes, install time and size, emulated
FPS, the comparison) and exits 1 when a check fails.

    python tools/arm/compare.py --arm ~/.cache/edge-emotion-arm/results \
        --x86 ~/.cache/edge-emotion-arm/x86 --wheels ~/.cache/edge-emotion-arm/wheels --out report.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path

BACKENDS = ("onnx", "tflite")
# YuNet runs in OpenCV's DNN module and Haar in OpenCV's cascade code, both in float32 with
# NEON on ARM and AVX on x86: different summation orders move a box edge by a pixel or two
# (Haar at half-scale detection doubles that: 2-4 px was seen). Five pixels on a ~160 px face.
BOX_TOLERANCE_PX = 5
# The int8 models' outputs step by 1/256 (0.0039). The same crop gives the same int8 tensor on
# both machines only when every rounding of the float resize and normalisation agrees (NEON and
# AVX round differently); a box moved by a pixel gives a slightly different crop. On the demo clip
# (YuNet, both backends) the largest difference seen was 0.040 (0.024 where the boxes were equal,
# mean 0.007): 0.05, about 13 steps, leaves a little room; labels are checked separately, exactly.
PROB_TOLERANCE = 0.05
# Pairs an ARM face with an x86 face only if their boxes overlap this much.
MIN_IOU = 0.5


def read_records(path: Path) -> list[dict]:
    """One dict per face, from an edge-run JSONL file."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such records file (did the run reach this backend?)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path}:{number}: not a JSON record ({error.msg})") from None
    return records


def iou(a: list[int], b: list[int]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def pair_faces(arm: list[dict], x86: list[dict]) -> tuple[list[tuple[dict, dict]], int, int]:
    """Pairs faces frame by frame on the largest box overlap.

    Returns:
        The pairs, and the numbers of ARM and x86 faces left without a partner.
    """
    by_frame: dict[int, list[dict]] = {}
    for record in x86:
        by_frame.setdefault(record["frame"], []).append(record)
    pairs, arm_alone = [], 0
    for record in arm:
        candidates = by_frame.get(record["frame"], [])
        best = max(candidates, key=lambda other: iou(record["box"], other["box"]), default=None)
        if best is None or iou(record["box"], best["box"]) < MIN_IOU:
            arm_alone += 1
            continue
        candidates.remove(best)
        pairs.append((record, best))
    return pairs, arm_alone, sum(len(left) for left in by_frame.values())


def compare_backend(arm: list[dict], x86: list[dict]) -> dict:
    """The comparison of one backend's records, with `passed` set by the tolerances."""
    pairs, arm_alone, x86_alone = pair_faces(arm, x86)
    box_diffs = [max(abs(p - q) for p, q in zip(a["box"], b["box"])) for a, b in pairs]
    prob_diffs = [max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]) for a, b in pairs]
    same_box = [d for d, box in zip(prob_diffs, box_diffs) if box == 0]
    label_mismatches = [
        {"frame": a["frame"], "box": a["box"], "arm": a["label"], "x86": b["label"]}
        for a, b in pairs
        if a["label"] != b["label"]
    ]
    result = {
        "faces_arm": len(arm),
        "faces_x86": len(x86),
        "paired": len(pairs),
        "arm_faces_without_partner": arm_alone,
        "x86_faces_without_partner": x86_alone,
        # A face classified whole names no detector (null); str() keeps the set sortable.
        "detectors": sorted({str(r["detector"]) for r in arm} | {str(r["detector"]) for r in x86}),
        "labels_equal": len(pairs) - len(label_mismatches),
        "label_mismatches": label_mismatches,
        "boxes_identical": sum(1 for d in box_diffs if d == 0),
        "box_max_diff_px": max(box_diffs, default=0),
        "prob_max_diff": round(max(prob_diffs, default=0.0), 5),
        "prob_max_diff_where_box_identical": round(max(same_box, default=0.0), 5),
        "prob_mean_diff": round(sum(prob_diffs) / len(prob_diffs), 5) if prob_diffs else 0.0,
    }
    result["passed"] = (
        arm_alone == 0
        and x86_alone == 0
        and not label_mismatches
        and result["box_max_diff_px"] <= BOX_TOLERANCE_PX
        and result["prob_max_diff"] <= PROB_TOLERANCE
        and len(result["detectors"]) == 1
    )
    return result


def read_text(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def read_number(path: Path) -> float | None:
    text = read_text(path)
    return float(text) if text else None


def guest_facts(results: Path) -> dict:
    """What the guest wrote about itself: kernel, CPU, OS, Python, install and run times."""
    installed = json.loads(read_text(results / "pip_list.json") or "[]")
    facts = {
        "uname": read_text(results / "uname.txt"),
        "cpu": read_text(results / "cpu.txt"),
        "cores": read_text(results / "nproc.txt"),
        "debian": read_text(results / "debian_version.txt"),
        "python": read_text(results / "python.txt"),
        "install_seconds": read_number(results / "install_seconds.txt"),
        "install_exit_status": read_text(results / "install.rc"),
        "venv_mb": read_number(results / "venv_mb.txt"),
        "installed": {p["name"]: p["version"] for p in installed},
        # One line per test file: its exit status, time and pytest's closing line.
        "tests": (read_text(results / "tests.log") or "").splitlines(),
    }
    facts["runs"] = {}
    for backend in BACKENDS:
        log = read_text(results / f"{backend}.log") or ""
        # edge-run's closing summary: "frames: 106 | faces: 210 | tracks: 7 | 1.4 FPS over 75.2 s"
        summary = re.search(r"frames: (\d+) \| faces: (\d+).*?([\d.]+) FPS over ([\d.]+) s", log)
        seconds = read_number(results / f"{backend}_seconds.txt")
        frames = int(summary[1]) if summary else None
        facts["runs"][backend] = {
            "exit_status": read_text(results / f"{backend}.rc"),
            "frames": frames,
            "faces": int(summary[2]) if summary else None,
            "emulated_fps": float(summary[3]) if summary else None,
            "emulated_loop_seconds": float(summary[4]) if summary else None,
            "wall_seconds_incl_start": seconds,
            "summary": log.splitlines()[-6:],
        }
    return facts


def wheel_sizes(wheels: Path) -> dict:
    """Each wheel's file name and size in MB, as copied to the guest."""
    return {w.name: round(w.stat().st_size / 1e6, 2) for w in sorted(wheels.glob("*.whl"))}


def host_facts() -> dict:
    """The x86 machine that ran the emulation and the reference records."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    return {"platform": platform.platform(), "cpu": model[1] if model else None, "cores": os.cpu_count()}


def stage_seconds(path: Path) -> dict:
    """Seconds per stage from lines "STAGE N s"; a stage run again keeps its latest time."""
    times = {}
    for line in path.read_text().splitlines():
        name, seconds, _ = line.split()
        times[name] = int(seconds)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", type=Path, required=True, help="the guest's results folder")
    parser.add_argument("--x86", type=Path, required=True, help="the host's records folder")
    parser.add_argument("--wheels", type=Path, help="the wheels given to the guest (for their sizes)")
    parser.add_argument("--stage-times", type=Path, help="run_on_arm.sh's stage-times.txt (seconds per stage)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON report to write")
    args = parser.parse_args(argv)

    comparison = {b: compare_backend(read_records(args.arm / f"{b}.jsonl"), read_records(args.x86 / f"{b}.jsonl")) for b in BACKENDS}
    report = {
        "what": "edge-run --source demo on arm64 under qemu-system-aarch64 (emulation) against x86_64, same wheel",
        "tolerances": {"box_px": BOX_TOLERANCE_PX, "probability": PROB_TOLERANCE, "pairing_min_iou": MIN_IOU},
        "guest": guest_facts(args.arm),
        "host": host_facts(),
        "host_stage_seconds": stage_seconds(args.stage_times) if args.stage_times else None,
        "wheels_mb": wheel_sizes(args.wheels) if args.wheels else None,
        "comparison": comparison,
        "passed": all(c["passed"] for c in comparison.values()),
    }
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    for backend, c in comparison.items():
        print(
            f"{backend}: {c['paired']}/{c['faces_arm']} faces paired, labels equal {c['labels_equal']}/{c['paired']}, "
            f"box max diff {c['box_max_diff_px']} px, prob max diff {c['prob_max_diff']}: "
            f"{'passed' if c['passed'] else 'FAILED'}"
        )
    print(f"wrote {args.out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
