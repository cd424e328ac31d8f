#!/usr/bin/env bash
# Clone benchmark: clone latency (new process, in-process, vs QEMU restoring its own saved
# state), in-process reset latency vs dirtied pages, density of idle clones (vs QEMU clones),
# and snapshot create time and size (full vs diff). Medians over several runs, one table per
# section, ratios last. See bench/clone/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD

SECTIONS=latency,reset,density,snapshot
RUNS=10
RESETS=1000
RESET_RUNS=5
RESET_PAGES=1,10,100,1000
DENSITY=100
QEMU_DENSITY=10
WINDOW=5
FILL_MIB=32
DIRTY_MIB=8
SNAP_ROUNDS=5
TIMEOUT=60
IGNITION=$BUILD/ignition
IMAGE=$BUILD/guest/ignition-test-pvh.elf
QEMU=${QEMU:-qemu-system-x86_64}

usage() {
  cat <<EOF
usage: bench/clone.sh [--sections LIST] [-n RUNS] [--resets N] [--reset-runs N]
                      [--reset-pages LIST] [-d|--density N] [--qemu-density N] [--window S]
                      [--fill-mib N] [--dirty-mib N] [--snap-rounds N] [--timeout S]
                      [--ignition PATH] [--image PATH] [--qemu PATH|none]

Sections (default all: $SECTIONS):
  latency   request -> restored guest prints again: \`ignition restore\` (new process),
            vmm::Machine::restore() in one process (bench/clone/inproc.cpp), and QEMU
            -incoming "exec:cat FILE"; RUNS each (default $RUNS) after 1 warm-up
  reset     in-process reset vs pages dirtied (RESET_PAGES, default $RESET_PAGES), RESETS
            resets per run (default $RESETS), RESET_RUNS runs per size (default $RESET_RUNS)
  density   up to N idle 128 MiB clones (default $DENSITY, at most 1000; fewer if MemAvailable
            drops below 2 GiB), and QEMU_DENSITY QEMU clones (default $QEMU_DENSITY): private
            memory, host memory, idle CPU over WINDOW seconds (default $WINDOW)
  snapshot  API snapshot create, Full vs Diff: time and file sizes (SNAP_ROUNDS rounds,
            default $SNAP_ROUNDS)
  --fill-mib N    non-zero guest memory in the density/snapshot guest's base (default $FILL_MIB)
  --dirty-mib N   memory the snapshot guest rewrites before the dirty diff (default $DIRTY_MIB)
  --qemu none     ignition only, no ratios
  BUILD=dir       build directory (default build); must be current (make build): the
                  in-process bench is compiled against its libignition_core.a
EOF
}

while (($#)); do
  case $1 in
    --sections) SECTIONS=$2; shift 2 ;;
    -n | --runs) RUNS=$2; shift 2 ;;
    --resets) RESETS=$2; shift 2 ;;
    --reset-runs) RESET_RUNS=$2; shift 2 ;;
    --reset-pages) RESET_PAGES=$2; shift 2 ;;
    -d | --density) DENSITY=$2; shift 2 ;;
    --qemu-density) QEMU_DENSITY=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --fill-mib) FILL_MIB=$2; shift 2 ;;
    --dirty-mib) DIRTY_MIB=$2; shift 2 ;;
    --snap-rounds) SNAP_ROUNDS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --ignition) IGNITION=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    --qemu) QEMU=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/clone.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
  esac
done
die() { echo "bench/clone.sh: $*" >&2; exit 1; }
for v in RUNS RESETS RESET_RUNS DENSITY WINDOW FILL_MIB DIRTY_MIB SNAP_ROUNDS TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive number, got '${!v}'"
done
[[ $QEMU_DENSITY =~ ^[0-9]+$ ]] || die "--qemu-density needs a number"
[[ $RESET_PAGES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--reset-pages needs a list like 1,10,100"
((DENSITY <= 1000)) || die "--density is at most 1000"
((FILL_MIB <= 96)) || die "--fill-mib is at most 96 (the guest fills from 16 MiB of 128)"
((DIRTY_MIB <= FILL_MIB)) || die "--dirty-mib must not exceed --fill-mib"
for k in ${RESET_PAGES//,/ }; do
  ((k <= 1024)) || die "--reset-pages: the reset guest dirties at most 1024 pages"
done

[[ -x $IGNITION ]] || die "ignition binary not found at $IGNITION (run 'make build')"
[[ -f $IMAGE ]] || die "guest image not found at $IMAGE (run 'make build')"
[[ -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is not usable"
command -v python3 >/dev/null || die "python3 is needed"
command -v c++ >/dev/null || die "a C++ compiler (c++) is needed for bench/clone/inproc.cpp"
command -v cc >/dev/null || die "a C compiler (cc) is needed for bench/clone/idle_guest.S"
grep -q "ign.reset.pages=" "$IMAGE" || die "$IMAGE has no reset test: rebuild it (make build)"
LIB=$BUILD/libignition_core.a
CXXFLAGS=(-std=c++20 -O2 -Wall -Wextra -Werror -DFMT_SHARED -DSPDLOG_COMPILED_LIB
  -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -I"$ROOT/src")
if [[ ,$SECTIONS, = *,latency,* ]]; then
  [[ -f $LIB ]] || die "$LIB not found (run 'make build')"
  # inproc.cpp is compiled against src/ and linked with the build's library: the headers it
  # includes must not have changed since the library was built.
  for dep in $(c++ "${CXXFLAGS[@]}" -MM "$ROOT/bench/clone/inproc.cpp" | tr -d "\\\\"); do
    [[ $dep != "$ROOT/src/"* || ! $dep -nt $LIB ]] ||
      die "$dep is newer than $LIB: rebuild first (make build)"
  done
fi

NOTES=()
if [[ $QEMU = none ]]; then
  NOTES+=("QEMU left out (--qemu none): ignition numbers only, no ratios")
elif ! command -v "$QEMU" >/dev/null; then
  NOTES+=("QEMU ($QEMU) is not installed: ignition numbers only, no ratios")
  QEMU=none
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ignition-bench-clone.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [[ ,$SECTIONS, = *,latency,* ]]; then
  # The in-process bench links the same library as the ignition binary, with its flags.
  c++ "${CXXFLAGS[@]}" -o "$WORK/inproc" "$ROOT/bench/clone/inproc.cpp" "$LIB" -lspdlog -lfmt \
    -pthread
fi
# shellcheck disable=SC2054 # the commas belong to the linker flags
GUEST_FLAGS=(-nostdlib -static -no-pie -Wl,-Ttext-segment=0x100000 -Wl,--build-id=none
  -Wl,-z,noexecstack -Wl,-e,pvh_entry -DFILL_MIB="$FILL_MIB" -DDIRTY_MIB="$DIRTY_MIB")
cc "${GUEST_FLAGS[@]}" -o "$WORK/idle.elf" "$ROOT/bench/clone/idle_guest.S"
cc "${GUEST_FLAGS[@]}" -DWAIT_INPUT -o "$WORK/wait.elf" "$ROOT/bench/clone/idle_guest.S"

cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
hv="KVM"
[[ -d /sys/module/kvm_pvm ]] && hv="KVM via kvm_pvm (nested, software shadow paging)"
echo "Clone benchmark: sections $SECTIONS"
mem_gib=$(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) >> 20))
echo "  host: $(nproc) CPUs ($cpu_model), $mem_gib GiB RAM, Linux $(uname -r), $hv"
echo "  load average before the runs: $(cut -d" " -f1-3 /proc/loadavg) (other work adds noise)"
echo "  ignition: $IGNITION"
[[ $QEMU = none ]] || echo "  qemu: $("$QEMU" --version | head -1)"
for n in "${NOTES[@]}"; do echo "  note: $n"; done

# -B: no __pycache__ in the source tree.
python3 -B "$ROOT/bench/clone/clonebench.py" --ignition "$IGNITION" --inproc "$WORK/inproc" \
  --image "$IMAGE" --idle-image "$WORK/idle.elf" --wait-image "$WORK/wait.elf" --qemu "$QEMU" \
  --workdir "$WORK" --sections "$SECTIONS" -n "$RUNS" --resets "$RESETS" \
  --reset-runs "$RESET_RUNS" --reset-pages "$RESET_PAGES" --density "$DENSITY" \
  --qemu-density "$QEMU_DENSITY" --window-s "$WINDOW" --fill-mib "$FILL_MIB" \
  --dirty-mib "$DIRTY_MIB" --snap-rounds "$SNAP_ROUNDS" --timeout "$TIMEOUT"
