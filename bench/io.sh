#!/usr/bin/env bash
# Device I/O benchmark: ignition vs QEMU microvm running the same guest's polled, ring-3
# virtio benchmarks (block, net, vsock), N runs each, interleaved; prints medians per metric
# and, last, the ignition/QEMU ratios. See bench/io/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD

RUNS=5
WARMUP=1
SECTIONS=blk,net,vsock
QD=1
OPS=8192
DISK_MIB=64
SEQ_MIB=256
PINGS=2000
PKTS=100000
VSOCK_MIB=256
TIMEOUT=120
IGNITION=$BUILD/ignition
IMAGE=$BUILD/guest/ignition-test-pvh.elf
QEMU=${QEMU:-qemu-system-x86_64}
JSON=

usage() {
  cat <<EOF2
usage: bench/io.sh [-n RUNS] [--sections blk,net,vsock] [--qd N] [--ops N] [--disk-mib N]
                   [--seq-mib N] [--pings N] [--pkts N] [--vsock-mib N] [--warmup N] [--timeout S]
                   [--json FILE] [--ignition PATH] [--image PATH] [--qemu PATH|none]

Runs the test guest's device benchmarks ($IMAGE, ign.tests=bench-blk / bench-net /
bench-vsock) RUNS times (default $RUNS) under ignition and under QEMU microvm, interleaved,
after WARMUP discarded runs each (default $WARMUP), and prints per VMM the median and range of:
  blk    4 KiB random read/write IOPS and MiB/s, 1 MiB sequential read/write MiB/s on a
         DISK_MIB (default $DISK_MIB) file (queue depth QD, default $QD; OPS 4 KiB requests per
         random phase, default $OPS; SEQ_MIB per sequential phase, default $SEQ_MIB)
  net    UDP round trip (PINGS, default $PINGS) and guest->namespace throughput (PKTS frames
         of 1514 bytes, default $PKTS) against a peer in a network namespace (needs root)
  vsock  guest->host stream throughput (VSOCK_MIB, default $VSOCK_MIB); QEMU only with
         /dev/vhost-vsock
  --qemu none    ignition only
  BUILD=dir      build directory (default build)
EOF2
}

while (($#)); do
  case $1 in
    -n | --runs) RUNS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --sections) SECTIONS=$2; shift 2 ;;
    --qd) QD=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --disk-mib) DISK_MIB=$2; shift 2 ;;
    --seq-mib) SEQ_MIB=$2; shift 2 ;;
    --pings) PINGS=$2; shift 2 ;;
    --pkts) PKTS=$2; shift 2 ;;
    --vsock-mib) VSOCK_MIB=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --ignition) IGNITION=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    --qemu) QEMU=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/io.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
  esac
done
die() { echo "bench/io.sh: $*" >&2; exit 1; }
for v in RUNS QD OPS DISK_MIB SEQ_MIB PINGS PKTS VSOCK_MIB TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive number, got '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup needs a number"
((QD <= 32)) || die "--qd is at most 32"

[[ -x $IGNITION ]] || die "ignition binary not found at $IGNITION (run 'make build')"
[[ -f $IMAGE ]] || die "guest image not found at $IMAGE (run 'make build')"
[[ -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is not usable"
command -v python3 >/dev/null || die "python3 is needed"
command -v cc >/dev/null || die "a C compiler (cc) is needed for bench/io/iopeer.c"
# The guest must know the bench tests (an older image answers IGN-FAIL unknown-test).
grep -q bench-blk "$IMAGE" || die "$IMAGE has no bench-* tests: rebuild it (make build)"

NOTES=()
if [[ $QEMU = none ]]; then
  NOTES+=("QEMU left out (--qemu none): ignition numbers only, no ratios")
elif ! command -v "$QEMU" >/dev/null; then
  NOTES+=("QEMU ($QEMU) is not installed: ignition numbers only, no ratios")
  QEMU=none
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ignition-bench-io.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cc -O2 -Wall -Wextra -Werror -o "$WORK/iopeer" "$ROOT/bench/io/iopeer.c"

cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
hv="KVM"
[[ -d /sys/module/kvm_pvm ]] && hv="KVM via kvm_pvm (nested, software shadow paging)"
echo "I/O benchmark: ignition vs QEMU microvm, same guest, $RUNS runs each (+$WARMUP warm-up), interleaved"
echo "  host: $(nproc) CPUs ($cpu_model), Linux $(uname -r), $hv"
echo "  load average before the runs: $(cut -d" " -f1-3 /proc/loadavg) (other work adds noise)"
echo "  guest: $(basename "$IMAGE") (PVH entry), 1 vCPU, 128 MiB"
echo "  ignition: $IGNITION --config-file <vm.json>"
[[ $QEMU = none ]] || echo "  qemu: $("$QEMU" --version | head -1)"
cat <<'EOF'
  Where the guest's work runs: the benchmark loops (bench-blk, bench-net, bench-vsock in
  guest/tests/bench_*.c) and the whole virtio driver run in ring 3, natively, and poll the used
  rings with device interrupts suppressed (used_event parked). Only the guest's entry stub runs
  in ring 0, which this kind of host (nested kvm_pvm) emulates at ~1 us/instruction; it is not
  timed. Each queue notification is an MMIO write that exits to KVM (an ioeventfd in both VMMs).
  Times are the guest's own: TSC ticks, converted with the rate the hypervisor reports.
  Block numbers are page-cache numbers: the disk file is in the host page cache, neither VMM
  opens it O_DIRECT and the guest never flushes, so they measure the VMM's request path plus
  copies, not a disk.
EOF

ARGS=(--ignition "$IGNITION" --qemu "$QEMU" --image "$IMAGE" --peer "$WORK/iopeer"
  -n "$RUNS" --warmup "$WARMUP" --sections "$SECTIONS" --qd "$QD" --ops "$OPS"
  --disk-mib "$DISK_MIB" --seq-mib "$SEQ_MIB" --pings "$PINGS" --pkts "$PKTS" --vsock-mib "$VSOCK_MIB"
  --timeout "$TIMEOUT")
[[ -z $JSON ]] || ARGS+=(--json "$JSON")
for n in "${NOTES[@]}"; do ARGS+=(--note "$n"); done
python3 "$ROOT/bench/io/iobench.py" "${ARGS[@]}"
