#!/usr/bin/env python3
"""Boot benchmark driver (called by bench/boot.sh): boots each VMM N times, interleaved,
measures each run from outside, optionally probes guest entry with perf, prints medians.

Usage: bootbench.py --launcher PATH [options] -- NAME ARGV... [:: NAME ARGV...]
The first VMM is the subject (ignition), the second the reference (qemu) for the ratios.
"""

import argparse
import json
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time

KVM_RUN = 0xAE80
COM1 = 0x3F8
FIRST_LINE = b"IGN-BEGIN"
END_RE = re.compile(rb"^IGN-END pass=(\d+) fail=(\d+)", re.M)
# Firecracker's boot-timer line, and the entry line proposed for ignition: same shape.
BOOT_TIME_RE = re.compile(r"Guest-boot-time = *(\d+) us")
ENTRY_TIME_RE = re.compile(r"Guest-entry-time = *(\d+) us")


class RunFailed(Exception):
    pass


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def launch(launcher, argv, timeout_s):
    """Runs argv under the launcher; returns stdout/stderr bytes, the times (ns, monotonic) of
    the first stdout byte and of the end of the IGN-BEGIN line, and the launcher's report."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, null, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
        (os.POSIX_SPAWN_DUP2, rep_w, 3),
    ]
    lpid = os.posix_spawn(launcher, [launcher] + argv, os.environ, file_actions=actions)
    for fd in (out_w, err_w, rep_w, null):
        os.close(fd)

    bufs = {out_r: bytearray(), err_r: bytearray(), rep_r: bytearray()}
    first_byte = first_line = None
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            if timed_out:
                break  # killed 5 s ago and the launcher still has not finished: give up
            timed_out = True
            kill_child(bufs[rep_r])
            deadline = time.monotonic() + 5
            continue
        for key, _ in sel.select(timeout=left):
            chunk = os.read(key.fd, 65536)
            t = now_ns()
            if not chunk:
                sel.unregister(key.fd)
                continue
            buf = bufs[key.fd]
            buf += chunk
            if key.fd != out_r:
                continue
            if first_byte is None:
                first_byte = t
            if first_line is None:
                at = buf.find(FIRST_LINE)
                if at >= 0 and buf.find(b"\n", at) >= 0:
                    first_line = t
    if sel.get_map():
        os.kill(lpid, signal.SIGKILL)  # the launcher itself is stuck
    sel.close()
    for fd in bufs:
        os.close(fd)
    _, lstatus = os.waitpid(lpid, 0)
    report = parse_report(bytes(bufs[rep_r]))
    return {
        "stdout": bytes(bufs[out_r]),
        "stderr": bytes(bufs[err_r]),
        "first_byte_ns": first_byte,
        "first_line_ns": first_line,
        "report": report,
        "launcher_status": lstatus,
        "timed_out": timed_out,
    }


def kill_child(report_bytes):
    """Kills the VMM the launcher started (by the pid it reported); the launcher then exits."""
    pid = parse_report(bytes(report_bytes)).get("pid")
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def parse_report(data):
    rep = {}
    for line in data.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        if value:
            rep[key] = int(value)
    return rep


def tail(data, lines=15):
    text = data.decode(errors="replace").rstrip("\n").splitlines()
    return "\n".join("    " + s for s in text[-lines:]) or "    (nothing)"


def describe_failure(name, argv, run, why):
    return (
        f"{name}: run failed: {why}\n  command: {' '.join(argv)}\n"
        f"  launcher report: {run['report']}\n  stdout (tail):\n{tail(run['stdout'])}\n"
        f"  stderr (tail):\n{tail(run['stderr'])}"
    )


def boot_run(launcher, name, argv, timeout_s):
    """One measured boot; raises RunFailed unless the guest reported a clean run and the VMM
    exited 0."""
    run = launch(launcher, argv, timeout_s)
    rep = run["report"]
    if run["timed_out"]:
        raise RunFailed(describe_failure(name, argv, run, f"timed out after {timeout_s} s"))
    if "exit_ns" not in rep or os.waitstatus_to_exitcode(run["launcher_status"]) != 0:
        raise RunFailed(describe_failure(name, argv, run, "the launcher did not report an exit"))
    if rep["exit_code"] != 0:
        why = f"signal {rep['signal']}" if rep["signal"] else f"exit code {rep['exit_code']}"
        raise RunFailed(describe_failure(name, argv, run, why))
    if run["first_line_ns"] is None:
        raise RunFailed(describe_failure(name, argv, run, "no IGN-BEGIN line on the console"))
    end = END_RE.search(run["stdout"])
    if not end or int(end.group(2)) != 0 or int(end.group(1)) == 0:
        raise RunFailed(describe_failure(name, argv, run, "no clean 'IGN-END pass=N fail=0'"))
    start = rep["start_ns"]
    stderr = run["stderr"].decode(errors="replace")
    sample = {
        "first_byte_ms": (run["first_byte_ns"] - start) / 1e6,
        "first_line_ms": (run["first_line_ns"] - start) / 1e6,
        "exit_ms": (rep["exit_ns"] - start) / 1e6,
        "peak_rss_mib": rep["maxrss_kib"] / 1024,
        "cpu_ms": (rep["utime_us"] + rep["stime_us"]) / 1e3,
        "minflt": rep["minflt"],
    }
    if m := BOOT_TIME_RE.search(stderr):
        sample["guest_boot_time_ms"] = int(m.group(1)) / 1e3
    if m := ENTRY_TIME_RE.search(stderr):
        sample["guest_entry_time_ms"] = int(m.group(1)) / 1e3
    return sample


def floor_run(launcher, name, argv, timeout_s):
    """A process that starts and exits without booting anything: `true`, or `VMM --version`."""
    run = launch(launcher, argv, timeout_s)
    rep = run["report"]
    if run["timed_out"] or rep.get("exit_code") != 0:
        raise RunFailed(describe_failure(name, argv, run, "the floor command failed"))
    return {
        "exit_ms": (rep["exit_ns"] - rep["start_ns"]) / 1e6,
        "peak_rss_mib": rep["maxrss_kib"] / 1024,
    }


# --- perf probe: exact kernel timestamps of exec, the first KVM_RUN and the first COM1 byte ---

PERF_EVENTS = [
    "-e", "syscalls:sys_exit_execve",
    "-e", "syscalls:sys_enter_ioctl", "--filter", f"cmd == {KVM_RUN:#x}",
    "-e", "kvm:kvm_pio", "--filter", f"rw == 1 && port == {COM1:#x} && val == {ord('I'):#x}",
]  # fmt: skip


def perf_probe(workdir, name, argv, timeout_s):
    """Boots once under `perf record` (kernel tracepoints only, filtered in the kernel, so the
    VMM runs at close to full speed) and returns exec->KVM_RUN and KVM_RUN->first COM1 byte."""
    data = os.path.join(workdir, f"perf-{name}.data")
    cmd = ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", *PERF_EVENTS, "-o", data, "--", *argv]
    # Its own process group, so that a hung run can be ended together with the VMM under it.
    rec = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = rec.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        os.killpg(rec.pid, signal.SIGKILL)
        rec.communicate()
        raise RunFailed(f"{name}: perf probe timed out after {timeout_s} s") from e
    # perf record exits with the VMM's status.
    if rec.returncode != 0 or not END_RE.search(out):
        raise RunFailed(
            f"{name}: perf probe run did not finish cleanly (exit {rec.returncode})\n"
            f"  stdout (tail):\n{tail(out)}\n  stderr (tail):\n{tail(err)}"
        )
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "time,event,trace", "--ns"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    os.unlink(data)
    t_exec = t_run = t_byte = None
    for line in script.stdout.splitlines():
        m = re.match(r"\s*(\d+\.\d+):\s+(\S+):", line)
        if not m:
            continue
        t, event = float(m.group(1)), m.group(2)
        if event == "syscalls:sys_exit_execve" and t_exec is None:
            t_exec = t
        elif event == "syscalls:sys_enter_ioctl" and t_run is None:
            t_run = t
        elif event == "kvm:kvm_pio" and t_byte is None and t_run is not None:
            t_byte = t
    if None in (t_exec, t_run, t_byte):
        raise RunFailed(
            f"{name}: perf probe missed an event (exec={t_exec} KVM_RUN={t_run} "
            f"COM1={t_byte}); perf script said:\n{tail(script.stderr.encode())}"
        )
    return {
        "exec_to_kvm_run_ms": (t_run - t_exec) * 1e3,
        "kvm_run_to_first_byte_ms": (t_byte - t_run) * 1e3,
    }


def perf_usable(workdir):
    """perf needs the syscall and kvm tracepoints (root or perf_event_paranoid <= -1)."""
    data = os.path.join(workdir, "perf-check.data")
    cmd = ["perf", "record", "-q", *PERF_EVENTS, "-o", data, "--", "true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return "perf is not installed"
    except subprocess.TimeoutExpired:
        return "perf record timed out"
    if os.path.exists(data):
        os.unlink(data)
    if r.returncode != 0:
        return "perf record failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


# --- statistics and the table ---


def stats(values):
    return (statistics.median(values), min(values), max(values)) if values else None


def fmt(st, digits=1):
    if st is None:
        return "-"
    med, lo, hi = st
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def collect(samples, key):
    return [s[key] for s in samples if key in s]


def print_table(vmms, results, probes, floors, true_floor, perf_note):
    names = [v[0] for v in vmms]
    rows = [
        ("first serial line (IGN-BEGIN)  ms", "first_line_ms", results, 1),
        ("first serial byte              ms", "first_byte_ms", results, 1),
        ("process exit                   ms", "exit_ms", results, 1),
        ("peak RSS of the VMM           MiB", "peak_rss_mib", results, 1),
        ("CPU time (user+sys)            ms", "cpu_ms", results, 1),
        ("minor page faults                ", "minflt", results, 0),
        ("Guest-boot-time (VMM log)      ms", "guest_boot_time_ms", results, 1),
        ("Guest-entry-time (VMM log)     ms", "guest_entry_time_ms", results, 1),
        ("perf: exec -> first KVM_RUN    ms", "exec_to_kvm_run_ms", probes, 2),
        ("perf: KVM_RUN -> 1st COM1 byte ms", "kvm_run_to_first_byte_ms", probes, 2),
        ("process floor: `VMM --version` ms", "exit_ms", floors, 1),
    ]
    width = 30
    print(f"{'metric: median [min-max]':<34}" + "".join(f"{n:>{width}}" for n in names))
    for label, key, table, digits in rows:
        cells = [stats(collect(table.get(n, []), key)) for n in names]
        if all(c is None for c in cells):
            continue
        print(f"{label:<34}" + "".join(f"{fmt(c, digits):>{width}}" for c in cells))
    # The estimate the brief asks for: time to the first byte minus the guest's own share.
    est = []
    for n in names:
        fb = stats(collect(results.get(n, []), "first_byte_ms"))
        g = stats(collect(probes.get(n, []), "kvm_run_to_first_byte_ms"))
        est.append(f"{fb[0] - g[0]:.1f}" if fb and g else "-")
    if any(e != "-" for e in est):
        label = "est. VMM start -> guest entry  ms"
        print(f"{label:<34}" + "".join(f"{e:>{width}}" for e in est))
        print("  (= median first byte - median perf 'KVM_RUN -> 1st COM1 byte'; for QEMU the")
        print("   KVM_RUN -> byte span includes its firmware: this is QEMU's time to vCPU start)")
    ts = true_floor
    print(
        f"launcher floor (`true`): exit {fmt(stats(collect(ts, 'exit_ms')))} ms, "
        f"peak RSS {fmt(stats(collect(ts, 'peak_rss_mib')))} MiB"
    )
    if perf_note:
        print(f"perf probe: {perf_note}")


def ratio_line(vmms, results, probes):
    subj, ref = vmms[0][0], vmms[1][0]
    parts = []
    for label, key, table in (
        ("first-line", "first_line_ms", results),
        ("exit", "exit_ms", results),
        ("peak-rss", "peak_rss_mib", results),
        ("cpu", "cpu_ms", results),
        ("entry(perf)", "exec_to_kvm_run_ms", probes),
    ):
        a = stats(collect(table.get(subj, []), key))
        b = stats(collect(table.get(ref, []), key))
        if a and b and b[0] > 0:
            parts.append(f"{label} {a[0] / b[0]:.2f}x")
    return f"ratio {subj}/{ref}  " + "  ".join(parts)


def progress(text):
    """A one-line progress note on a terminal; nothing when stderr is a file or pipe."""
    if sys.stderr.isatty():
        print(f"\r\033[K  {text}", end="", file=sys.stderr, flush=True)


def parse_vmms(rest):
    vmms, cur = [], []
    for tok in rest + ["::"]:
        if tok == "::":
            if len(cur) < 2:
                raise SystemExit("bootbench: each VMM needs a name and a command")
            vmms.append((cur[0], cur[1:]))
            cur = []
        else:
            cur.append(tok)
    return vmms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--launcher", required=True)
    ap.add_argument("-n", "--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--probe-runs", type=int, default=None, help="perf probe boots per VMM")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--json", help="write every sample here")
    ap.add_argument("--note", action="append", default=[], help="printed before the ratios")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    vmms = parse_vmms(rest)
    probe_runs = args.runs if args.probe_runs is None else args.probe_runs

    results = {n: [] for n, _ in vmms}
    floors = {n: [] for n, _ in vmms}
    true_floor = []
    probes = {n: [] for n, _ in vmms}
    with tempfile.TemporaryDirectory(prefix="ignition-bootbench-") as workdir:
        try:
            perf_note = "skipped (--probe-runs 0)"
            if probe_runs > 0:
                problem = perf_usable(workdir)
                perf_note = f"skipped: {problem}" if problem else (
                    f"{probe_runs} extra boots per VMM under `perf record` (tracepoints "
                    "sys_exit_execve, sys_enter_ioctl(KVM_RUN), kvm_pio(COM1 write of 'I')), "
                    "interleaved with the timed boots"
                )
                if problem:
                    probe_runs = 0
            for _ in range(args.warmup):
                for name, argv in vmms:
                    boot_run(args.launcher, name, argv, args.timeout)
            # One round: each VMM timed, then the floors, then each VMM under perf; rounds
            # repeat so that every kind of sample sees the same machine noise.
            for i in range(max(args.runs, probe_runs)):
                progress(f"round {i + 1}/{max(args.runs, probe_runs)}")
                if i < args.runs:
                    for name, argv in vmms:
                        results[name].append(boot_run(args.launcher, name, argv, args.timeout))
                    for name, argv in vmms:
                        floors[name].append(
                            floor_run(args.launcher, name, [argv[0], "--version"], args.timeout)
                        )
                    true_floor.append(floor_run(args.launcher, "true", ["true"], args.timeout))
                if i < probe_runs:
                    for name, argv in vmms:
                        probes[name].append(perf_probe(workdir, name, argv, args.timeout))
        except RunFailed as e:
            progress("")
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
    progress("")

    print()
    print_table(vmms, results, probes, floors, true_floor, perf_note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"vmms": dict(vmms), "boots": results, "perf": probes,
                       "version_floor": floors, "true_floor": true_floor}, f, indent=1)  # fmt: skip
    for note in args.note:
        print(note)
    if len(vmms) >= 2:
        print(ratio_line(vmms, results, probes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
