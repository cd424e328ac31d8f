#!/usr/bin/env bash
# API benchmark: how soon `ignition --api-sock` accepts connections (CPU and wall ms, next to
# plain peers that only bind a Unix socket), PUT /machine-config round trips, and snapshot
# create/load through the API; medians, with the ratios printed last. See bench/api/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD

RUNS=20
REQUESTS=2000
SNAPSHOT_RUNS=5
MEM_MIB=128
SECTIONS=ready,latency,snapshot
IGNITION=$BUILD/ignition
IMAGE=$BUILD/guest/ignition-test.elf
JSON=

usage() {
  cat <<EOF
usage: bench/api.sh [-n RUNS] [--requests N] [--snapshot-runs N] [--mem-mib N]
                    [--sections ready,latency,snapshot] [--json FILE] [--ignition PATH]
                    [--image PATH]

  ready     starts \`ignition --api-sock\` RUNS times (default $RUNS), interleaved with socat,
            a python3 socket server and a minimal C server, and reads each one's CPU time
            (all threads) and wall time at the moment its socket accepts a connection
  latency   PUT /machine-config REQUESTS times (default $REQUESTS) on one connection: median,
            p90, p99, max; the same client against a C server that answers 204 as the floor
  snapshot  boots the test guest ($IMAGE, MEM_MIB MiB, default $MEM_MIB), pauses it and times
            PUT /snapshot/create, then PUT /snapshot/load in a fresh process, SNAPSHOT_RUNS
            times (default $SNAPSHOT_RUNS); prints "not available yet" while the routes are
            partial
  BUILD=dir  build directory (default build)
EOF
}

while (($#)); do
  case $1 in
    -n | --runs) RUNS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --snapshot-runs) SNAPSHOT_RUNS=$2; shift 2 ;;
    --mem-mib) MEM_MIB=$2; shift 2 ;;
    --sections) SECTIONS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --ignition) IGNITION=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/api.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
  esac
done

die() { echo "bench/api.sh: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"
[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests needs a positive number"
[[ -x $IGNITION ]] || die "ignition binary not found at $IGNITION (run 'make build')"
"$IGNITION" --help | grep -q -- --api-sock || die "$IGNITION has no --api-sock"
[[ -f $IMAGE ]] || die "guest image not found at $IMAGE (run 'make build')"
command -v python3 >/dev/null || die "python3 is needed"
command -v cc >/dev/null || die "a C compiler (cc) is needed for bench/api/*.c"
if [[ ,$SECTIONS, = *,snapshot,* ]]; then
  [[ -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is not usable (or leave out the snapshot section)"
fi
SOCAT=$(command -v socat || true)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ignition-bench-api.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cc -O2 -Wall -Wextra -Werror -o "$WORK/sockready" "$ROOT/bench/api/sockready.c"
cc -O2 -Wall -Wextra -Werror -o "$WORK/reqlat" "$ROOT/bench/api/reqlat.c"

cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "API benchmark: ignition --api-sock ($IGNITION)"
echo "  host: $(nproc) CPUs ($cpu_model), Linux $(uname -r)"
echo "  load average before the runs: $(cut -d" " -f1-3 /proc/loadavg) (other work adds noise)"
echo "  build: $(grep -m1 '^CMAKE_BUILD_TYPE' "$(dirname "$IGNITION")/CMakeCache.txt" 2>/dev/null || echo '?')"
[[ -n $SOCAT ]] || echo "  note: socat is not installed: no socat column (scripts/setup.sh installs it)"
cat <<'EOF'
  CPU at ready: the on-CPU time (user+sys) of all the server's threads (/proc/PID/task/*/schedstat,
  ns) read by the launcher the moment connect() to its socket first succeeds; the launcher waits
  for the socket file with inotify, so it does not compete for the CPU. Wall at ready: from
  fork() to that moment. Then SIGTERM; "CPU to exit" is wait4's rusage (all threads, ever).
EOF

ARGS=(--ignition "$IGNITION" --kernel "$IMAGE" --sockready "$WORK/sockready"
  --reqlat "$WORK/reqlat" --socat "$SOCAT" -n "$RUNS" --requests "$REQUESTS"
  --snapshot-runs "$SNAPSHOT_RUNS" --mem-mib "$MEM_MIB" --sections "$SECTIONS")
[[ -z $JSON ]] || ARGS+=(--json "$JSON")
python3 "$ROOT/bench/api/apibench.py" "${ARGS[@]}"
