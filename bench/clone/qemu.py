"""The QEMU peer of bench/clone: its command line (microvm, the options of
tests/integration/qemu_guest_test.cpp with 1 vCPU and no option ROMs), a small QMP client,
and saving a running guest's state to a file with `migrate "exec:cat > FILE"`, which a new
QEMU restores with `-incoming "exec:cat FILE"`."""

import json
import os
import socket
import subprocess
import time

from common import BenchError, Console


def qemu_argv(qemu, image, cmdline, mem_mib=128):
    # -cpu host,-arch-capabilities: QEMU cannot set that MSR on the nested kvm_pvm hosts.
    argv = [qemu, "-M", "microvm,x-option-roms=off,acpi=on,pit=off,pic=off,rtc=off",
            "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", str(mem_mib), "-smp", "1",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
            "-kernel", image, "-no-reboot"]  # fmt: skip
    if cmdline:
        argv += ["-append", cmdline]
    return argv


class Qmp:
    def __init__(self, path, timeout_s=10):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise BenchError(f"QMP socket {path} did not come up") from None
                time.sleep(0.002)
        self.file = self.sock.makefile("rwb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise BenchError("QMP connection closed")
        return json.loads(line)

    def execute(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "error" in reply:
                raise BenchError(f"QMP {command}: {reply['error']}")
            if "return" in reply:
                return reply["return"]
            # an event: ignore

    def close(self):
        self.file.close()
        self.sock.close()


def save_state(reaper, argv, workdir, state_file, ready, serial_input=None, timeout_s=30):
    """Boots `argv` until its console prints the line `ready`, stops the VM, optionally types
    `serial_input` on its serial port while it is stopped (the byte waits in the UART's receive
    FIFO and goes into the migration stream; one byte only: QEMU's 16550 takes input up to the
    FIFO trigger level, 1 byte for the test guest, until the guest reads), and saves the
    machine to `state_file`.

    migration.store-global-state=off: the saved stream then does not carry the source's
    'paused' run state, so a restore with -incoming runs the guest at once (as a restored
    ignition guest does) instead of waiting for `cont`."""
    qmp_path = os.path.join(workdir, "qmp-save.sock")
    if os.path.exists(qmp_path):
        os.unlink(qmp_path)
    full = argv + ["-global", "migration.store-global-state=off",
                   "-qmp", f"unix:{qmp_path},server=on,wait=off"]  # fmt: skip
    proc = reaper.spawn(full, stdin=subprocess.PIPE)
    try:
        console = Console(proc)
        console.wait_for(ready, timeout_s)
        qmp = Qmp(qmp_path)
        qmp.execute("stop")
        if serial_input:
            proc.stdin.write(serial_input)
            proc.stdin.flush()
            time.sleep(0.2)  # QEMU's main loop moves it into the UART; nothing to wait on
        qmp.execute("migrate", uri=f"exec:cat > {state_file}")
        deadline = time.monotonic() + timeout_s
        while True:
            status = qmp.execute("query-migrate").get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled") or time.monotonic() > deadline:
                raise BenchError(f"QEMU migrate to {state_file}: {status}")
            time.sleep(0.005)
        qmp.execute("quit")
        qmp.close()
        proc.wait(timeout=timeout_s)
    finally:
        reaper.kill(proc)
    if not os.path.getsize(state_file):
        raise BenchError(f"QEMU wrote an empty state file {state_file}")


def restore_argv(argv, state_file):
    return argv + ["-incoming", f"exec:cat {state_file}"]
