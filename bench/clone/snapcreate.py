"""Snapshot create time and size, full vs diff, through ignition's Firecracker-style API: a
VM with track_dirty_pages is paused, snapshotted (Full), resumed, and later paused again for
a Diff: once after idling and once after the guest rewrote a known number of pages."""

import http.client
import json
import os
import re
import socket
import subprocess
import time

from common import BenchError, Console, mrange, now_ns, print_table, progress

ABOUT = """
== 4. Snapshot create time and size, full vs diff (API) ==
  guest: bench/clone/idle_guest.S built with -DWAIT_INPUT: writes one word to each page of
    {fill} MiB, prints IDLE-READY, then polls COM1 (ring 0) and for every byte typed rewrites
    {dirty} MiB ({pages} pages) and prints IDLE-DIRTIED.
  ignition --api-sock S --config-file (1 vCPU, 128 MiB, track_dirty_pages: true). A round:
    PATCH /vm Paused, PUT /snapshot/create Full, Resumed; 0.3 s idle, Paused, Diff (idle),
    Resumed; one byte typed -> IDLE-DIRTIED, Paused, Diff ({dirty} MiB rewritten), Resumed.
  request: the PUT's round trip from this script; VMM: ignition's own log line (state
    encoding, memory file write + fsync, state file write). Memory allocated = st_blocks:
    the files are sparse (zero pages of a full snapshot, clean pages of a diff are holes).
  {rounds} rounds in one VM; the files on {fs} ({workdir})."""

FILE_STEM = {"Full": "full", "Diff (idle)": "diff-idle", "Diff (dirty)": "diff-dirty"}
VMM_TOOK_RE = re.compile(r"snapshot written to (\S+) and \S+ in (\d+) us")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api(sock, method, target, body, timeout_s):
    """One request on a fresh connection; returns the time it took (ms). Raises unless 2xx."""
    conn = UnixHTTPConnection(sock, timeout_s)
    data = json.dumps(body)
    t0 = now_ns()
    conn.request(method, target, body=data, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    text = reply.read()
    ms = (now_ns() - t0) / 1e6
    conn.close()
    if reply.status // 100 != 2:
        raise BenchError(f"{method} {target}: {reply.status} {text.decode(errors='replace')}")
    return ms


def wait_socket(path, proc, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the API socket {path} did not appear")
        time.sleep(0.005)


def sizes(prefix):
    st_state = os.stat(prefix + ".state")
    st_mem = os.stat(prefix + ".memory")
    return {
        "state_kib": st_state.st_size / 1024,
        "mem_apparent_mib": st_mem.st_size / 2**20,
        "mem_alloc_mib": st_mem.st_blocks * 512 / 2**20,
    }


def run(reaper, a):
    fs = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", a.workdir], capture_output=True,
                        text=True, check=False)
    print(ABOUT.format(fill=a.fill_mib, dirty=a.dirty_mib, pages=a.dirty_mib * 256,
                       rounds=a.snap_rounds, fs=fs.stdout.strip() or "?", workdir=a.workdir))

    cfg = os.path.join(a.workdir, "snap-vm.json")
    with open(cfg, "w") as f:
        json.dump({
            "boot-source": {"kernel_image_path": a.wait_image},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "track_dirty_pages": True},
        }, f)  # fmt: skip
    sock = os.path.join(a.workdir, "snap-api.sock")
    log_path = os.path.join(a.workdir, "snap-vmm.log")
    with open(log_path, "wb") as log:
        p = reaper.spawn([a.ignition, "--api-sock", sock, "--config-file", cfg],
                         stdin=subprocess.PIPE, stderr=log)
    kinds = ("Full", "Diff (idle)", "Diff (dirty)")
    results = {k: [] for k in kinds}
    pauses, resumes = [], []
    try:
        con = Console(p)
        wait_socket(sock, p, a.timeout)
        con.wait_for(b"IDLE-READY", a.timeout)
        for r in range(a.snap_rounds):
            progress(f"snapshot: round {r + 1}/{a.snap_rounds}")
            for kind in kinds:
                if kind == "Diff (idle)":
                    time.sleep(0.3)
                elif kind == "Diff (dirty)":
                    after = con.matched_end
                    p.stdin.write(b"x")
                    p.stdin.flush()
                    con.wait_for(b"IDLE-DIRTIED", a.timeout, after=after)
                prefix = os.path.join(a.workdir, f"snap-{r}-{FILE_STEM[kind]}")
                pauses.append(api(sock, "PATCH", "/vm", {"state": "Paused"}, a.timeout))
                ms = api(sock, "PUT", "/snapshot/create", {
                    "snapshot_type": kind.split()[0],
                    "snapshot_path": prefix + ".state",
                    "mem_file_path": prefix + ".memory",
                }, a.timeout)  # fmt: skip
                resumes.append(api(sock, "PATCH", "/vm", {"state": "Resumed"}, a.timeout))
                s = sizes(prefix)
                s["request_ms"] = ms
                # What the guest wrote must be in the file (a check, not a measurement).
                least = {"Full": a.fill_mib, "Diff (idle)": 0, "Diff (dirty)": a.dirty_mib}[kind]
                if s["mem_alloc_mib"] < least:
                    raise BenchError(f"{kind} snapshot holds {s['mem_alloc_mib']:.2f} MiB, "
                                     f"less than the {least} MiB the guest wrote")
                results[kind].append((prefix, s))
    finally:
        reaper.kill(p)
    progress("")
    with open(log_path, errors="replace") as f:
        vmm_us = {m.group(1): int(m.group(2)) for m in VMM_TOOK_RE.finditer(f.read())}
    rows = []
    for kind in kinds:
        samples = [s for _, s in results[kind]]
        vmm = [vmm_us[prefix + ".state"] / 1e3 for prefix, _ in results[kind]
               if prefix + ".state" in vmm_us]  # fmt: skip
        for prefix, _ in results[kind]:
            for ext in (".state", ".memory"):
                os.unlink(prefix + ext)
        rows.append([
            kind,
            mrange([s["request_ms"] for s in samples]),
            mrange(vmm),
            mrange([s["state_kib"] for s in samples]),
            mrange([s["mem_alloc_mib"] for s in samples]),
            mrange([s["mem_apparent_mib"] for s in samples]),
        ])  # fmt: skip
    print_table(["median (min-max)", "request ms", "VMM ms", "state KiB", "memory allocated MiB",
                 "memory apparent MiB"], rows)  # fmt: skip
    print(f"pause {mrange(pauses)} ms, resume {mrange(resumes)} ms (PATCH /vm round trips)")
    return rows
