#!/usr/bin/env bash
# Boot benchmark: ignition vs QEMU microvm booting the same PVH test guest, N runs each,
# interleaved; prints medians per metric and, last, the ignition/QEMU ratios. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD

RUNS=10
PROBE_RUNS=
TESTS=boot,boottime
IGNITION=$BUILD/ignition
IMAGE=$BUILD/guest/ignition-test-pvh.elf
QEMU=${QEMU:-qemu-system-x86_64}
JSON=
TIMEOUT=30

usage() {
  cat <<EOF
usage: bench/boot.sh [-n RUNS] [-p PROBE_RUNS] [--tests LIST] [--json FILE]
                     [--ignition PATH] [--image PATH] [--qemu PATH|none]

Boots the test guest ($IMAGE) RUNS times (default 10) under ignition and under
QEMU microvm, interleaved, and reports per VMM: wall time from process start to the guest's
first serial line (IGN-BEGIN) and to process exit, peak RSS, CPU time, ignition's
Guest-boot-time log line, and (PROBE_RUNS extra boots each under perf, default RUNS, 0 = off)
the time from exec to the first KVM_RUN and from there to the first COM1 byte.
  --tests LIST   guest tests to run (ign.tests=, default $TESTS)
  --timeout S    a boot that takes longer fails the benchmark (default $TIMEOUT)
  --qemu none    ignition only
  BUILD=dir      build directory (default build)
EOF
}

while (($#)); do
  case $1 in
    -n | --runs) RUNS=$2; shift 2 ;;
    -p | --probe-runs) PROBE_RUNS=$2; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --ignition) IGNITION=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    --qemu) QEMU=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/boot.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench/boot.sh: -n needs a positive number" >&2; exit 1; }
PROBE_RUNS=${PROBE_RUNS:-$RUNS}
[[ $PROBE_RUNS =~ ^[0-9]+$ ]] || { echo "bench/boot.sh: -p needs a number" >&2; exit 1; }

die() { echo "bench/boot.sh: $*" >&2; exit 1; }
[[ -x $IGNITION ]] || die "ignition binary not found at $IGNITION (run 'make build')"
[[ -f $IMAGE ]] || die "guest image not found at $IMAGE (run 'make build')"
[[ -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is not usable"
command -v python3 >/dev/null || die "python3 is needed"
command -v cc >/dev/null || die "a C compiler (cc) is needed for bench/boot/launch.c"

QEMU_NOTE=
if [[ $QEMU = none ]]; then
  QEMU_NOTE="note: QEMU left out (--qemu none): ignition numbers only, no ratios"
elif ! command -v "$QEMU" >/dev/null; then
  QEMU_NOTE="note: QEMU ($QEMU) is not installed: ignition numbers only, no ratios"
  QEMU=none
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ignition-bench-boot.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cc -O2 -Wall -Wextra -Werror -o "$WORK/launch" "$ROOT/bench/boot/launch.c"

CMDLINE="ign.tests=$TESTS"
IGN_CMD=("$IGNITION" run --kernel "$IMAGE" --vcpus 1 --mem-mib 128 --cmdline "$CMDLINE")
# The options of tests/integration/qemu_guest_test.cpp, with 1 vCPU and no option ROMs: QEMU's
# leanest microvm. -cpu host,-arch-capabilities: QEMU cannot set that MSR on this KVM.
QEMU_CMD=("$QEMU" -M microvm,x-option-roms=off,acpi=on,pit=off,pic=off,rtc=off
  -accel kvm -cpu host,-arch-capabilities -m 128 -smp 1 -nodefaults -no-user-config
  -nographic -serial stdio -kernel "$IMAGE" -append "$CMDLINE" -no-reboot)

cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
hv="KVM"
[[ -d /sys/module/kvm_pvm ]] && hv="KVM via kvm_pvm (nested, software shadow paging)"
echo "Boot benchmark: ignition vs QEMU microvm, same guest, $RUNS runs each, interleaved"
echo "  host: $(nproc) CPUs ($cpu_model), Linux $(uname -r), $hv"
echo "  load average before the runs: $(cut -d" " -f1-3 /proc/loadavg) (other work adds noise)"
echo "  guest: $(basename "$IMAGE") (PVH entry), 1 vCPU, 128 MiB, cmdline \"$CMDLINE\""
echo "  ignition: ${IGN_CMD[*]}"
[[ $QEMU = none ]] || echo "  qemu: $("$QEMU" --version | head -1): ${QEMU_CMD[*]}"
cat <<'EOF'
  Where the guest's work runs: ring 0 only for its entry stub (PVH 32-bit entry -> long mode with
  static page tables, load TSS/IDT, iretq), which a nested kvm_pvm host emulates at about
  1 us/instruction; everything after (serial init, IGN-BEGIN, the tests, the reboot) runs
  natively in ring 3, and every COM1 byte is a port-I/O exit to the VMM. QEMU also runs its
  firmware (qboot) in the guest before the PVH entry, in ring 0 (emulated there too).
  Timed from the launcher's fork to the line's arrival on the pipe / to the VMM's exit; peak RSS
  is the VMM process's ru_maxrss. 1 warm-up boot each is discarded.
EOF

VMMS=(ignition "${IGN_CMD[@]}")
[[ $QEMU = none ]] || VMMS+=(:: qemu "${QEMU_CMD[@]}")
ARGS=(--launcher "$WORK/launch" -n "$RUNS" --probe-runs "$PROBE_RUNS" --timeout "$TIMEOUT")
[[ -z $JSON ]] || ARGS+=(--json "$JSON")
[[ -z $QEMU_NOTE ]] || ARGS+=(--note "$QEMU_NOTE")
python3 "$ROOT/bench/boot/bootbench.py" "${ARGS[@]}" -- "${VMMS[@]}"
