#!/usr/bin/env python3
"""Device I/O benchmark driver (called by bench/io.sh): runs the guest's bench-blk, bench-net
and bench-vsock tests under ignition and QEMU microvm, interleaved, N times each, checks every
run, and prints medians with min-max and, last, the ignition/QEMU ratios.

The numbers come from the guest (IGN-INFO bench.* lines, timed with its TSC); the host only
sets up the devices and their peers (tests/bench_*.c and bench/io/iopeer.c say what each side
does). See bench/io/README.md.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

GUEST_IP, PEER_IP, NETMASK = "10.0.2.15", "10.0.2.2", 24
GUEST_MAC = "52:54:00:12:34:56"
TAP = "igntap0"
ECHO_PORT, SINK_PORT = 7, 9
VSOCK_CID, VSOCK_PORT = 3, 1234
DISK_SECTOR = 512
BLK_TAG = 0x5752495445000000  # IGN_BLK_WRITE_TAG in guest/include/ign_protocol.h
END_RE = re.compile(r"^IGN-END pass=(\d+) fail=(\d+)", re.M)
INFO_RE = re.compile(r"^IGN-INFO ([^=\s]+)=(.*?)\r?$", re.M)
MIB = 1 << 20


class RunFailed(Exception):
    pass


def fields(value):
    """'ops=8 bytes=32 ns=5' -> {'ops': 8, 'bytes': 32, 'ns': 5} (numbers where they parse)."""
    out = {}
    for word in value.split():
        k, sep, v = word.partition("=")
        if sep:
            try:
                out[k] = int(v, 0)
            except ValueError:
                out[k] = v
    return out


def tail(text, lines=25):
    rows = text.rstrip("\n").splitlines()
    return "\n".join("    " + s for s in rows[-lines:]) or "    (nothing)"


def run_cmd(argv, timeout_s):
    """Runs argv in its own process group; returns (exit code, stdout, stderr, seconds). A run
    past the timeout is killed with its whole group and raises RunFailed."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise RunFailed(f"timed out after {timeout_s} s\n  command: {' '.join(argv)}\n"
                        f"  console (tail):\n{tail(out.decode(errors='replace'))}\n"
                        f"  stderr (tail):\n{tail(err.decode(errors='replace'))}")
    return (proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
            time.monotonic() - start)


class Peer:
    """A helper process (iopeer) that prints "ready" once it listens; stopped with SIGTERM."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(10):
            self.stop()
            raise RunFailed(f"peer did not start: {' '.join(argv)}\n{self.output()}")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                self.ready.set()
        self.ready.set()

    def stop(self, wait_s=5):
        """Waits up to wait_s for the peer to finish on its own, then asks it to stop."""
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.reader.join(5)
        self.err = self.proc.stderr.read()
        return self.proc.returncode

    def output(self):
        return "\n".join(self.lines) + ("\n" + self.err if getattr(self, "err", "") else "")


class Vmm:
    """How one VMM boots the test guest with a set of devices."""

    def __init__(self, name, binary, image, workdir):
        self.name, self.binary, self.image, self.workdir = name, binary, image, workdir

    def argv(self, cmdline, devices):
        raise NotImplementedError


class Ignition(Vmm):
    def argv(self, cmdline, devices):
        config = {
            "boot-source": {"kernel_image_path": self.image, "boot_args": cmdline},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        }
        if "disk" in devices:
            config["drives"] = [{"drive_id": "bench", "path_on_host": devices["disk"],
                                 "is_root_device": True, "is_read_only": False,
                                 "cache_type": "Writeback"}]
        if "tap" in devices:
            config["network-interfaces"] = [{"iface_id": "eth0", "host_dev_name": devices["tap"],
                                             "guest_mac": GUEST_MAC}]
        if "vsock_uds" in devices:
            config["vsock"] = {"guest_cid": VSOCK_CID, "uds_path": devices["vsock_uds"]}
        path = os.path.join(self.workdir, "ignition-vm.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        return [self.binary, "--config-file", path]


class Qemu(Vmm):
    def argv(self, cmdline, devices):
        # tests/integration/qemu_virtio_test.cpp's microvm: modern virtio-mmio transports (7.2
        # defaults to legacy); -cpu host,-arch-capabilities (it cannot set that MSR here).
        argv = [self.binary, "-M", "microvm,x-option-roms=off,acpi=on,pit=off,pic=off,rtc=off",
                "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "128", "-smp", "1",
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio",
                "-global", "virtio-mmio.force-legacy=false", "-kernel", self.image,
                "-append", cmdline]
        if "disk" in devices:
            argv += ["-drive", "id=d0,if=none,format=raw,cache=writeback,aio=threads,file="
                     + devices["disk"], "-device", "virtio-blk-device,drive=d0"]
        if "tap" in devices:
            argv += ["-netdev", f"tap,id=n0,ifname={devices['tap']},script=no,downscript=no",
                     "-device", f"virtio-net-device,netdev=n0,mac={GUEST_MAC}"]
        if "vhost_vsock" in devices:
            argv += ["-device", f"vhost-vsock-device,guest-cid={VSOCK_CID}"]
        return argv


def guest_run(vmm, test, cmdline_extra, devices, timeout_s, prefix=()):
    """Boots one VM running `test`; returns (IGN-INFO dict, console). Raises RunFailed unless the
    VMM exits 0 and the guest reports IGN-PASS for the test and a clean IGN-END."""
    cmdline = f"ign.tests={test} {cmdline_extra}".strip()
    argv = list(prefix) + vmm.argv(cmdline, devices)
    code, out, err, _ = run_cmd(argv, timeout_s)
    end = END_RE.search(out)
    why = None
    if code != 0:
        why = f"exit code {code}"
    elif not re.search(rf"^IGN-PASS {re.escape(test)}\b", out, re.M):
        fail = re.search(r"^IGN-FAIL .*$", out, re.M)
        why = f"the guest reported: {fail.group(0) if fail else 'no IGN-PASS ' + test}"
    elif not end or int(end.group(2)) != 0:
        why = "no clean 'IGN-END pass=N fail=0'"
    if why:
        raise RunFailed(f"{vmm.name} {test}: run failed: {why}\n  command: {' '.join(argv)}\n"
                        f"  console (tail):\n{tail(out)}\n  stderr (tail):\n{tail(err)}")
    return {k: v for k, v in INFO_RE.findall(out)}, out


# --- sections: each knows its setup, one run, and how to turn a run into metrics -------------

class Metric:
    def __init__(self, key, label, unit, higher_is_better=True, ratio=True):
        self.key, self.label, self.unit = key, label, unit
        self.higher_is_better, self.ratio = higher_is_better, ratio


class BlkSection:
    name = "blk"
    test = "bench-blk"
    metrics = [
        Metric("randread_iops", "4 KiB random read", "IOPS"),
        Metric("randread_mibs", "4 KiB random read", "MiB/s"),
        Metric("randwrite_iops", "4 KiB random write", "IOPS"),
        Metric("randwrite_mibs", "4 KiB random write", "MiB/s"),
        Metric("seqread_mibs", "1 MiB sequential read", "MiB/s"),
        Metric("seqwrite_mibs", "1 MiB sequential write", "MiB/s"),
    ]

    def __init__(self, args, workdir):
        self.args = args
        self.disk = os.path.join(workdir, "bench-disk.img")
        self.size = args.disk_mib * MIB
        self.cmdline = (f"ign.bench.qd={args.qd} ign.bench.ops={args.ops} "
                        f"ign.bench.mib={args.disk_mib} ign.bench.seq={args.seq_mib}")
        self.zeros = bytes(MIB)

    def describe(self):
        seq = max(self.args.seq_mib, self.args.disk_mib)
        return (f"{self.args.disk_mib} MiB file-backed disk ({self.disk}), rewritten with zeros "
                f"and synced before each run; guest: {seq} x 1 MiB sequential writes (wrapping), "
                f"then reads, then {self.args.ops} x 4 KiB random reads, then writes, queue depth "
                f"{self.args.qd}; ignition cache_type Writeback, QEMU cache=writeback,aio=threads")

    def available(self):
        return None

    def vmms_note(self, qemu):
        return None

    def _zero_disk(self):
        # Rewritten in place (not truncated), so its blocks stay allocated and in the page cache,
        # and synced, so no page is under writeback to the host disk when the guest writes it
        # (a write to such a page waits for that I/O).
        with open(self.disk, "r+b" if os.path.exists(self.disk) else "wb") as f:
            for _ in range(self.size // MIB):
                f.write(self.zeros)
            f.flush()
            os.fdatasync(f.fileno())

    def _check_disk(self, vmm):
        """Every sector the guest wrote starts with IGN_BLK_WRITE_TAG | sector."""
        with open(self.disk, "rb") as f:
            data = f.read(self.size)
        for s in range(self.size // DISK_SECTOR):
            (word,) = struct.unpack_from("<Q", data, s * DISK_SECTOR)
            if word != BLK_TAG | s:
                raise RunFailed(f"{vmm.name} bench-blk: the disk file is wrong after the run: "
                                f"sector {s} starts with {word:#x}, expected {BLK_TAG | s:#x}")

    def run(self, vmm):
        self._zero_disk()
        info, _ = guest_run(vmm, self.test, self.cmdline, {"disk": self.disk}, self.args.timeout)
        self._check_disk(vmm)
        out = {}
        for phase in ("randread", "randwrite", "seqread", "seqwrite"):
            key = f"bench.blk.{phase}"
            if key not in info:
                raise RunFailed(f"{vmm.name} bench-blk: no IGN-INFO {key}")
            f = fields(info[key])
            secs = f["ns"] / 1e9
            out[f"{phase}_mibs"] = f["bytes"] / MIB / secs
            if phase.startswith("rand"):
                out[f"{phase}_iops"] = f["ops"] / secs
        return out


class NetSection:
    name = "net"
    test = "bench-net"
    metrics = [
        Metric("rtt_p50_us", "UDP round trip, median", "us", higher_is_better=False),
        Metric("rtt_p99_us", "UDP round trip, p99", "us", higher_is_better=False),
        Metric("tx_kpps", "guest->netns, frames the device took", "kpps"),
        Metric("tx_mibs", "guest->netns, frames the device took", "MiB/s"),
        Metric("rx_mibs", "guest->netns, delivered to the peer", "MiB/s"),
        Metric("loss_pct", "guest->netns, lost before the peer", "%", higher_is_better=False,
               ratio=False),
    ]

    def __init__(self, args, workdir):
        self.args = args
        self.ns = f"ign-bench-io-{os.getpid()}"
        self.cmdline = (f"ign.ip={GUEST_IP}/{NETMASK} ign.peer={PEER_IP} "
                        f"ign.bench.pings={args.pings} ign.bench.pkts={args.pkts}")
        self.created = False

    def describe(self):
        return (f"TAP {TAP} in network namespace {self.ns} ({PEER_IP}/{NETMASK}; guest "
                f"{GUEST_IP}); peer: bench/io/iopeer.c (UDP echo :{ECHO_PORT}, sink :{SINK_PORT}) "
                f"in the namespace; both VMMs run inside it; guest: {self.args.pings} timed UDP "
                f"round trips (64-byte payload), then {self.args.pkts} datagrams of 1472 bytes "
                f"(1514-byte frames), no offloads; QEMU's tap backend without vhost-net")

    def available(self):
        if os.geteuid() != 0:
            return "skipped: needs root (network namespace and TAP device)"
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            return "skipped: no usable /dev/net/tun"
        if not shutil.which("ip"):
            return "skipped: needs iproute2 (ip)"
        return None

    def vmms_note(self, qemu):
        return None

    def _ip(self, *argv):
        r = subprocess.run(["ip", *argv], capture_output=True, text=True)
        if r.returncode != 0:
            raise RunFailed(f"ip {' '.join(argv)}: {r.stderr.strip()}")

    def setup(self):
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        self._ip("netns", "add", self.ns)
        self.created = True
        self._ip("-n", self.ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        self._ip("-n", self.ns, "addr", "add", f"{PEER_IP}/{NETMASK}", "dev", TAP)
        self._ip("-n", self.ns, "link", "set", TAP, "up")

    def teardown(self):
        if self.created:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            self.created = False

    def run(self, vmm):
        prefix = ["ip", "netns", "exec", self.ns]
        peer = Peer(prefix + [self.args.peer, "udp", PEER_IP, str(ECHO_PORT), str(SINK_PORT)])
        try:
            info, _ = guest_run(vmm, self.test, self.cmdline, {"tap": TAP}, self.args.timeout,
                                prefix)
        finally:
            peer.stop(wait_s=0)
        rtt, tx, got = (fields(info.get(k, "")) for k in
                        ("bench.net.rtt", "bench.net.tx", "bench.net.peer"))
        if "p50_ns" not in rtt or "ns" not in tx or "bytes" not in got:
            raise RunFailed(f"{vmm.name} bench-net: missing bench.net.* lines: {info}")
        secs = tx["ns"] / 1e9
        return {
            "rtt_p50_us": rtt["p50_ns"] / 1e3,
            "rtt_p99_us": rtt["p99_ns"] / 1e3,
            "tx_kpps": tx["pkts"] / secs / 1e3,
            "tx_mibs": tx["bytes"] / MIB / secs,
            "rx_mibs": got["bytes"] / MIB / secs,
            "loss_pct": 100.0 * (tx["pkts"] - got["rx"]) / tx["pkts"],
        }


class VsockSection:
    name = "vsock"
    test = "bench-vsock"
    metrics = [Metric("tx_mibs", "guest->host stream", "MiB/s")]

    def __init__(self, args, workdir):
        self.args = args
        self.uds = os.path.join(workdir, "v.sock")
        self.bytes = args.vsock_mib * MIB
        self.cmdline = f"ign.vsock.port={VSOCK_PORT} ign.vsock.bytes={self.bytes}"

    def describe(self):
        return (f"guest connects to host port {VSOCK_PORT} and streams {self.args.vsock_mib} MiB "
                f"in 64 KiB packets; ignition: hybrid vsock, the host end is a Unix socket "
                f"{self.uds}_{VSOCK_PORT} read by bench/io/iopeer.c, which checks every byte; "
                f"timed in the guest from the first packet to the RST that acknowledges its "
                f"SHUTDOWN (sent once every byte is in the host socket)")

    def available(self):
        return None

    def vmms_note(self, qemu):
        if qemu and not os.access("/dev/vhost-vsock", os.R_OK | os.W_OK):
            return ("QEMU skipped: its virtio-vsock is vhost-vsock-device, which needs "
                    "/dev/vhost-vsock (the host kernel's vhost_vsock module); it is not available "
                    "on this host, so vsock is ignition only and has no ratio")
        return None

    def run(self, vmm):
        if isinstance(vmm, Ignition):
            sink = Peer([self.args.peer, "unix-sink", f"{self.uds}_{VSOCK_PORT}", str(self.bytes)])
            devices = {"vsock_uds": self.uds}
        else:
            sink = Peer([self.args.peer, "vsock-sink", str(VSOCK_PORT), str(self.bytes)])
            devices = {"vhost_vsock": True}
        try:
            info, _ = guest_run(vmm, self.test, self.cmdline, devices, self.args.timeout)
        finally:
            code = sink.stop(wait_s=5)
        if code != 0:
            raise RunFailed(f"{vmm.name} bench-vsock: the host sink failed (exit {code}):\n"
                            f"{sink.output()}")
        tx = fields(info.get("bench.vsock.tx", ""))
        if tx.get("bytes") != self.bytes:
            raise RunFailed(f"{vmm.name} bench-vsock: guest reports {info.get('bench.vsock.tx')}")
        return {"tx_mibs": tx["bytes"] / MIB / (tx["ns"] / 1e9)}


SECTIONS = {"blk": BlkSection, "net": NetSection, "vsock": VsockSection}


# --- output ----------------------------------------------------------------------------------

def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summary(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cell(s):
    return "-" if s is None else f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def print_table(rows, vmm_names):
    header = ["section", "metric", "unit"] + [f"{n} median (min-max)" for n in vmm_names]
    table = [header] + [[r["section"], r["label"], r["unit"]] +
                        [cell(r["stats"].get(n)) for n in vmm_names] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i])
                        for i, c in enumerate(row)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ignition", required=True)
    ap.add_argument("--qemu", default="none")
    ap.add_argument("--image", required=True)
    ap.add_argument("--peer", required=True, help="the compiled bench/io/iopeer.c")
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sections", default="blk,net,vsock")
    ap.add_argument("--qd", type=int, default=1)
    ap.add_argument("--ops", type=int, default=8192)
    ap.add_argument("--disk-mib", type=int, default=64)
    ap.add_argument("--seq-mib", type=int, default=256)
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--pkts", type=int, default=100000)
    ap.add_argument("--vsock-mib", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--json")
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="ignition-bench-io.")
    vmms = [Ignition("ignition", args.ignition, args.image, workdir)]
    if args.qemu != "none":
        vmms.append(Qemu("qemu", args.qemu, args.image, workdir))
    names = [v.name for v in vmms]
    notes = list(args.note)
    rows, samples = [], {}
    failed = None
    try:
        for sname in args.sections.split(","):
            if sname not in SECTIONS:
                raise RunFailed(f"unknown section '{sname}' (blk, net, vsock)")
            section = SECTIONS[sname](args, workdir)
            skip = section.available()
            if skip:
                notes.append(f"{sname}: {skip}")
                print(f"[{sname}] {skip}", flush=True)
                continue
            print(f"[{sname}] {section.describe()}", flush=True)
            active = list(vmms)
            qemu_note = section.vmms_note(any(isinstance(v, Qemu) for v in vmms))
            if qemu_note:
                notes.append(f"{sname}: {qemu_note}")
                print(f"[{sname}] {qemu_note}", flush=True)
                active = [v for v in vmms if not isinstance(v, Qemu)]
            if hasattr(section, "setup"):
                section.setup()
            try:
                got = {v.name: [] for v in active}
                for i in range(args.warmup + args.runs):
                    for vmm in active:  # interleaved: ignition, qemu, ignition, ...
                        r = section.run(vmm)
                        warm = i < args.warmup
                        tag = "warm-up" if warm else f"run {i - args.warmup + 1}/{args.runs}"
                        shown = " ".join(f"{k}={fmt(v)}" for k, v in r.items())
                        print(f"  {sname} {vmm.name:8} {tag:9} {shown}", file=sys.stderr,
                              flush=True)
                        if not warm:
                            got[vmm.name].append(r)
            finally:
                if hasattr(section, "teardown"):
                    section.teardown()
            samples[sname] = got
            for m in section.metrics:
                stats = {n: summary([r[m.key] for r in got[n]]) for n in got}
                rows.append({"section": sname, "key": m.key, "label": m.label, "unit": m.unit,
                             "metric": m, "stats": stats})
    except RunFailed as e:
        failed = str(e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        print(f"\nbench/io.sh: FAILED\n{failed}", file=sys.stderr)
        return 1

    print()
    print_table(rows, names)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "samples": samples, "notes": notes}, f, indent=1)
    if notes:
        print()
        for n in notes:
            print(f"note: {n}")
    print()
    ratios = [r for r in rows if r["metric"].ratio and all(r["stats"].get(n) for n in names)]
    if len(names) < 2 or not ratios:
        print("no ignition/QEMU ratios (QEMU not run)")
        return 0
    for r in ratios:
        a, b = r["stats"]["ignition"]["median"], r["stats"]["qemu"]["median"]
        favours = ">1" if r["metric"].higher_is_better else "<1"
        print(f"ignition/QEMU {r['section']} {r['label']} ({r['unit']}): "
              f"{a / b:.2f}  ({favours} favours ignition)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
