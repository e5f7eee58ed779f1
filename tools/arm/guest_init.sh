#!/bin/sh
# The ARM guest's init (PID 1), written into the root by run_on_arm.sh: installs the runtime from
# the wheels with no network, runs edge-run on the demo clip with each backend and the runtime's
# tests, writes everything under /results, then powers off. @...@ are filled in by run_on_arm.sh.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
# No network, but the loopback interface up: the tests serve files and streams on 127.0.0.1.
python3 -c "
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', flags | 1))
"
export HOME=/root PATH=/opt/edge-emotion/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export ORT_DISABLE_TELEMETRY=1 LC_ALL=C.UTF-8 COLUMNS=120
R=/results
mkdir -p $R
exec > $R/guest.log 2>&1
set -x

now() { date +%s.%N; }
# seconds between two `now` readings, to 0.1 s
took() { python3 -c "print(round($2 - $1, 1))"; }

uname -a > $R/uname.txt
grep -m1 -i "model name\|^CPU part" /proc/cpuinfo > $R/cpu.txt
lscpu > $R/lscpu.txt 2>&1 || true
cat /etc/debian_version > $R/debian_version.txt
nproc > $R/nproc.txt
python3 --version > $R/python.txt 2>&1

# The README's Raspberry Pi install, from the wheels: a venv and the project wheel with its
# backends (both here, so one install runs each backend).
python3 -m venv /opt/edge-emotion
t0=$(now)
/opt/edge-emotion/bin/pip install --no-index --find-links /wheels "/wheels/@PROJECT_WHEEL@[onnx,tflite]" > $R/install.log 2>&1
echo $? > $R/install.rc
t1=$(now)
took $t0 $t1 > $R/install_seconds.txt
du -sm /opt/edge-emotion | cut -f1 > $R/venv_mb.txt
pip list --format=json > $R/pip_list.json 2>/dev/null

# YuNet when run_on_arm.sh put its file in the cache (there is no network to fetch it), else Haar.
detector=haar
[ -f $HOME/.cache/edge-emotion/models/@YUNET_NAME@ ] && detector=yunet
for backend in onnx tflite; do
    t0=$(now)
    edge-run --source demo --no-display --backend $backend --detector $detector --jsonl $R/$backend.jsonl > $R/$backend.log 2>&1
    echo $? > $R/$backend.rc
    t1=$(now)
    took $t0 $t1 > $R/${backend}_seconds.txt
done

if [ "@RUN_TESTS@" = 1 ]; then
    pip install --no-index --find-links /wheels pytest > $R/pytest_install.log 2>&1
    cd /src
    # Emulation runs these ~30x slower than x86: one file at a time, none started once the
    # budget is spent, so what ran is reported even when not all of it fits.
    start=$(date +%s)
    : > $R/tests.log
    for file in tests/test_runtime_*.py; do
        left=$(( @TEST_MINUTES@ * 60 - ($(date +%s) - start) ))
        if [ $left -le 0 ]; then
            echo "$file: not run (test budget of @TEST_MINUTES@ min spent)" >> $R/tests.log
            continue
        fi
        t0=$(now)
        timeout $left python -m pytest -q -p no:cacheprovider "$file" > $R/test.out 2>&1
        rc=$?
        t1=$(now)
        echo "$file: exit $rc in $(took $t0 $t1) s: $(tail -1 $R/test.out)" >> $R/tests.log
        cat $R/test.out >> $R/tests_full.log
    done
    cd /
fi

touch $R/done
sync
echo o > /proc/sysrq-trigger
sleep 60
