#!/usr/bin/env bash
# Two Ray nodes on one machine, on loopback only, running an edge-run video job; its outputs
# are compared with the same job on local workers.
#
# Ray advertises the address of the machine's network interface, not 127.0.0.1, even when told
# `--node-ip-address=127.0.0.1` (its runtime-environment agent binds there). In a network
# namespace whose only interface is loopback, every Ray process has 127.0.0.1 and nothing else.
# Ray 2.60 turns token authentication on for `ray start --head`: both nodes and the job get one
# generated token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN), as on a real cluster.
#
# Usage (as root, from the repository root, with the `cluster` extra installed and YuNet cached):
#     tools/ray_two_nodes.sh VIDEO_FOLDER [REPORT_JSON]
set -euo pipefail

videos=$(realpath "$1")
report=${2:-}
namespace=edge-ray-$$
port=6399
work=$(mktemp -d)

cleanup() {
    ip netns exec "$namespace" ray stop --force >/dev/null 2>&1 || true
    ip netns delete "$namespace" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$namespace"
ip netns exec "$namespace" ip link set lo up

export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(python -c "import secrets; print(secrets.token_hex(24))")
export RAY_AUTH_TOKEN

inside() { ip netns exec "$namespace" "$@"; }
inside ray start --head --node-ip-address=127.0.0.1 --port=$port --num-cpus=1 --include-dashboard=false \
    --disable-usage-stats >"$work/head.log" 2>&1
inside ray start --address=127.0.0.1:$port --node-ip-address=127.0.0.1 --num-cpus=1 \
    --disable-usage-stats >"$work/node.log" 2>&1

# Both nodes alive, and every socket Ray listens on is a loopback one.
inside python - "$port" <<'EOF' >"$work/nodes.json"
import json, subprocess, sys, time
import ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", log_to_driver=False, configure_logging=False)
deadline = time.time() + 60
while sum(node["Alive"] for node in ray.nodes()) < 2 and time.time() < deadline:
    time.sleep(0.5)
nodes = [{"ip": node["NodeManagerAddress"], "cpus": node["Resources"].get("CPU", 0)} for node in ray.nodes() if node["Alive"]]
listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout.split("\n")
addresses = sorted({line.split()[3].rsplit(":", 1)[0] for line in listening if line.strip()})
print(json.dumps({"nodes": nodes, "listening_on": addresses}))
ray.shutdown()
EOF

started=$(date +%s.%N)
inside edge-run --source "$videos" --out "$work/ray" --ray 127.0.0.1:$port >"$work/ray.log" 2>&1
ended=$(date +%s.%N)
edge-run --source "$videos" --out "$work/local" --workers 2 >"$work/local.log" 2>&1

python - "$work" "$started" "$ended" "$report" <<'EOF'
import json, sys
from pathlib import Path
work, started, ended, report = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def comparable(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("report.json", "manifest.json", "timeline.png")}
ray_report = json.loads((work / "ray" / "report.json").read_text())
result = {**json.loads((work / "nodes.json").read_text()), "job_mode": ray_report["mode"], "job_workers": ray_report["workers"],
          "videos_done": len(ray_report["done"]), "frames": ray_report["frames"], "fps": ray_report["fps"],
          "wall_seconds": round(ended - started, 2),
          "outputs_equal_the_local_run": comparable(work / "ray") == comparable(work / "local")}
print(json.dumps(result, indent=1))
if report:
    Path(report).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
EOF
