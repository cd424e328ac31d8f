"""Reset latency vs dirtied pages: the test guest's `reset` test (guest/tests/reset.c) takes a
checkpoint through the reset port, then in a loop dirties K pages (one write each, ring 3)
and asks for a reset; ignition logs the medians of its resets at exit:
`Resets = N median: pages P copy X ns state Y ns total Z ns`."""

import json
import os
import re

from common import BenchError, Console, check_clean_end, med, mrange, now_ns, print_table, progress

ABOUT = """
== 2. In-process reset latency vs pages dirtied ==
  guest: {image}, 1 vCPU, 128 MiB, no virtio device, `ignition --reset-port`, cmdline
    "ign.tests=reset ign.reset.pages=K ign.reset.count={resets}". The guest (ring 3) takes a
    checkpoint, then in each pass checks its K pages, writes one word to each and asks for a
    reset (two port exits).
  copy / state / total: ignition's own per-reset medians (page copy-back; vCPU, chip and
    device state), from its `Resets =` log line; median (min-max) of those over the runs.
    Pages copied > K: the guest's stack and data pages written in each pass.
  cycle: one whole guest -> reset -> guest round trip, the guest's own loop included,
    = (wall(count={resets}) - wall(count=0)) / {resets}, from the medians of interleaved process
    runs; wall/count (the whole process, boot and exit included, / resets) is an upper bound.
  {runs} runs per K and per count."""

RESETS_RE = re.compile(
    r"Resets = (\d+) median: pages (\d+) copy (\d+) ns state (\d+) ns total (\d+) ns")


def one_run(reaper, a, pages, count):
    cfg = os.path.join(a.workdir, f"reset-{pages}-{count}.json")
    with open(cfg, "w") as f:
        json.dump({
            "boot-source": {
                "kernel_image_path": a.image,
                "boot_args": f"ign.tests=reset ign.reset.pages={pages} ign.reset.count={count} "
                             "ign.exit=reboot",
            },
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        }, f)  # fmt: skip
    err_path = os.path.join(a.workdir, "reset-stderr.txt")
    with open(err_path, "wb") as err:
        t0 = now_ns()
        p = reaper.spawn([a.ignition, "--reset-port", "--config-file", cfg], stderr=err)
    try:
        con = Console(p)
        con.read_to_eof(a.timeout)
        code = p.wait(timeout=a.timeout)
        wall_ms = (now_ns() - t0) / 1e6
    finally:
        reaper.kill(p)
    with open(err_path, errors="replace") as f:
        log = f.read()
    who = f"reset guest (pages={pages} count={count})"
    if code != 0:
        raise BenchError(f"{who}: exit code {code}\n{con.tail()}\n  stderr:\n{log[-1500:]}")
    check_clean_end(con.text(), who)
    if "IGN-PASS reset" not in con.text():
        raise BenchError(f"{who}: the guest did not pass its reset test:\n{con.tail()}")
    sample = {"wall_ms": wall_ms}
    if count:
        m = RESETS_RE.search(log)
        if not m or int(m.group(1)) != count:
            raise BenchError(f"{who}: no 'Resets = {count} ...' line:\n{log[-1500:]}")
        sample.update(pages=int(m.group(2)), copy_us=int(m.group(3)) / 1e3,
                      state_us=int(m.group(4)) / 1e3, total_us=int(m.group(5)) / 1e3)
    return sample


def run(reaper, a):
    print(ABOUT.format(image=os.path.basename(a.image), resets=a.resets, runs=a.reset_runs))
    rows = []
    for k in a.reset_pages:
        full, empty = [], []
        for i in range(a.reset_runs):
            progress(f"reset: K={k} run {i + 1}/{a.reset_runs}")
            full.append(one_run(reaper, a, k, a.resets))
            empty.append(one_run(reaper, a, k, 0))
        cycle = (med([s["wall_ms"] for s in full]) - med([s["wall_ms"] for s in empty])) * 1e3
        rows.append([
            str(k),
            f"{med([s['pages'] for s in full]):.0f}",
            mrange([s["copy_us"] for s in full]),
            mrange([s["state_us"] for s in full]),
            mrange([s["total_us"] for s in full]),
            f"{cycle / a.resets:.1f}",
            f"{med([s['wall_ms'] for s in full]) * 1e3 / a.resets:.1f}",
        ])  # fmt: skip
    progress("")
    print_table(["pages dirtied (K)", "pages copied", "copy us", "state us", "reset total us",
                 "cycle us", "wall/count us"], rows)  # fmt: skip
    return rows
