#!/usr/bin/env python3
"""Clone benchmark driver (called by bench/clone.sh): runs the selected sections and prints
one table each. Every VMM process it starts is killed when it ends, also on errors and
Ctrl-C."""

import argparse
import signal
import sys

import density
import latency
import reset
import snapcreate
from common import BenchError, Reaper, progress

SECTIONS = {
    "latency": latency.run,
    "reset": reset.run,
    "density": density.run,
    "snapshot": snapcreate.run,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ignition", required=True)
    ap.add_argument("--inproc", required=True)
    ap.add_argument("--image", required=True, help="the test guest (PVH ELF)")
    ap.add_argument("--idle-image", required=True)
    ap.add_argument("--wait-image", required=True)
    ap.add_argument("--qemu", required=True, help="QEMU binary or 'none'")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("-n", "--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--resets", type=int, default=1000)
    ap.add_argument("--reset-pages", default="1,10,100,1000")
    ap.add_argument("--reset-runs", type=int, default=5)
    ap.add_argument("--density", type=int, default=100)
    ap.add_argument("--qemu-density", type=int, default=10)
    ap.add_argument("--window-s", type=float, default=5.0)
    ap.add_argument("--fill-mib", type=int, default=32)
    ap.add_argument("--dirty-mib", type=int, default=8)
    ap.add_argument("--snap-rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    a.reset_pages = [int(k) for k in a.reset_pages.split(",")]
    sections = a.sections.split(",")
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section '{s}' (known: {', '.join(SECTIONS)})")

    reaper = Reaper()
    # SIGTERM / SIGHUP end the run like Ctrl-C does, so the clones are killed too.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    try:
        for s in sections:
            SECTIONS[s](reaper, a)
    except BenchError as e:
        progress("")
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress("")
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        reaper.kill_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
