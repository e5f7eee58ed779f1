#!/usr/bin/env bash
# Installs and runs the runtime on 64-bit ARM under full-system emulation, from an x86 Linux host.
#
# What it does, in stages (each leaves a marker in the work folder and is skipped when run again;
# --from STAGE redoes STAGE and what follows, --only STAGE redoes one):
#   root1   debootstrap --foreign a Debian bookworm arm64 root with Python and an arm64 kernel
#   root2   the second stage inside the root, under qemu-user (binfmt_misc)
#   wheels  the project's wheel (pip wheel . --no-deps) and the aarch64 wheels of its runtime
#           dependencies, downloaded on the host (pip download --platform ..._aarch64)
#   stage   wheels, the YuNet file (into the guest's cache), tests/, models/ and an init script copied in
#   image   an ext4 disk image made from the root (mkfs.ext4 -d; no loop mount needed)
#   boot    qemu-system-aarch64 -M virt -cpu cortex-a72 (the Raspberry Pi 4's core), no network;
#           the guest installs the runtime from the wheels with the README's command, runs
#           edge-run --source demo with each backend and the runtime's tests, then powers off
#   fetch   the guest's results read back from the image with debugfs
#   x86     the same wheel installed on the host and run on the same clip, for the comparison
#   compare tools/arm/compare.py: ARM records against x86 records
#
# Usage: tools/arm/run_on_arm.sh [--work DIR] [--from STAGE] [--until STAGE] [--only STAGE] [--no-tests] [--mirror URL]
# Environment: TEST_MINUTES (25: the guest starts no test file after that), GUEST_TIMEOUT (60m),
# YUNET (the detector file; without it the guest uses Haar), PYTHON (the host's, python3).
# --mirror: the Debian archive debootstrap reads (default: the one the host's apt sources name).
# Needs root, and: apt-get install qemu-system-arm qemu-user-static binfmt-support debootstrap
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${HOME}/.cache/edge-emotion-arm"
MIRROR=""  # --mirror, else the Debian archive the host's apt uses (tools/arm/host_mirror.sh)
FROM=""
UNTIL=""
ONLY=""
RUN_TESTS=1
# The name the runtime looks the YuNet file up by in its cache (edge_runtime/detectors/table.py).
YUNET_NAME=face_detection_yunet_2026may.onnx
YUNET="${YUNET:-${REPO}/../shared/models/${YUNET_NAME}}"
GUEST_TIMEOUT="${GUEST_TIMEOUT:-60m}"
# The most the guest spends on the runtime's tests (it starts no test file after that).
TEST_MINUTES="${TEST_MINUTES:-25}"
STAGES=(root1 root2 wheels stage image boot fetch x86 compare)
# Every manylinux tag a bookworm guest (glibc 2.36) accepts that the runtime's wheels use;
# LiteRT's are tagged manylinux_2_27, onnxruntime's newer ones manylinux_2_28.
PLATFORMS=(manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64 manylinux_2_31_aarch64 manylinux_2_34_aarch64)

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "run_on_arm: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --work) WORK="$2"; shift 2 ;;
        --from) FROM="$2"; shift 2 ;;
        --until) UNTIL="$2"; shift 2 ;;
        --only) ONLY="$2"; FROM="$2"; UNTIL="$2"; shift 2 ;;
        --mirror) MIRROR="$2"; shift 2 ;;
        --no-tests) RUN_TESTS=0; shift ;;
        -h|--help) usage 0 ;;
        *) die "unknown argument '$1' (expected --work DIR, --from STAGE, --until STAGE, --only STAGE, --no-tests, --mirror URL)" ;;
    esac
done

if [[ -z "$MIRROR" ]]; then
    MIRROR="$(bash "$REPO/tools/arm/host_mirror.sh")" || die "no Debian mirror: pass --mirror URL"
fi

ROOT="$WORK/root"
WHEELS="$WORK/wheels"
IMAGE="$WORK/disk.img"
RESULTS="$WORK/results"
X86="$WORK/x86"
TIMES="$WORK/stage-times.txt"
mkdir -p "$WORK"

if [[ -n "$FROM" ]]; then
    found=0
    for s in "${STAGES[@]}"; do
        [[ "$s" == "$FROM" ]] && found=1
        [[ $found == 1 ]] && rm -f "$WORK/.done-$s"
    done
    [[ $found == 1 ]] || die "--from '$FROM': expected one of ${STAGES[*]}"
fi

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "'$tool' not found: apt-get install qemu-system-arm qemu-user-static binfmt-support debootstrap e2fsprogs"
    done
}

run_stage() {
    local name="$1"
    if [[ -f "$WORK/.done-$name" ]]; then
        echo "== $name: done before, kept"
        return
    fi
    echo "== $name: $(date -u +%H:%M:%S)"
    local start=$SECONDS
    "stage_$name"
    touch "$WORK/.done-$name"
    echo "$name $((SECONDS - start)) s" | tee -a "$TIMES"
}

stage_root1() {
    rm -rf "$ROOT"
    # libgl1/libglib2.0-0 for OpenCV's GUI wheel if someone swaps it in; udev+kmod so the
    # initramfs finds the virtio disk.
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,python3-pip,linux-image-arm64,libgl1,libglib2.0-0,udev,kmod \
        bookworm "$ROOT" "$MIRROR"
}

stage_root2() {
    # The second stage runs arm64 binaries in a chroot: qemu-user through binfmt_misc.
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable qemu-aarch64 || true
    cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
    ls "$ROOT"/boot/vmlinuz-* "$ROOT"/boot/initrd.img-* >/dev/null || die "$ROOT/boot: no kernel or initrd after the second stage"
}

stage_wheels() {
    rm -rf "$WHEELS"
    mkdir -p "$WHEELS"
    local python="${PYTHON:-python3}"
    (cd "$REPO" && "$python" -m pip wheel . --no-deps -w "$WHEELS" -q)
    local project
    project="$(ls "$WHEELS"/edge_emotion-*.whl)"
    local tags=()
    for p in "${PLATFORMS[@]}"; do tags+=(--platform "$p"); done
    # The project's own metadata names the dependencies: the runtime with both backends, plus
    # pytest for the runtime's tests.
    "$python" -m pip download -q -d "$WHEELS" "${tags[@]}" --python-version 3.11 \
        --implementation cp --only-binary=:all: "${project}[onnx,tflite]" pytest
}

stage_stage() {
    local project
    project="$(basename "$(ls "$WHEELS"/edge_emotion-*.whl)")"
    rm -rf "$ROOT/wheels" "$ROOT/results" "$ROOT/src" "$ROOT/shared"
    cp -r "$WHEELS" "$ROOT/wheels"
    mkdir -p "$ROOT/src" "$ROOT/root/.cache/edge-emotion/models" "$ROOT/shared/models"
    # What the tests read from a clone beside them (the README's examples, the stamp tool, and
    # models/: the Keras master whose checksum and refusal the runtime's tests check).
    cp -r "$REPO/tests" "$REPO/tools" "$REPO/models" "$REPO/docs" "$REPO/pyproject.toml" "$REPO/README.md" "$ROOT/src/"
    find "$ROOT/src" -name __pycache__ -prune -exec rm -rf {} +
    if [[ -f "$YUNET" ]]; then
        # In the cache, so edge-run picks YuNet with no network; beside the tests, as in a clone.
        cp "$YUNET" "$ROOT/root/.cache/edge-emotion/models/$YUNET_NAME"
        cp "$YUNET" "$ROOT/shared/models/$YUNET_NAME"
    else
        echo "no YuNet file at $YUNET: the guest runs with the Haar cascade"
    fi
    sed -e "s|@PROJECT_WHEEL@|$project|" -e "s|@YUNET_NAME@|$YUNET_NAME|" -e "s|@RUN_TESTS@|$RUN_TESTS|" -e "s|@TEST_MINUTES@|$TEST_MINUTES|" \
        "$REPO/tools/arm/guest_init.sh" > "$ROOT/run.sh"
    chmod +x "$ROOT/run.sh"
}

stage_image() {
    rm -f "$IMAGE"
    truncate -s 4G "$IMAGE"
    mkfs.ext4 -q -F -d "$ROOT" "$IMAGE"
}

stage_boot() {
    local kernel initrd
    kernel="$(ls "$ROOT"/boot/vmlinuz-* | tail -1)"
    initrd="$(ls "$ROOT"/boot/initrd.img-* | tail -1)"
    # No -netdev: the guest has no network, as an offline device would.
    timeout "$GUEST_TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 3072 \
        -kernel "$kernel" -initrd "$initrd" -nic none \
        -append "root=/dev/vda rw console=ttyAMA0 init=/run.sh" \
        -drive "file=$IMAGE,format=raw,if=virtio" -nographic -no-reboot \
        > "$WORK/console.log" 2>&1 || die "the guest did not power off cleanly (see $WORK/console.log)"
}

stage_fetch() {
    # rdump makes WORK/results itself (and copies nothing into a folder already there).
    rm -rf "$RESULTS"
    debugfs -R "rdump /results $WORK" "$IMAGE" 2>/dev/null
    [[ -f "$RESULTS/done" ]] || die "$RESULTS: the guest did not finish (see $RESULTS/guest.log and $WORK/console.log)"
}

stage_x86() {
    local python="${PYTHON:-python3}"
    local project
    project="$(ls "$WHEELS"/edge_emotion-*.whl)"
    rm -rf "$X86"
    mkdir -p "$X86"
    "$python" -m venv "$X86/venv"
    "$X86/venv/bin/pip" install -q "${project}[onnx,tflite]"
    local detector=(--detector haar)
    [[ -f "$YUNET" ]] && detector=(--detector yunet --detector-model "$YUNET")
    for backend in onnx tflite; do
        ORT_DISABLE_TELEMETRY=1 EDGE_EMOTION_CACHE="$X86/cache" "$X86/venv/bin/edge-run" --source demo \
            --no-display --backend "$backend" "${detector[@]}" --jsonl "$X86/$backend.jsonl" > "$X86/$backend.log" 2>&1
    done
}

stage_compare() {
    local python="${PYTHON:-python3}"
    "$python" "$REPO/tools/arm/compare.py" --arm "$RESULTS" --x86 "$X86" --wheels "$WHEELS" \
        --stage-times "$TIMES" --out "$WORK/report.json"
}

need debootstrap qemu-system-aarch64 qemu-aarch64-static update-binfmts mkfs.ext4 debugfs
[[ $EUID -eq 0 ]] || die "needs root (debootstrap, chroot, binfmt_misc)"
for s in "${STAGES[@]}"; do
    [[ -n "$ONLY" && "$s" != "$ONLY" ]] && continue
    run_stage "$s"
    [[ "$s" == "$UNTIL" ]] && { echo "stopped after $s (--until)"; exit 0; }
done
echo "results: $RESULTS; report: $WORK/report.json; stage times: $TIMES"
