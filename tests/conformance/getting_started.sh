#!/usr/bin/env bash
# Firecracker's getting-started guide, run as written against the real `ignition --api-sock`
# binary with curl: logger, boot source, root drive, network interface (when a TAP can be
# made), machine config, InstanceStart; then what a user checks: GET /, GET /vm/config,
# pause/resume, a refused late PUT, and SIGTERM. Like the guide, the PUTs send `--data` with
# curl's default Content-Type.
#
#   getting_started.sh IGNITION GUEST_KERNEL
set -euo pipefail

IGNITION=${1:?usage: getting_started.sh IGNITION GUEST_KERNEL}
KERNEL=${2:?usage: getting_started.sh IGNITION GUEST_KERNEL}
command -v curl >/dev/null || { echo "getting_started: curl is not installed"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ign-gs.XXXXXX")
API_SOCKET=$WORK/firecracker.socket
LOGFILE=$WORK/firecracker.log
ROOTFS=$WORK/rootfs.ext4
CONSOLE=$WORK/console.out
TAP_DEV=igngs$$
PID=
fails=0
passes=0

cleanup() {
  [[ -z $PID ]] || kill "$PID" 2>/dev/null || true
  ip link del "$TAP_DEV" 2>/dev/null || true
  if ((fails == 0)); then rm -rf "$WORK"; else echo "files kept in $WORK"; fi
}
trap cleanup EXIT

check() { # check WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then
    passes=$((passes + 1))
  else
    fails=$((fails + 1))
    echo "FAIL: $what"
  fi
}

# api METHOD PATH [DATA]: sets STATUS and BODY.
api() {
  local out
  local args=(-s --max-time 30 -X "$1" --unix-socket "$API_SOCKET" -w '\n%{http_code}')
  [[ $# -lt 3 ]] || args+=(--data "$3")
  out=$(curl "${args[@]}" "http://localhost$2") || { STATUS=000; BODY="curl failed"; return; }
  STATUS=${out##*$'\n'}
  BODY=${out%$'\n'*}
  [[ $BODY != "$STATUS" ]] || BODY=
}

expect() { # expect STATUS METHOD PATH [DATA]
  local want=$1
  shift
  api "$@"
  check "$1 $2 -> $STATUS (expected $want) $BODY" [ "$STATUS" = "$want" ]
}

truncate -s 8M "$ROOTFS"
: >"$LOGFILE"
"$IGNITION" --api-sock "$API_SOCKET" --id getting-started </dev/null >"$CONSOLE" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 500); do [[ -S $API_SOCKET ]] && break; sleep 0.01; done
check "the API socket is up" [ -S "$API_SOCKET" ]

expect 204 PUT /logger "{
    \"log_path\": \"${LOGFILE}\",
    \"level\": \"Debug\",
    \"show_level\": true,
    \"show_log_origin\": true
}"
KERNEL_BOOT_ARGS="console=ttyS0 reboot=k panic=1 ign.tests=boot ign.exit=hang"
expect 204 PUT /boot-source "{
    \"kernel_image_path\": \"${KERNEL}\",
    \"boot_args\": \"${KERNEL_BOOT_ARGS}\"
}"
expect 204 PUT /drives/rootfs "{
    \"drive_id\": \"rootfs\",
    \"path_on_host\": \"${ROOTFS}\",
    \"is_root_device\": true,
    \"is_read_only\": false
}"
if ip tuntap add dev "$TAP_DEV" mode tap 2>/dev/null && ip link set "$TAP_DEV" up; then
  FC_MAC="06:00:AC:10:00:02"
  expect 204 PUT /network-interfaces/net1 "{
      \"iface_id\": \"net1\",
      \"guest_mac\": \"$FC_MAC\",
      \"host_dev_name\": \"$TAP_DEV\"
  }"
else
  echo "note: no TAP device could be made (not root?): the network interface step is left out"
fi
expect 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}'
sleep 0.015
expect 204 PUT /actions '{"action_type": "InstanceStart"}'

for _ in $(seq 600); do grep -q "IGN-PASS boot" "$CONSOLE" && break; sleep 0.1; done
check "the guest booted (IGN-PASS boot on the console)" grep -q "IGN-PASS boot" "$CONSOLE"

api GET /
check "GET / -> $STATUS $BODY" [ "$STATUS" = 200 ]
check "GET / says Running and the --id: $BODY" \
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["state"]=="Running" and d["id"]=="getting-started"))' "$BODY"
api GET /vm/config
check "GET /vm/config -> $STATUS" [ "$STATUS" = 200 ]
check "GET /vm/config shows what was configured: $BODY" python3 -c '
import json, sys
c = json.loads(sys.argv[1])
ok = (c["boot-source"]["kernel_image_path"] == sys.argv[2]
      and c["drives"][0]["drive_id"] == "rootfs" and c["drives"][0]["path_on_host"] == sys.argv[3]
      and c["machine-config"]["vcpu_count"] == 2 and c["machine-config"]["mem_size_mib"] == 128
      and c["logger"]["level"] in ("Debug", "debug"))
sys.exit(not ok)' "$BODY" "$KERNEL" "$ROOTFS"
expect 204 PATCH /vm '{"state": "Paused"}'
expect 204 PATCH /vm '{"state": "Resumed"}'
expect 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
check "the late PUT is refused for the state: $BODY" grep -q "not supported after starting" <<<"$BODY"

kill -TERM "$PID"
for _ in $(seq 200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
code=0
if kill -0 "$PID" 2>/dev/null; then
  kill -KILL "$PID"
  code="none: still running 20 s after SIGTERM"
fi
wait "$PID" || [[ $code != 0 ]] || code=$?
PID=
check "ignition exits 0 on SIGTERM (got $code)" [ "$code" = 0 ]
check "the socket file is removed" [ ! -e "$API_SOCKET" ]
# Checked after the exit: ignition's log file is buffered (Firecracker writes each line).
check "the logger wrote the requests to its file" grep -q "PUT /boot-source" "$LOGFILE"
((fails == 0)) || { echo "stderr:"; tail -20 "$WORK/stderr"; }
echo "$passes passed, $fails failed"
((fails == 0))
