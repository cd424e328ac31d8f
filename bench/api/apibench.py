#!/usr/bin/env python3
"""API benchmark (run by bench/api.sh): (a) time from process start to the API socket accepting
a connection, in CPU ms and wall ms, for ignition and plain peers side by side; (b) PUT
/machine-config round trips on one connection; (c) PUT /snapshot/create on a paused VM and
PUT /snapshot/load in a fresh process. Prints medians, and the ratios last."""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FIRECRACKER_STARTUP_CPU_MS = 8.0  # SPECIFICATION.md: "starts (up to API socket) within 8 CPU ms"
NOT_YET = "not supported yet"


# --- helpers -------------------------------------------------------------------------------


def stats(values):
    return (statistics.median(values), min(values), max(values)) if values else None


def fmt(st, digits=2):
    if st is None:
        return "-"
    med, lo, hi = st
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def progress(text):
    if sys.stderr.isatty():
        print(f"\r\033[K  {text}", end="", file=sys.stderr, flush=True)


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k:
            out[k] = int(v)
    return out


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def call(conn, method, path, body=None):
    """One request; returns (status, body text, seconds)."""
    data = json.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    t0 = time.monotonic()
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    return r.status, text, time.monotonic() - t0


def wait_socket(path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before its socket was up")
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.close()
            return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{path} did not come up in {timeout} s")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# --- (a) API socket ready ------------------------------------------------------------------


def startup(args, work):
    sock = os.path.join(work, "ready.sock")
    py_server = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\n"
        "s.bind(sys.argv[1]);s.listen(64)\n"
        "while True: s.accept()[0].close()\n"
    )
    servers = [("ignition", [args.ignition, "--api-sock", sock])]
    if args.socat:
        servers.append(("socat", [args.socat, f"UNIX-LISTEN:{sock},fork", "SYSTEM:true"]))
    servers.append(("python3 -S", [sys.executable, "-S", "-c", py_server, sock]))
    servers.append(("C floor", [args.reqlat, "--serve", sock]))
    samples = {name: [] for name, _ in servers}
    total = args.runs + args.warmup
    for i in range(total):
        for name, argv in servers:
            progress(f"socket ready: run {i + 1}/{total} {name}")
            r = subprocess.run(
                [args.sockready, "--timeout-ms", "10000", sock, "--", *argv],
                capture_output=True, text=True, timeout=60,
            )
            if r.returncode != 0:
                raise RuntimeError(f"{name}: sockready failed: {r.stderr.strip()}")
            kv = parse_kv(r.stdout)
            if kv.get("ready_cpu_us", 0) <= 0:
                raise RuntimeError(f"{name}: no CPU time read at ready: {r.stdout.strip()}")
            if i >= args.warmup:
                samples[name].append(kv)
    progress("")
    return [name for name, _ in servers], samples


def print_startup(names, samples):
    width = 24
    print(f"\n(a) API socket ready after process start, {len(samples[names[0]])} runs each, "
          "interleaved (median [min-max])")
    print(f"{'':<36}" + "".join(f"{n:>{width}}" for n in names))
    rows = [
        ("CPU at ready (user+sys)          ms", "ready_cpu_us"),
        ("wall at ready                    ms", "ready_wall_us"),
        ("CPU to exit after SIGTERM        ms", None),
    ]
    for label, key in rows:
        cells = []
        for n in names:
            if key:
                vals = [s[key] / 1000.0 for s in samples[n]]
            else:
                vals = [(s["utime_us"] + s["stime_us"]) / 1000.0 for s in samples[n]]
            cells.append(fmt(stats(vals)))
        print(f"{label:<36}" + "".join(f"{c:>{width}}" for c in cells))
    print(f"Firecracker's promise (SPECIFICATION.md, not measured here): <= "
          f"{FIRECRACKER_STARTUP_CPU_MS:.0f} CPU ms to API socket availability; wall 6-60 ms, "
          "typically 12 ms")


# --- (b) request latency ------------------------------------------------------------------


def latency(args, work):
    """Both servers up at once; reqlat alternates requests between them (one connection each)."""
    body = json.dumps({"vcpu_count": 1, "mem_size_mib": 128})
    names = ["ignition", "C floor"]
    socks = [os.path.join(work, "lat-ign.sock"), os.path.join(work, "lat-floor.sock")]
    argvs = [[args.ignition, "--api-sock", socks[0]], [args.reqlat, "--serve", socks[1]]]
    procs = []
    try:
        for sock, argv in zip(socks, argvs):
            if os.path.lexists(sock):
                os.unlink(sock)
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_socket(sock, procs[-1])
        progress("latency")
        r = subprocess.run(
            [args.reqlat, str(args.requests), "100", "204", "PUT", "/machine-config", body, *socks],
            capture_output=True, text=True, timeout=600,
        )
        if r.returncode != 0:
            raise RuntimeError(f"reqlat failed: {r.stderr.strip()}")
    finally:
        for p in procs:
            stop(p)
    results = {n: [] for n in names}
    for line in r.stdout.splitlines():
        k, ns = line.split()
        results[names[int(k)]].append(int(ns) / 1000.0)
    progress("")
    return {n: sorted(v) for n, v in results.items()}


def print_latency(args, results):
    names = list(results)
    width = 16
    print(f"\n(b) PUT /machine-config round trip, {args.requests} requests on one keep-alive "
          "connection per server, alternating, after 100 warm-up rounds (us)")
    print(f"{'':<36}" + "".join(f"{n:>{width}}" for n in names))
    for label, p in (("median", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        cells = [f"{percentile(results[n], p):.1f}" for n in names]
        print(f"{label:<36}" + "".join(f"{c:>{width}}" for c in cells))
    print("  C floor: the same client against a server that answers 204 without parsing JSON")


# --- (c) snapshot create / load -------------------------------------------------------------


def boot_and_pause(args, work, tag):
    sock = os.path.join(work, f"snap-{tag}.sock")
    console = open(os.path.join(work, f"snap-{tag}.console"), "wb")
    proc = subprocess.Popen(
        [args.ignition, "--api-sock", sock], stdin=subprocess.DEVNULL, stdout=console,
        stderr=subprocess.DEVNULL,
    )
    wait_socket(sock, proc)
    conn = UnixHTTP(sock)
    for method, path, body in (
        ("PUT", "/boot-source", {"kernel_image_path": args.kernel,
                                 "boot_args": "console=ttyS0 ign.tests=boot ign.exit=hang"}),
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": args.mem_mib}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
    ):
        status, text, _ = call(conn, method, path, body)
        if status != 204:
            raise RuntimeError(f"{method} {path}: {status} {text}")
    deadline = time.monotonic() + 60
    path = console.name
    while b"IGN-PASS boot" not in open(path, "rb").read():
        if time.monotonic() > deadline:
            raise RuntimeError("the guest did not boot in 60 s")
        time.sleep(0.02)
    status, text, _ = call(conn, "PATCH", "/vm", {"state": "Paused"})
    if status != 204:
        raise RuntimeError(f"PATCH /vm Paused: {status} {text}")
    return proc, conn, console


def snapshots(args, work):
    """Returns {"create": [ms], "load": [ms], "size": bytes} or {"unavailable": reason}."""
    out = {"create": [], "load": [], "resume": []}
    state = os.path.join(work, "snap.state")
    mem = os.path.join(work, "snap.mem")
    for i in range(args.snapshot_runs):
        progress(f"snapshot: run {i + 1}/{args.snapshot_runs}")
        for p in (state, mem):
            if os.path.exists(p):
                os.unlink(p)
        proc, conn, console = boot_and_pause(args, work, "src")
        try:
            status, text, secs = call(conn, "PUT", "/snapshot/create",
                                      {"snapshot_type": "Full", "snapshot_path": state,
                                       "mem_file_path": mem})
        finally:
            conn.close()
            stop(proc)
            console.close()
        if status != 204:
            if NOT_YET in text:
                return {"unavailable": f"PUT /snapshot/create: {text.strip()}"}
            raise RuntimeError(f"PUT /snapshot/create: {status} {text}")
        out["create"].append(secs * 1000)
        out["size"] = os.path.getsize(mem)
        out["allocated"] = os.stat(mem).st_blocks * 512

        sock = os.path.join(work, "snap-dst.sock")
        proc = subprocess.Popen([args.ignition, "--api-sock", sock], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = UnixHTTP(sock)
        try:
            wait_socket(sock, proc)
            status, text, secs = call(conn, "PUT", "/snapshot/load", {
                "snapshot_path": state,
                "mem_backend": {"backend_type": "File", "backend_path": mem},
                "resume_vm": False})
            if status != 204:
                if NOT_YET in text:
                    out["load_unavailable"] = f"PUT /snapshot/load: {text.strip()}"
                    break
                raise RuntimeError(f"PUT /snapshot/load: {status} {text}")
            out["load"].append(secs * 1000)
            status, text, secs = call(conn, "PATCH", "/vm", {"state": "Resumed"})
            if status != 204:
                raise RuntimeError(f"PATCH /vm Resumed after load: {status} {text}")
            out["resume"].append(secs * 1000)
        finally:
            conn.close()
            stop(proc)
    progress("")
    return out


def print_snapshots(args, snap):
    print(f"\n(c) snapshot through the API, {args.mem_mib} MiB guest, {args.snapshot_runs} runs "
          "(median [min-max], ms from request to reply)")
    if "unavailable" in snap:
        print(f"PUT /snapshot/create (Full, paused VM)          not available yet ({snap['unavailable']})")
        print("PUT /snapshot/load (fresh process)              not available yet")
        return
    print(f"PUT /snapshot/create (Full, paused VM)     {fmt(stats(snap['create']), 1)}"
          f"   (memory file {snap.get('size', 0) / 1048576:.0f} MiB, "
          f"{snap.get('allocated', 0) / 1048576:.1f} MiB allocated)")
    if "load_unavailable" in snap:
        print(f"PUT /snapshot/load (fresh process)         not available yet ({snap['load_unavailable']})")
    else:
        print(f"PUT /snapshot/load (fresh process)         {fmt(stats(snap['load']), 1)}")
        print(f"PATCH /vm Resumed after the load           {fmt(stats(snap['resume']), 1)}")


# --- main ------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ignition", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--sockready", required=True)
    p.add_argument("--reqlat", required=True)
    p.add_argument("--socat", default="")
    p.add_argument("-n", "--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--snapshot-runs", type=int, default=5)
    p.add_argument("--mem-mib", type=int, default=128)
    p.add_argument("--sections", default="ready,latency,snapshot")
    p.add_argument("--json", default="")
    args = p.parse_args()
    sections = set(args.sections.split(","))
    report = {}
    with tempfile.TemporaryDirectory(prefix="ign-apibench-") as work:
        names, ready, lat, snap = None, None, None, None
        if "ready" in sections:
            names, ready = startup(args, work)
            print_startup(names, ready)
            report["ready"] = ready
        if "latency" in sections:
            lat = latency(args, work)
            print_latency(args, lat)
            report["latency_us"] = lat
        if "snapshot" in sections:
            snap = snapshots(args, work)
            print_snapshots(args, snap)
            report["snapshot"] = snap
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    parts = []
    if ready:
        ign = statistics.median(s["ready_cpu_us"] for s in ready["ignition"]) / 1000.0
        parts.append(f"ready-cpu vs Firecracker's 8 ms promise {ign / FIRECRACKER_STARTUP_CPU_MS:.2f}x")
        for peer in names[1:]:
            ref = statistics.median(s["ready_cpu_us"] for s in ready[peer]) / 1000.0
            wref = statistics.median(s["ready_wall_us"] for s in ready[peer]) / 1000.0
            wign = statistics.median(s["ready_wall_us"] for s in ready["ignition"]) / 1000.0
            parts.append(f"ignition/{peer} cpu {ign / ref:.2f}x wall {wign / wref:.2f}x")
    if lat:
        parts.append(
            f"put-latency ignition/floor median "
            f"{percentile(lat['ignition'], 50) / percentile(lat['C floor'], 50):.2f}x"
        )
    print()
    print("ratio  " + "  ".join(parts))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        progress("")
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
