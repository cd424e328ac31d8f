"""Shared pieces of bench/clone: starting processes and timing their console lines, reading
/proc, statistics and table printing. Every process started here is registered so that a
failure or Ctrl-C still kills it (see Reaper)."""

import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import time


class BenchError(Exception):
    pass


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def progress(text):
    """A one-line progress note on a terminal; nothing when stderr is a file or pipe."""
    if sys.stderr.isatty():
        print(f"\r\033[K  {text}", end="", file=sys.stderr, flush=True)


class Reaper:
    """Owns every child process; kill_all() ends them (SIGKILL) and waits for them."""

    def __init__(self):
        self.procs = []

    def spawn(self, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.DEVNULL, **kw):
        p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, **kw)
        self.procs.append(p)
        return p

    def kill(self, p):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                f.close()
        if p in self.procs:
            self.procs.remove(p)

    def kill_many(self, procs):
        """Signals all first, then waits: the kernel tears their VMs down in parallel."""
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in list(procs):
            self.kill(p)

    def kill_all(self):
        self.kill_many(list(self.procs))


class Console:
    """Reads a child's stdout, remembering when the first byte and each wanted line came."""

    def __init__(self, proc):
        self.proc = proc
        self.data = bytearray()
        self.first_byte_ns = None
        self.eof = False
        self._line_end_ns = {}  # offset of each '\n' in data -> when it arrived
        self.matched_end = 0

    def wait_for(self, needle, timeout_s, after=0):
        """Reads until a complete line containing `needle` (bytes) has arrived at or after
        offset `after` of the output; returns the arrival time (ns) of that line's end, or
        raises BenchError. `self.matched_end` is then the offset just past that line."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while True:
            at = self.data.find(needle, after)
            if at >= 0:
                end = self.data.find(b"\n", at)
                if end >= 0:
                    self.matched_end = end + 1
                    return self._line_end_ns.get(end, now_ns())
            if self.eof:
                raise BenchError(f"the process ended before printing {needle!r}:\n{self.tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"no {needle!r} within {timeout_s} s:\n{self.tail()}")
            self._read(fd, left)

    def _read(self, fd, timeout):
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            if not sel.select(timeout=timeout):
                return
        chunk = os.read(fd, 65536)
        t = now_ns()
        if not chunk:
            self.eof = True
            return
        if self.first_byte_ns is None:
            self.first_byte_ns = t
        base = len(self.data)
        self.data += chunk
        for i, b in enumerate(chunk):
            if b == 0x0A:
                self._line_end_ns[base + i] = t

    def read_to_eof(self, timeout_s):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"the process did not finish within {timeout_s} s:\n{self.tail()}")
            self._read(fd, left)

    def text(self):
        return self.data.decode(errors="replace")

    def tail(self, lines=12):
        rows = self.text().rstrip("\n").splitlines()[-lines:]
        return "\n".join("    " + r for r in rows) or "    (nothing)"


END_RE = re.compile(r"^IGN-END pass=(\d+) fail=(\d+)", re.M)


def check_clean_end(text, who):
    m = END_RE.search(text)
    if not m or int(m.group(2)) != 0 or int(m.group(1)) == 0:
        tail = "\n".join("    " + r for r in text.rstrip("\n").splitlines()[-12:])
        raise BenchError(f"{who}: no clean 'IGN-END pass=N fail=0':\n{tail}")


# --- /proc ---


def meminfo_kib():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0])
    return out


def mem_available_kib():
    return meminfo_kib()["MemAvailable"]


# Kernel memory a VM process adds: slab (KVM's VM and vCPU structures, file objects), thread
# stacks, its page tables, and KVM's MMU (shadow) page tables, which SecPageTables counts.
KERNEL_FIELDS = ("SUnreclaim", "KernelStack", "PageTables", "SecPageTables")


def kernel_kib():
    info = meminfo_kib()
    return sum(info.get(k, 0) for k in KERNEL_FIELDS)


def smaps_rollup_kib(pid):
    """Rss, Pss, Private_Clean, Private_Dirty, Shared_* of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def cpu_ticks(pid):
    """utime + stime of a whole process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- statistics and tables ---


def med(values):
    return statistics.median(values) if values else None


def fnum(x, digits=None):
    """A number with about three significant digits (or `digits` decimals)."""
    if x is None:
        return "-"
    if digits is not None:
        return f"{x:,.{digits}f}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def mrange(values, digits=None):
    """'median (min-max)' of a list, or '-'."""
    if not values:
        return "-"
    if len(values) == 1:
        return fnum(values[0], digits)
    return (f"{fnum(statistics.median(values), digits)} "
            f"({fnum(min(values), digits)}-{fnum(max(values), digits)})")


def print_table(headers, rows, out=sys.stdout):
    """Left-aligned first column(s), right-aligned numbers; `headers` and each row are lists of
    strings of the same length. A row that is a single string is printed as is."""
    widths = [len(h) for h in headers]
    for r in rows:
        if isinstance(r, str):
            continue
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    first_numeric = 1

    def line(cells):
        parts = []
        for i, c in enumerate(cells):
            parts.append(c.ljust(widths[i]) if i < first_numeric else c.rjust(widths[i]))
        return "  ".join(parts).rstrip()

    print(line(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(r if isinstance(r, str) else line(r), file=out)
