"""Clone latency: from the request to the restored guest printing again. ignition as a new
process (`ignition restore`), ignition in-process (Machine::restore in a loop, inproc.cpp)
and QEMU as a new process (-incoming "exec:cat FILE"), all from the same guest image and
command line, stopped at the same place in the guest."""

import os
import subprocess

import qemu
from common import (BenchError, Console, check_clean_end, med, mrange, now_ns, print_table,
                    progress)

# The guest stops for its snapshot inside this list: ignition's `snapshot` at the boot-time
# marker (`boottime`); QEMU in `echo`, stopped while it waits for a line, with the line's
# '\n' typed into the stopped VM's UART. Either way the restored guest prints at once.
CMDLINE = "ign.tests=boot,cmdline,boottime,echo,kvmclock ign.exit=reboot"

ABOUT = """
== 1. Clone latency: request -> restored guest prints again ==
  guest: {image}, 1 vCPU, 128 MiB, cmdline "{cmdline}"
  Times from just before spawning the process (or calling restore()) to the arrival of the
  first byte / complete line on the console pipe; the restored guest runs in ring 3.
  {runs} runs each after {warmup} warm-up; the new-process runs interleaved.
  ignition: `ignition snapshot` at the boot-time marker (in `boottime`); restored by
    `ignition --store DIR restore NAME` (new process), and by vmm::Machine::restore() in a
    loop in one process (bench/clone/inproc.cpp: a worker thread takes the time, calls
    restore() then run(); stop() and destroy after the first console line).
    The first line after the restore: IGN-PASS boottime."""

ABOUT_QEMU = """\
  qemu: booted to `echo` (the guest waits for a line), stopped, '\\n' typed into the stopped
    UART, saved with QMP migrate "exec:cat > FILE"; restored by a new QEMU with -incoming
    "exec:cat FILE" (which runs at once: migration.store-global-state=off when saving).
    The first line after the restore: IGN-INFO echo=."""


def ignition_base(reaper, a, store):
    argv = [a.ignition, "--store", store, "snapshot", "latency", "--kernel", a.image,
            "--vcpus", "1", "--mem-mib", "128", "--cmdline", CMDLINE]  # fmt: skip
    p = reaper.spawn(argv, stderr=subprocess.STDOUT)
    out, _ = p.communicate(timeout=a.timeout)
    reaper.kill(p)
    if p.returncode != 0:
        raise BenchError(f"ignition snapshot failed ({p.returncode}):\n{out.decode()[-2000:]}")
    return os.path.join(store, "snapshots", "latency")


def timed_restore(reaper, argv, who, a, serial_reply=None):
    """One restore as a new process: ms to the first console byte and line. Lets the guest
    finish (typing `serial_reply` when it asks for a line) and checks it ran clean."""
    err_path = os.path.join(a.workdir, "restore-stderr.txt")
    with open(err_path, "wb") as err:
        t0 = now_ns()
        p = reaper.spawn(argv, stdin=subprocess.PIPE if serial_reply else subprocess.DEVNULL,
                         stderr=err)
    try:
        con = Console(p)
        line_ns = con.wait_for(b"", a.timeout)  # the first complete line
        if serial_reply:
            con.wait_for(b"IGN-INFO echo.ready", a.timeout)
            p.stdin.write(serial_reply)
            p.stdin.flush()
        con.read_to_eof(a.timeout)
        code = p.wait(timeout=a.timeout)
    finally:
        reaper.kill(p)
    text = con.text()
    if code != 0:
        with open(err_path, errors="replace") as f:
            log = f.read()[-1500:]
        raise BenchError(f"{who}: exit code {code}\n{con.tail()}\n  stderr:\n{log}")
    if "IGN-BEGIN" in text:
        raise BenchError(f"{who}: the guest booted again instead of continuing:\n{con.tail()}")
    check_clean_end(text, who)
    return {"first_byte_ms": (con.first_byte_ns - t0) / 1e6, "first_line_ms": (line_ns - t0) / 1e6}


def version_floor(reaper, binary, a):
    """`VMM --version`: exec, dynamic loading and argument parsing; nothing else (ms)."""
    t0 = now_ns()
    p = reaper.spawn([binary, "--version"], stdout=subprocess.DEVNULL)
    code = p.wait(timeout=a.timeout)
    ms = (now_ns() - t0) / 1e6
    reaper.kill(p)
    if code != 0:
        raise BenchError(f"{binary} --version: exit code {code}")
    return {"floor_ms": ms}


def run_inproc(a, snap_dir):
    """The in-process clones: restore() N times in one process; the first warm-up ones are
    dropped."""
    argv = [a.inproc, os.path.join(snap_dir, "state"), os.path.join(snap_dir, "memory"),
            str(a.runs + a.warmup)]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=a.timeout * (a.runs + 2))
    if r.returncode != 0:
        raise BenchError(f"inproc failed ({r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    samples = []
    for line in r.stdout.splitlines():
        parts = line.split()
        samples.append({parts[i].replace("_us", "_ms"): float(parts[i + 1]) / 1e3
                        for i in range(0, len(parts), 2)})
    if len(samples) != a.runs + a.warmup:
        raise BenchError(f"inproc printed {len(samples)} samples, not {a.runs + a.warmup}")
    return samples[a.warmup:]


def run(reaper, a):
    print(ABOUT.format(image=os.path.basename(a.image), cmdline=CMDLINE, runs=a.runs,
                       warmup=a.warmup))
    if a.qemu != "none":
        print(ABOUT_QEMU)

    store = os.path.join(a.workdir, "store-latency")
    snap_dir = ignition_base(reaper, a, store)
    ign_argv = [a.ignition, "--store", store, "restore", "latency"]
    q_argv = None
    if a.qemu != "none":
        q_state = os.path.join(a.workdir, "qemu-latency.state")
        base = qemu.qemu_argv(a.qemu, a.image, CMDLINE)
        qemu.save_state(reaper, base, a.workdir, q_state, b"IGN-INFO echo.ready", b"\n",
                        a.timeout)
        q_argv = qemu.restore_argv(base, q_state)

    ign, qem = [], []
    for i in range(a.warmup + a.runs):
        progress(f"latency: round {i + 1}/{a.warmup + a.runs}")
        s = timed_restore(reaper, ign_argv, "ignition restore", a, serial_reply=b"\n")
        s.update(version_floor(reaper, a.ignition, a))
        if i >= a.warmup:
            ign.append(s)
        if q_argv:
            s = timed_restore(reaper, q_argv, "qemu -incoming", a)
            s.update(version_floor(reaper, a.qemu, a))
            if i >= a.warmup:
                qem.append(s)
    progress("latency: in-process restores")
    inproc = run_inproc(a, snap_dir)
    progress("")

    def col(samples, key):
        return [s[key] for s in samples if key in s]

    headers = ["median (min-max), ms", "ignition, new process", "ignition, in-process"]
    if q_argv:
        headers.append("qemu, new process")
    rows = []
    for label, key, ikey in (
        ("request -> first console byte", "first_byte_ms", "first_byte_ms"),
        ("request -> first console line", "first_line_ms", "first_line_ms"),
    ):
        r = [label, mrange(col(ign, key)), mrange(col(inproc, ikey))]
        if q_argv:
            r.append(mrange(col(qem, key)))
        rows.append(r)
    for label, ikey in (
        ("  of which: restore() returns", "restore_ms"),
        ("  then run() -> first console byte", "run_to_byte_ms"),
        ("stop() + destroy the clone", "teardown_ms"),
    ):
        r = [label, "-", mrange(col(inproc, ikey))]
        if q_argv:
            r.append("-")
        rows.append(r)
    r = ["process floor: `VMM --version`", mrange(col(ign, "floor_ms")), "-"]
    if q_argv:
        r.append(mrange(col(qem, "floor_ms")))
    rows.append(r)
    print_table(headers, rows)
    if q_argv:
        for what, key in (("first byte", "first_byte_ms"), ("first line", "first_line_ms")):
            q = med(col(qem, key))
            print(f"ratio ignition/QEMU, request -> {what}: new process "
                  f"{med(col(ign, key)) / q:.2f}x, in-process {med(col(inproc, key)) / q:.3f}x"
                  "  (<1 favours ignition)")
        print("  (the first lines differ in length: ignition's 43 characters, QEMU's 14; each is")
        print("   one port-I/O exit per character, so the first byte is the fairer mark)")
    return {"ignition": ign, "inproc": inproc, "qemu": qem}
