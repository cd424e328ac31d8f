"""Density: start many idle clones of one base, then measure what each costs the host while
idle: private memory (smaps_rollup), kernel memory (/proc/meminfo), and CPU time over a window.
ignition clones are `ignition restore` processes mapping the base's memory file
copy-on-write; QEMU clones are `-incoming "exec:cat FILE"` processes, each reading the saved
RAM into its own anonymous memory."""

import os
import statistics
import subprocess
import time

import qemu
from common import (CLK_TCK, BenchError, Console, cpu_ticks, fnum, kernel_kib, mem_available_kib,
                    mrange, now_ns, print_table, progress, smaps_rollup_kib)

MIN_AVAILABLE_KIB = 2 << 20  # stop starting clones below 2 GiB of MemAvailable
SETTLE_S = 1.0

ABOUT = """
== 3. Density: idle 128 MiB clones of one base ==
  guest: bench/clone/idle_guest.S (PVH, 1 vCPU, 128 MiB): writes one word to each page of
    {fill} MiB (so the base holds {fill} MiB of non-zero memory), then the boot-time marker
    (ignition's snapshot point), prints IDLE-READY and halts with interrupts off. QEMU's
    base is saved right after IDLE-READY, as in section 1.
  Clones start one after another; start = request -> IDLE-READY on the console (ignition),
    or QMP says running (QEMU). Starting stops early below {min_gib} GiB MemAvailable, or when a
    start takes 10x the first ten's median (and > 2 s). All are killed at the end.
  private = Private_Dirty + Private_Clean of /proc/PID/smaps_rollup, per clone.
  kernel memory = rise of SUnreclaim + KernelStack + PageTables + SecPageTables (KVM's shadow
    page tables) in /proc/meminfo with all clones up; est. host memory per clone = (sum of
    Pss + kernel memory) / clones. MemAvailable: its drop while starting the clones and its
    rise when all are killed (+1 s); it moves with every other process on the machine too,
    so on a shared machine it is a rough cross-check only.
  idle CPU = utime+stime of all clones over {window:g} s, after a {settle:g} s settle."""


def start_ignition_clone(reaper, a, store):
    t0 = now_ns()
    p = reaper.spawn([a.ignition, "--store", store, "restore", "idle"])
    con = Console(p)
    ready = con.wait_for(b"IDLE-READY", a.timeout)
    p.stdout.close()  # the idle guest prints nothing more
    return p, (ready - t0) / 1e6


def start_qemu_clone(reaper, a, argv, index):
    """QEMU's restored guest prints nothing (it was saved after IDLE-READY): started is when
    QMP reports it running (polled every 2 ms)."""
    qmp_path = os.path.join(a.workdir, f"qmp-clone-{index}.sock")
    t0 = now_ns()
    p = reaper.spawn(argv + ["-qmp", f"unix:{qmp_path},server=on,wait=off"],
                     stdout=subprocess.DEVNULL)
    qmp_conn = qemu.Qmp(qmp_path, a.timeout)
    deadline = time.monotonic() + a.timeout
    while not qmp_conn.execute("query-status").get("running"):
        if time.monotonic() > deadline:
            raise BenchError("a QEMU clone did not start running")
        time.sleep(0.002)
    t = now_ns()
    qmp_conn.close()
    return p, (t - t0) / 1e6


def start_many(n, start_one):
    """Starts up to n clones; stops early when memory runs low or start times explode."""
    clones, latencies, stopped = [], [], None
    for i in range(n):
        if mem_available_kib() < MIN_AVAILABLE_KIB:
            stopped = f"stopped at {i}: MemAvailable below {MIN_AVAILABLE_KIB >> 20} GiB"
            break
        progress(f"density: starting clone {i + 1}/{n}")
        p, ms = start_one(i)
        clones.append(p)
        latencies.append(ms)
        if i >= 10 and ms > max(10 * statistics.median(latencies[:10]), 2000):
            stopped = f"stopped at {i + 1}: start latency exploded ({ms:.0f} ms)"
            break
    return clones, latencies, stopped


def measure(clones, avail_before, kernel_before, window_s):
    time.sleep(SETTLE_S)
    avail_after = mem_available_kib()
    kernel_after = kernel_kib()
    smaps = [smaps_rollup_kib(p.pid) for p in clones]
    ticks0 = [cpu_ticks(p.pid) for p in clones]
    progress(f"density: {len(clones)} clones idle, CPU window {window_s} s")
    time.sleep(window_s)
    ticks1 = [cpu_ticks(p.pid) for p in clones]
    for p in clones:
        if p.poll() is not None:
            raise BenchError(f"a clone (pid {p.pid}) ended while idle: exit {p.returncode}")
    cpu_s = (sum(ticks1) - sum(ticks0)) / CLK_TCK
    return {
        "n": len(clones),
        "private_mib": [(s["Private_Dirty"] + s["Private_Clean"]) / 1024 for s in smaps],
        "private_dirty_mib": [s["Private_Dirty"] / 1024 for s in smaps],
        "pss_mib": [s["Pss"] / 1024 for s in smaps],
        "rss_mib": [s["Rss"] / 1024 for s in smaps],
        "host_mib": (avail_before - avail_after) / 1024,
        "pss_total_mib": sum(s["Pss"] for s in smaps) / 1024,
        "kernel_mib": (kernel_after - kernel_before) / 1024,
        "cpu_ticks": sum(ticks1) - sum(ticks0),
        "cpu_pct_total": 100 * cpu_s / window_s,
    }


def run_one(reaper, n, start_one, window_s):
    avail_before = mem_available_kib()
    kernel_before = kernel_kib()
    clones, latencies, stopped = start_many(n, start_one)
    if not clones:
        raise BenchError(f"density: no clone started ({stopped})")
    try:
        m = measure(clones, avail_before, kernel_before, window_s)
    finally:
        progress(f"density: stopping {len(clones)} clones")
        avail_up = mem_available_kib()
        reaper.kill_many(clones)
    # The kernel frees a VM's memory as its last fd closes, which the wait above covers; a
    # short pause lets deferred (RCU) frees land too.
    time.sleep(SETTLE_S)
    m["host_freed_mib"] = (mem_available_kib() - avail_up) / 1024
    m.update(asked=n, latency_ms=latencies, stopped=stopped)
    return m


def run(reaper, a):
    print(ABOUT.format(fill=a.fill_mib, window=a.window_s, settle=SETTLE_S,
                       min_gib=MIN_AVAILABLE_KIB >> 20))

    store = os.path.join(a.workdir, "store-density")
    argv = [a.ignition, "--store", store, "snapshot", "idle", "--kernel", a.idle_image,
            "--vcpus", "1", "--mem-mib", "128"]  # fmt: skip
    p = reaper.spawn(argv)
    p.communicate(timeout=a.timeout)
    reaper.kill(p)
    if p.returncode != 0:
        raise BenchError(f"ignition snapshot of the idle guest failed ({p.returncode})")
    mem = os.stat(os.path.join(store, "snapshots", "idle", "memory"))
    print(f"  base memory file: {mem.st_size >> 20} MiB apparent, {mem.st_blocks * 512 / 2**20:.1f}"
          " MiB allocated")

    results = {}
    results["ignition"] = run_one(
        reaper, a.density, lambda i: start_ignition_clone(reaper, a, store), a.window_s)
    if a.qemu != "none" and a.qemu_density > 0:
        state = os.path.join(a.workdir, "qemu-idle.state")
        base = qemu.qemu_argv(a.qemu, a.idle_image, None)
        qemu.save_state(reaper, base, a.workdir, state, b"IDLE-READY", None, a.timeout)
        q_argv = qemu.restore_argv(base, state)
        results["qemu"] = run_one(
            reaper, a.qemu_density, lambda i: start_qemu_clone(reaper, a, q_argv, i), a.window_s)
    progress("")

    names = list(results)
    rows = []

    def row(label, fn):
        rows.append([label] + [fn(results[n]) for n in names])

    row("clones started (asked)", lambda r: f"{r['n']} ({r['asked']})")
    row("start: request -> running, ms", lambda r: mrange(r["latency_ms"]))
    row("private memory per clone, MiB", lambda r: mrange(r["private_mib"]))
    row("  of which Private_Dirty, MiB", lambda r: mrange(r["private_dirty_mib"]))
    row("Pss per clone, MiB", lambda r: mrange(r["pss_mib"]))
    row("Rss per clone, MiB", lambda r: mrange(r["rss_mib"]))
    row("sum of Pss, all clones, MiB", lambda r: fnum(r["pss_total_mib"]))
    row("kernel memory, all clones, MiB", lambda r: fnum(r["kernel_mib"]))
    row("est. host memory per clone, MiB",
        lambda r: fnum((r["pss_total_mib"] + r["kernel_mib"]) / r["n"]))
    row("MemAvailable drop starting them, MiB", lambda r: fnum(r["host_mib"]))
    row("MemAvailable gain killing them, MiB", lambda r: fnum(r["host_freed_mib"]))
    row("idle CPU, all clones, % of a CPU", lambda r: fnum(r["cpu_pct_total"]))
    row("idle CPU per clone, % of a CPU", lambda r: fnum(r["cpu_pct_total"] / r["n"]))
    print_table(["median (min-max)"] + names, rows)
    for n in names:
        r = results[n]
        if r["cpu_ticks"] == 0:
            print(f"note: {n}: no CPU tick at all in {a.window_s:g} s: below the "
                  f"{1000 / CLK_TCK:.0f} ms resolution of /proc/PID/stat for all "
                  f"{r['n']} clones together (< {100 / CLK_TCK / a.window_s / r['n']:.1g}% each)")
    for n in names:
        if results[n]["stopped"]:
            print(f"note: {n}: {results[n]['stopped']}")
    if "qemu" in results:
        i, q = results["ignition"], results["qemu"]

        def ratio(key):
            return statistics.median(i[key]) / statistics.median(q[key])

        parts = [f"private memory {ratio('private_mib'):.3f}x", f"Pss {ratio('pss_mib'):.3f}x"]
        est = [(r["pss_total_mib"] + r["kernel_mib"]) / r["n"] for r in (i, q)]
        if est[0] > 0 and est[1] > 0:
            parts.append(f"est. host memory {est[0] / est[1]:.3f}x")
        print(f"ratio ignition/QEMU per clone: {', '.join(parts)}  (<1 favours ignition)")
    return results
